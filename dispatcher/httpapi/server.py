"""Serving the API under uvicorn: one process, or ``workers`` processes (uvicorn's supervisor), each
building its own app from the environment's settings (a fork must not share connections)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..context import Context
from ..demo.procs import free_port, kill_group, stop_group

FACTORY = "dispatcher.httpapi.app:create_app"


class NoDelayHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with TCP_NODELAY on every connection.

    With ``--workers`` uvicorn binds the socket itself with protocol number 0, so asyncio does not set
    TCP_NODELAY on accepted connections; a response's headers and body then leave in two writes and the
    body waits for the client's delayed ACK (40 ms on Linux) - every request took over 40 ms."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve(ctx: Context, host: str, port: int, workers: int = 1, *, access_log: bool = False) -> None:
    """Run until SIGINT / SIGTERM (uvicorn finishes the requests in flight first)."""
    options = {"http": NoDelayHttpTools, "access_log": access_log, "log_level": "info",
               "timeout_graceful_shutdown": 30, "server_header": False}
    if workers > 1:
        from .supervisor import supervise

        if supervise(host, port, workers, options):
            raise SystemExit(1)
        return
    from .app import create_app

    uvicorn.run(create_app(ctx), host=host, port=port, **options)  # type: ignore[arg-type]


@dataclass
class ApiProcess:
    """A ``smsdispatch api`` process group started by ``start_background``."""

    proc: subprocess.Popen[bytes]
    base_url: str

    def kill(self) -> None:
        """SIGKILL the whole group (the server and any uvicorn worker processes)."""
        kill_group(self.proc)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn finishes requests in flight), then SIGKILL."""
        stop_group(self.proc, timeout)

    def __enter__(self) -> ApiProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_background(env: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 0, workers: int = 1,
                     log: Path | None = None, timeout: float = 30.0) -> ApiProcess:
    """Start ``smsdispatch api`` with ``env`` (settings as environment variables) in its own process
    group and wait until /healthz answers (tests and benchmarks)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "dispatcher.cli", "api", "--host", host, "--port", str(port),
           "--workers", str(workers)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it open
    try:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    api = ApiProcess(proc, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"smsdispatch api exited with {proc.returncode}")
        try:
            if requests.get(f"{api.base_url}/healthz", timeout=1).ok:
                return api
        except requests.RequestException:
            pass
        time.sleep(0.05)
    api.kill()
    raise RuntimeError(f"smsdispatch api did not answer on {api.base_url} within {timeout:g} s")
