"""``smsdispatch api --workers N``: N server processes, each listening on its own socket bound to the same
address with SO_REUSEPORT, so the kernel spreads new connections across them.

uvicorn's own ``--workers`` shares one listening socket between its processes; whichever process wakes
first accepts, and with keep-alive clients one process ended up serving most connections (measured: one
worker took 89 % of the API's CPU samples at 16 clients while the other idled). With a socket per process
the kernel hashes each connection to one of them.

The supervisor restarts a worker that dies, stops when workers keep dying at start (a broken
configuration), and on SIGTERM / SIGINT asks every worker to finish the requests in flight (uvicorn's
graceful shutdown) before it exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

#: A worker that exits sooner than this after its start counts as failing to start.
EARLY_EXIT_S = 10.0
#: Failed starts in a row after which the supervisor gives up (exit status 1).
MAX_EARLY_EXITS = 5
#: Seconds a worker has to finish its requests after SIGTERM before it is killed.
STOP_GRACE_S = 35.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT (and SO_REUSEADDR), listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One server process (spawned: a fresh interpreter builds its own app, connections and threads)."""
    import uvicorn

    from .server import FACTORY

    config = uvicorn.Config(FACTORY, factory=True, **options)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def free_reusable_port(host: str, port: int) -> int:
    """``port`` (or a free one when 0), checked free: bound once without listening, then released."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))  # OSError (address in use) when another server holds it
        return int(probe.getsockname()[1])


def supervise(host: str, port: int, workers: int, options: dict[str, Any]) -> int:
    """Run ``workers`` server processes until SIGTERM / SIGINT; the exit status."""
    port = free_reusable_port(host, port)
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> tuple[BaseProcess, float]:
        proc = spawn.Process(target=_worker, args=(host, port, options), name="smsdispatch-api", daemon=False)
        proc.start()
        return proc, time.monotonic()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    procs = [start() for _ in range(workers)]
    log.info("api: %d worker processes on %s:%d (pids %s)", workers, host, port,
             ", ".join(str(p.pid) for p, _ in procs))
    early, status = 0, 0
    try:
        while not stop.wait(0.5):
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive():
                    continue
                quick = time.monotonic() - started < EARLY_EXIT_S
                early = early + 1 if quick else 0
                log.warning("api: worker %s exited with %s%s", proc.pid, proc.exitcode,
                            " soon after its start" if quick else "; starting another")
                if early >= MAX_EARLY_EXITS:
                    log.error("api: workers keep exiting at start; stopping")
                    stop.set()
                    status = 1
                    break
                procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_GRACE_S
        for proc, _ in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
