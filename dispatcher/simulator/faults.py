"""Fault injection: what can go wrong between a client and the gateway, switched on by flags or at runtime.

Faults touch only ``/api/v1/...`` calls, never ``/_sim/...``. Each rate is a probability per call, drawn
from one generator seeded with the simulator's seed (re-seeded whenever the faults change), so a seeded
simulator fails the same calls of the same sequence every time. ``commands`` narrows them to some commands.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Commands a ``commands`` filter may name.
COMMANDS = ("get-sms-balance", "get-sender-id", "get-templates", "send-single-sms", "send-bulk-sms",
            "sms-delivery-status")

HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            b"</body>\r\n</html>\r\n")

_REQUEST_LINE = re.compile(rb"^[A-Z]{3,7} /api/v1/([A-Za-z0-9_-]+)")


@dataclass
class Faults:
    """The fault settings; rates are probabilities in [0, 1]."""

    latency_ms: float = 0.0  #: added to every API call
    rate_5xx: float = 0.0  #: HTTP 503 before anything is processed
    rate_429: float = 0.0  #: HTTP 429 with Retry-After before anything is processed
    retry_after_s: float = 1.0  #: the Retry-After value of a 429
    rate_read_timeout_after_accept: float = 0.0  #: process (and record) the call, then answer late
    read_timeout_s: float = 35.0  #: how late; longer than the client's read timeout
    rate_drop_before_read: float = 0.0  #: abort the TCP connection before reading the request
    rate_html_error: float = 0.0  #: an nginx-style HTML 502 page instead of JSON
    credits_exhausted: bool = False  #: every send answers "SMS Credits Not Available"; balance shows 0
    auth_failing: bool = False  #: every call answers "API Key Does Not Exists"
    commands: list[str] | None = field(default=None)  #: None = every command
    #: sends naming one of these template ids are refused "Template Not Approved" (DLT withdrew them)
    reject_templates: list[str] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _names(name: str, value: Any) -> list[str] | None:
    """``commands`` (command names) or ``reject_templates`` (template ids): a list, a comma string or null."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [c for c in value.split(",") if c.strip()]
    what = "command names" if name == "commands" else "template ids"
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{name} must be a list of {what} or null")
    unknown = [c for c in value if c.strip() not in COMMANDS] if name == "commands" else []
    if unknown:
        raise ValueError(f"unknown command(s) in commands: {', '.join(unknown)}")
    return [c.strip() for c in value]


def _coerce(name: str, value: Any) -> Any:
    if name in ("commands", "reject_templates"):
        return _names(name, value)
    if name in ("credits_exhausted", "auth_failing"):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    number = float(value)
    if number < 0 or number != number:
        raise ValueError(f"{name} must be >= 0")
    if name.startswith("rate_") and number > 1:
        raise ValueError(f"{name} is a probability and must be <= 1")
    return number


class FaultInjector:
    """Holds the current faults and decides, per call, which one fires."""

    def __init__(self, seed: int, faults: Faults | None = None) -> None:
        self.seed = seed
        self.faults = faults or Faults()
        self._rng = random.Random(seed)

    def update(self, changes: dict[str, Any], *, clear: bool = False) -> Faults:
        """Merge ``changes`` into the faults (after clearing them when ``clear``); re-seed the draws."""
        names = {f.name for f in fields(Faults)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        base = Faults() if clear else self.faults
        values = base.to_dict() | {k: _coerce(k, v) for k, v in changes.items()}
        self.faults = Faults(**values)
        self._rng = random.Random(self.seed)
        return self.faults

    def applies(self, command: str) -> bool:
        cmds = self.faults.commands
        return cmds is None or command in cmds

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (no draw at all when the rate is 0)."""
        if rate <= 0:
            return False
        return rate >= 1 or self._rng.random() < rate

    def before(self, command: str) -> str | None:
        """The fault that answers this call instead of the gateway: '429', '5xx', 'html' or None."""
        f = self.faults
        if not self.applies(command):
            return None
        if self.roll(f.rate_429):
            return "429"
        if self.roll(f.rate_5xx):
            return "5xx"
        if self.roll(f.rate_html_error):
            return "html"
        return None

    def late_answer(self, command: str) -> bool:
        """Whether this (processed) call's answer is held back by ``read_timeout_s``."""
        return self.applies(command) and self.roll(self.faults.rate_read_timeout_after_accept)

    def drop(self, first_bytes: bytes) -> str | None:
        """The command of a request to drop unread (from its request line), or None to serve it."""
        if self.faults.rate_drop_before_read <= 0:
            return None
        m = _REQUEST_LINE.match(first_bytes)
        if m is None:
            return None
        command = m.group(1).decode()
        if self.applies(command) and self.roll(self.faults.rate_drop_before_read):
            return command
        return None


def dropping_protocol(base: type[asyncio.Protocol], injector: FaultInjector,
                      on_drop: Callable[[str], None]) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol ``base`` that aborts the connection before reading a request
    whenever the drop-before-read fault fires; ``on_drop(command)`` records it."""

    class DroppingProtocol(base):  # type: ignore[valid-type, misc]
        def data_received(self, data: bytes) -> None:
            command = injector.drop(data)
            if command is not None:
                on_drop(command)
                self.transport.abort()
                return
            super().data_received(data)

    DroppingProtocol.__name__ = f"Dropping{base.__name__}"
    return DroppingProtocol
