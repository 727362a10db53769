"""A local, real-HTTP stand-in for the TheSMSPoint gateway (see docs/simulator.md).

``python -m dispatcher.simulator`` serves it; ``start_background()`` runs it in a child process for tests,
the demo and benchmarks; ``create_app()`` gives the ASGI app itself.
"""

from __future__ import annotations

from .admin import AdminClient
from .app import create_app
from .cli import main
from .lifecycle import (
    MAGIC_DELIVERED,
    MAGIC_DND,
    MAGIC_INVALID,
    MAGIC_NEVER_FINAL,
    MAGIC_UNDELIVERED,
)
from .server import SimulatorProcess, serve, start_background
from .state import DEFAULT_API_KEY, SimConfig, SimState

__all__ = [
    "DEFAULT_API_KEY",
    "MAGIC_DELIVERED",
    "MAGIC_DND",
    "MAGIC_INVALID",
    "MAGIC_NEVER_FINAL",
    "MAGIC_UNDELIVERED",
    "AdminClient",
    "SimConfig",
    "SimState",
    "SimulatorProcess",
    "create_app",
    "main",
    "serve",
    "start_background",
]
