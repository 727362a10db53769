"""smspoint-dispatcher: enqueue SMS in a sub-millisecond call; workers batch them into TheSMSPoint bulk calls.

    from dispatcher import send_sms, send_bulk, get_status
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["BulkResult", "Channel", "Dispatcher", "Duplicate", "MessageStatus", "get_status", "opt_in",
           "opt_out", "send_bulk", "send_sms"]


def __getattr__(name: str) -> Any:
    # Lazy: importing a pure submodule (dispatcher.segments) must not pull in SQLAlchemy, Redis, Celery.
    if name == "Channel":
        from .channels import Channel

        return Channel
    if name in ("opt_in", "opt_out"):
        from . import optout

        return getattr(optout, name)
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'dispatcher' has no attribute {name!r}")
