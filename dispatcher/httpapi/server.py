"""Serving the API under uvicorn: one process, or ``workers`` processes (uvicorn's supervisor), each
building its own app from the environment's settings (a fork must not share connections)."""

from __future__ import annotations

import uvicorn

from ..context import Context

FACTORY = "dispatcher.httpapi.app:create_app"


def serve(ctx: Context, host: str, port: int, workers: int = 1, *, access_log: bool = False) -> None:
    """Run until SIGINT / SIGTERM (uvicorn finishes the requests in flight first)."""
    common = {"host": host, "port": port, "http": "httptools", "access_log": access_log,
              "log_level": "info", "timeout_graceful_shutdown": 30, "server_header": False}
    if workers > 1:
        uvicorn.run(FACTORY, factory=True, workers=workers, **common)  # type: ignore[arg-type]
        return
    from .app import create_app

    uvicorn.run(create_app(ctx), **common)  # type: ignore[arg-type]
