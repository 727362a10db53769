"""Serving the simulator with uvicorn, in this process (``serve``) or in a background process that tests,
the demo and benchmarks start and stop (``start_background``)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import requests
import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from .admin import AdminClient
from .app import API_PREFIX, create_app
from .faults import dropping_protocol
from .state import DEFAULT_API_KEY, SimConfig, SimState

#: The line ``serve`` prints first; ``start_background`` reads the URL from it.
ANNOUNCE = "TheSMSPoint simulator listening; base URL: "
HTTP_CHOICES = ("auto", "h11", "httptools")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so (else Nagle + delayed ACK
    # cost 40 ms per keep-alive request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(config: SimConfig, host: str = "127.0.0.1", port: int = 8765, *, http: str = "auto",
          announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM. Binds first, then announces the base URL (with the real port)."""
    if http not in HTTP_CHOICES:
        raise ValueError(f"http must be one of {', '.join(HTTP_CHOICES)}")
    state = SimState(config)
    app = create_app(state=state)

    def on_drop(command: str) -> None:
        state.record_call(command, recipients=0, outcome="fault", message="connection dropped before read",
                          http_status=None, fault="drop_before_read")

    base = import_from_string(HTTP_PROTOCOLS[http])
    protocol = dropping_protocol(base, state.faults, on_drop)
    sock = _bind(host, port)
    root = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    key = state.api_key if state.api_key == DEFAULT_API_KEY else "(as given)"
    announce(f"{ANNOUNCE}{root}{API_PREFIX}")
    announce(f"api key: {key}; seed: {state.seed}; control API: {root}/_sim; "
             f"server: uvicorn/{base.__name__}")
    sys.stdout.flush()
    cfg = uvicorn.Config(app, http=protocol, log_level="warning", access_log=False, lifespan="off",
                         timeout_graceful_shutdown=1, server_header=False)
    uvicorn.Server(cfg).run(sockets=[sock])


class SimulatorProcess:
    """A simulator running in a child process. ``base_url`` is the /api/v1 URL for clients."""

    def __init__(self, proc: subprocess.Popen[str], root_url: str, api_key: str) -> None:
        self.proc = proc
        self.root_url = root_url
        self.base_url = root_url + API_PREFIX
        self.api_key = api_key
        self.admin = AdminClient(root_url)

    @property
    def port(self) -> int:
        return int(self.root_url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout``)."""
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _read_announce(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(ANNOUNCE):
            return line[len(ANNOUNCE):].strip()
    raise RuntimeError(f"simulator did not start (exit code {proc.poll()})")


def start_background(*, host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY,
                     seed: int | None = None, args: Sequence[str] = (), timeout: float = 20.0,
                     quiet: bool = False) -> SimulatorProcess:
    """Start ``python -m dispatcher.simulator`` (port 0: a free port) and wait until it answers.

    ``args`` are further command-line flags, e.g. ``["--latency-ms", "20", "--send-shape", "csharp"]``.
    """
    cmd = [sys.executable, "-m", "dispatcher.simulator", "--host", host, "--port", str(port),
           "--api-key", api_key, *(["--seed", str(seed)] if seed is not None else []), *args]
    env = dict(os.environ)
    root_dir = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root_dir, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None,
                            text=True, env=env)
    deadline = time.monotonic() + timeout
    try:
        base_url = _read_announce(proc, deadline)
        sim = SimulatorProcess(proc, base_url[: -len(API_PREFIX)], api_key)
        while True:
            try:
                if requests.get(f"{sim.root_url}/_sim/health", timeout=1).ok:
                    return sim
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"simulator at {sim.root_url} did not answer (exit code {proc.poll()})")
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
