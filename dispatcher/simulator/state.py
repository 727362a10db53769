"""Everything the simulated gateway remembers: the account (key, credits), catalog, ledger of accepted
messages and their jobs, the log of API calls, the simulated clock, and the runtime options.

The app runs on one event loop and never awaits while it changes this state, so it needs no locks.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..channels import PACKAGES, Channel
from .catalog import Catalog
from .faults import FaultInjector, Faults
from .lifecycle import Fate, Lifecycle, status_at
from .variants import Variants

DEFAULT_API_KEY = "simulator-key"
DEFAULT_CREDITS = 1_000_000
SEND_SHAPES = ("php", "csharp")
_BALANCE_ORDER = sorted(PACKAGES)  # OTP, Promotional, Transactional: as get-sms-balance documents
REPORT_SHAPES = ("list", "single", "mixed")
#: With a seed, ids start here, so the documentation's ``"job_id" => 123456789`` is the first job.
SEEDED_FIRST_JOB_ID = 123_456_789
SEEDED_FIRST_MESSAGE_ID = 5_000_000_001


def default_channel_map() -> dict[int, str]:
    """Gateway channel number -> credit package (1 Transactional, 2 Promotional, 3 OTP)."""
    return {1: Channel.TRANSACTIONAL.package, 2: Channel.PROMOTIONAL.package, 3: Channel.OTP.package}


def parse_channel_map(text: str) -> dict[int, str]:
    """``transactional=1,promotional=2,otp=3`` -> {1: 'Transactional', 2: 'Promotional', 3: 'OTP'}."""
    out: dict[int, str] = {}
    for pair in (p for p in text.split(",") if p.strip()):
        name, sep, num = pair.partition("=")
        if not sep:
            raise ValueError(f"channel map entry {pair!r} is not name=number")
        out[int(num)] = Channel.parse(name).package
    if sorted(out.values()) != sorted(PACKAGES) or len(out) != len(PACKAGES):
        raise ValueError("channel map must give each of transactional, promotional, otp its own number")
    return out


@dataclass
class SimConfig:
    """How a simulator starts; ``POST /_sim/reset`` returns to exactly this."""

    api_key: str = DEFAULT_API_KEY
    seed: int | None = None  #: None: a random seed (printed at start)
    catalog_path: str | None = None
    channel_map: dict[int, str] = field(default_factory=default_channel_map)
    credits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PACKAGES, DEFAULT_CREDITS))
    lifecycle: dict[str, float] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    send_shape: str = "php"
    report_shape: str = "mixed"
    first_job_id: int | None = None  #: None: 123456789 when seeded, else derived from the clock
    first_message_id: int | None = None
    calls_kept: int = 200_000  #: the call log keeps this many most recent calls
    variants: dict[str, Any] = field(default_factory=dict)  #: answer variants (variants.Variants fields)


@dataclass(slots=True)
class Message:
    """One accepted message, as the ledger shows it."""

    message_id: str
    job_id: str
    number: str  # 91XXXXXXXXXX
    text: str  # as sent (after truncation to 765 characters)
    sender_id: str
    template_id: str
    channel: int
    is_unicode: int
    credits: int
    accepted_at: float  # simulated epoch seconds
    fate: Fate
    in_answer: int = 1  # times the send answer's MessageData listed it (0: omitted, or no MessageData)

    def status(self, now: float) -> tuple[str, str]:
        return status_at(self.fate, now)

    def to_dict(self, now: float) -> dict[str, Any]:
        status, remark = self.status(now)
        return {"job_id": self.job_id, "message_id": self.message_id, "number": self.number,
                "text": self.text, "sender_id": self.sender_id, "template_id": self.template_id,
                "channel": self.channel, "is_unicode": self.is_unicode, "credits": self.credits,
                "accepted_at": self.accepted_at, "status": status, "remark": remark,
                "fate": self.fate.fate, "in_answer": self.in_answer}


class SimState:
    """The simulated gateway's memory. Build with a SimConfig; ``reset()`` returns to it."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1 << 31)
        #: One injector for the state's life: the server's drop-before-read protocol holds on to it.
        self.faults = FaultInjector(self.seed, Faults())
        self.reset()

    def reset(self) -> None:
        """Forget every message and call; restore credits, catalog, faults, lifecycle and the clock."""
        cfg = self.config
        self.api_key = cfg.api_key
        self.catalog = Catalog.load(cfg.catalog_path)
        self.channel_map = dict(cfg.channel_map)
        self.credits = dict.fromkeys(PACKAGES, 0) | dict(cfg.credits)
        self.lifecycle = Lifecycle()
        self.lifecycle.update(cfg.lifecycle)
        self.faults.seed = self.seed
        self.faults.update(cfg.faults, clear=True)
        self.send_shape = cfg.send_shape
        self.report_shape = cfg.report_shape
        self.variants = Variants()
        self.variants.update(cfg.variants)
        self.spent = dict.fromkeys(_BALANCE_ORDER, 0)  #: credits charged per package since the reset
        self.clock_offset = 0.0
        self.messages: dict[str, Message] = {}
        self.ledger: list[Message] = []
        self.jobs: dict[str, list[Message]] = {}
        self.calls: deque[dict[str, Any]] = deque(maxlen=cfg.calls_kept)
        self.calls_total = 0
        seeded = cfg.seed is not None
        wall = int(time.time())
        self._next_job = cfg.first_job_id or (SEEDED_FIRST_JOB_ID if seeded else wall * 100)
        self._next_message = cfg.first_message_id or (SEEDED_FIRST_MESSAGE_ID if seeded else wall * 10_000)

    # ------------------------------------------------------------------ clock and ids

    def now(self) -> float:
        """Simulated epoch seconds: the wall clock plus whatever ``advance`` added."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.clock_offset += seconds
        return self.now()

    def peek_job_id(self) -> str:
        """The id the next job will get (not taken)."""
        return str(self._next_job)

    def new_job_id(self) -> str:
        self._next_job += 1
        return str(self._next_job - 1)

    def new_message_id(self) -> str:
        self._next_message += 1
        return str(self._next_message - 1)

    # ------------------------------------------------------------------ options

    def set_shapes(self, send_shape: str | None = None, report_shape: str | None = None) -> None:
        if send_shape is not None and send_shape not in SEND_SHAPES:
            raise ValueError(f"send_shape must be one of {', '.join(SEND_SHAPES)}")
        if report_shape is not None and report_shape not in REPORT_SHAPES:
            raise ValueError(f"report_shape must be one of {', '.join(REPORT_SHAPES)}")
        self.send_shape = send_shape or self.send_shape
        self.report_shape = report_shape or self.report_shape

    def set_credits(self, balances: dict[str, Any]) -> dict[str, int]:
        """Set the named packages' balances (others unchanged)."""
        unknown = set(balances) - set(PACKAGES)
        if unknown:
            raise ValueError(f"unknown package(s): {', '.join(sorted(unknown))}; use {', '.join(PACKAGES)}")
        values = {k: int(v) for k, v in balances.items()}
        if any(v < 0 for v in values.values()):
            raise ValueError("balances must be >= 0")
        self.credits.update(values)
        return dict(self.credits)

    def balances(self) -> dict[str, int]:
        """What get-sms-balance shows (all zero while the credits_exhausted fault is on)."""
        if self.faults.faults.credits_exhausted:
            return dict.fromkeys(_BALANCE_ORDER, 0)
        return {p: self.credits[p] for p in _BALANCE_ORDER}

    # ------------------------------------------------------------------ records

    def record_call(self, command: str, *, recipients: int, outcome: str, message: str,
                    http_status: int | None, fault: str | None = None, job_id: str | None = None) -> None:
        self.calls_total += 1
        self.calls.append({"n": self.calls_total, "at": time.time(), "sim_at": self.now(), "command": command,
                           "recipients": recipients, "outcome": outcome, "message": message,
                           "fault": fault, "http_status": http_status, "job_id": job_id})

    def add_job(self, job_id: str, messages: list[Message]) -> None:
        self.jobs[job_id] = messages
        self.ledger.extend(messages)
        for m in messages:
            self.messages[m.message_id] = m

    def ledger_page(self, offset: int, limit: int, job_id: str | None = None) -> dict[str, Any]:
        rows = self.jobs.get(job_id, []) if job_id else self.ledger
        now = self.now()
        return {"total": len(rows), "offset": offset, "limit": limit,
                "items": [m.to_dict(now) for m in rows[offset:offset + limit]]}

    def calls_page(self, offset: int, limit: int) -> dict[str, Any]:
        calls = list(self.calls)
        first = self.calls_total - len(calls)  # calls older than this were dropped from the log
        start = max(offset - first, 0)
        return {"total": self.calls_total, "offset": offset, "limit": limit,
                "items": calls[start:start + limit]}
