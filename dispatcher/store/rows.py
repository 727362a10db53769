"""The rows the storage layer returns: frozen dataclasses, one per shape a caller needs. A full row's fields
are its table's columns (tests/unit/test_layering.py checks they stay in step with dispatcher/models.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

R = TypeVar("R")


def row_of(cls: type[R], mapping: Any) -> R:
    """``cls`` built from a result row's mapping (only the fields ``cls`` declares)."""
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A whole ``message`` row."""

    id: str
    state: str
    hold_reason: str | None
    channel: str
    sender_id: str
    template_id: str
    is_unicode: bool
    number: str
    text: str
    parts: int
    credits: int
    idempotency_key: str | None
    meta: str | None
    bulk_id: str | None
    batch_id: str | None
    attempts: int
    created_at: datetime
    send_at: datetime | None
    pushed_at: datetime | None
    sending_at: datetime | None
    sent_at: datetime | None
    final_at: datetime | None
    updated_at: datetime | None
    gateway_job_id: str | None
    gateway_message_id: str | None
    credits_charged: int | None
    status_raw: str | None
    status_remark: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A whole ``batch`` row."""

    id: str
    lane: str
    channel: str
    sender_id: str
    template_id: str
    is_unicode: bool
    size: int
    credits: int
    state: str
    created_at: datetime
    published_at: datetime | None
    sending_at: datetime | None
    done_at: datetime | None
    job_id: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class IdempotentMessage:
    """The message an idempotency key already names: what a repeat must match."""

    id: str
    number: str
    text: str
    channel: str
    state: str

    def repeats(self, number: str, text: str, channel: str) -> bool:
        """Whether a request for (number, text, channel) under this key asks for this same message."""
        return (self.number, self.text, self.channel) == (number, text, channel)


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch waiting for its send task (the sweeper republishes it)."""

    id: str
    lane: str
    size: int
    channel: str
    sender_id: str
    template_id: str
    is_unicode: bool


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A gateway job this runner holds for one report poll."""

    job_id: str
    channel: str
    created_at: datetime
    poll_count: int
    invalid_id_count: int


@dataclass(frozen=True, slots=True)
class JobMessage:
    """One of a job's messages, as report matching needs it."""

    id: str
    state: str
    number: str
    text: str
    gateway_message_id: str | None
    status_raw: str | None
    status_remark: str | None
    credits: int


@dataclass(frozen=True, slots=True)
class ReportWrite:
    """What one delivery report says of one message: its raw status and remark, and a gateway message id
    to fill in where the row has none."""

    id: str
    status_raw: str
    status_remark: str | None
    gateway_message_id: str | None


@dataclass(frozen=True, slots=True)
class HookAttempt:
    """One delivery attempt of a hook row, to record."""

    message_id: str
    done: bool
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_to: str | None


@dataclass(frozen=True, slots=True)
class HookRow:
    """A hook outbox row leased for delivery."""

    message_id: str
    state: str
    attempts: int
    delivered_to: str | None
    last_error: str | None
