"""SQLModel tables: the database is the record of truth for every message.

States and transitions are documented in dispatcher/states.py; this module only declares storage.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index over the rows that meet ``where`` (PostgreSQL and SQLite both support them)."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


class Message(SQLModel, table=True):
    """One SMS to one recipient, from enqueue to its final delivery state."""

    __tablename__ = "message"
    # Every state change rewrites the row and, since `state` is indexed, adds an entry to every index
    # whose condition the new row meets: a message moves queued -> claimed -> sending -> sent, so each
    # index entry is paid four times. Indexes therefore cover only the rows their queries look for.
    __table_args__ = (
        partial_index("ix_message_unpushed", "pushed_at", where="state = 'queued' AND batch_id IS NULL"),
        partial_index("ix_message_scheduled", "send_at", where="state = 'scheduled'"),
        partial_index("ix_message_attention", "state", "updated_at",
                      where="state IN ('held', 'sending', 'unknown', 'unconfirmed')"),
        partial_index("ix_message_failed", "final_at", where="state = 'failed'"),
        partial_index("ix_message_gateway_job", "gateway_job_id", where="gateway_job_id IS NOT NULL"),
        partial_index("ix_message_batch", "batch_id", where="batch_id IS NOT NULL"),
        Index("ix_message_created", "created_at"),
        # unique among the rows that have one (SQLite databases made by migration 0001 keep the table's
        # UNIQUE constraint, which allows many NULLs too: the same rule)
        Index("ix_message_idempotency", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)
    hold_reason: str | None = Field(default=None, max_length=32)
    channel: str = Field(max_length=16)
    sender_id: str = Field(max_length=32)
    template_id: str = Field(max_length=64)
    is_unicode: bool = False
    number: str = Field(max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    parts: int = 1
    credits: int = 1
    idempotency_key: str | None = Field(default=None, max_length=200)
    meta: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    bulk_id: str | None = Field(default=None, max_length=32)
    batch_id: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    created_at: datetime
    send_at: datetime | None = None
    pushed_at: datetime | None = None
    sending_at: datetime | None = None
    sent_at: datetime | None = None
    final_at: datetime | None = None
    updated_at: datetime | None = None
    gateway_job_id: str | None = Field(default=None, max_length=64)
    gateway_message_id: str | None = Field(default=None, max_length=64)
    credits_charged: int | None = None
    status_raw: str | None = Field(default=None, max_length=64)
    status_remark: str | None = Field(default=None, max_length=255)
    last_error: str | None = Field(default=None, max_length=500)


class Batch(SQLModel, table=True):
    """One gateway call's worth of messages of one group (<= 2000)."""

    __tablename__ = "batch"
    __table_args__ = (Index("ix_batch_state_published", "state", "published_at"),)

    id: str = Field(primary_key=True, max_length=32)
    lane: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    sender_id: str = Field(max_length=32)
    template_id: str = Field(max_length=64)
    is_unicode: bool = False
    size: int = 0
    credits: int = 0  #: reserved for the call (written with `sending`)
    state: str = Field(max_length=16)
    created_at: datetime
    published_at: datetime | None = None
    sending_at: datetime | None = None
    done_at: datetime | None = None
    job_id: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=500)


class GatewayJob(SQLModel, table=True):
    """A job id the gateway returned; polled for delivery reports until all its messages are final."""

    __tablename__ = "gateway_job"
    __table_args__ = (Index("ix_job_open_next", "open", "next_poll_at"),)

    job_id: str = Field(primary_key=True, max_length=64)
    batch_id: str | None = Field(default=None, max_length=32)
    channel: str = Field(max_length=16)
    size: int = 0
    created_at: datetime
    open: bool = True
    next_poll_at: datetime
    poll_count: int = 0
    invalid_id_count: int = 0
    lease_until: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=64)
    last_polled_at: datetime | None = None
    closed_at: datetime | None = None
    #: credits reserved for the call, shown charged by the gateway's answers, and released (migration 0004)
    credits_reserved: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    credits_charged: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    credits_released: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class MessageEvent(SQLModel, table=True):
    """A notable transition (hold, unknown, failure, operator action) for a message's history."""

    __tablename__ = "message_event"
    __table_args__ = (Index("ix_event_message", "message_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=32)
    at: datetime
    state: str = Field(max_length=16)
    detail: str | None = Field(default=None, max_length=500)


class HookOutbox(SQLModel, table=True):
    """One callback per message reaching a final state; delivered (and retried) by the hooks task."""

    __tablename__ = "hook_outbox"
    __table_args__ = (Index("ix_hook_due", "done", "next_attempt_at"),)

    message_id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    done: bool = False
    last_error: str | None = Field(default=None, max_length=500)
    #: targets that already took this row ("callable", "webhook", comma-separated); migration 0002
    delivered_to: str | None = Field(default=None, max_length=32)


MESSAGE = Message.__table__  # type: ignore[attr-defined]
BATCH = Batch.__table__  # type: ignore[attr-defined]
JOB = GatewayJob.__table__  # type: ignore[attr-defined]
EVENT = MessageEvent.__table__  # type: ignore[attr-defined]
OUTBOX = HookOutbox.__table__  # type: ignore[attr-defined]


class ApiKey(SQLModel, table=True):
    """A key of the HTTP API. Only a SHA-256 of the key is stored; the key itself is shown once."""

    __tablename__ = "api_key"

    #: the key's public part (``smsd_<id>_<secret>``): finds the row, and names the key in lists and logs
    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    secret_hash: str = Field(max_length=64)
    #: comma-separated: send, read
    scopes: str = Field(max_length=64)
    #: requests per second; None: Settings.api_rate_per_s
    rate_per_s: float | None = None
    created_at: datetime
    revoked_at: datetime | None = None


class OptOut(SQLModel, table=True):
    """A number that opted out of a channel (suppression list): who recorded it, when and why."""

    __tablename__ = "opt_out"

    number: str = Field(primary_key=True, max_length=20)  #: normalised as message.number
    channel: str = Field(primary_key=True, max_length=16)
    created_at: datetime
    reason: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=64)  #: who recorded it (operator, import file...)


class Breaker(SQLModel, table=True):
    """The breaker of one (sender id, template) group: open while its bad outcomes passed the threshold."""

    __tablename__ = "breaker"

    sender_id: str = Field(primary_key=True, max_length=32)
    template_id: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)  #: open | released
    opened_at: datetime
    bad: int = 0
    total: int = 0
    reason: str | None = Field(default=None, max_length=500)
    released_at: datetime | None = None
    released_by: str | None = Field(default=None, max_length=64)


class LinkWhitelist(SQLModel, table=True):
    """A URL prefix or call-back number on the account's DLT whitelist (kept in the database: added and
    removed at run time, read by every process within seconds); who added it, when and why."""

    __tablename__ = "link_whitelist"

    kind: str = Field(primary_key=True, max_length=3)  #: url | cbn
    key: str = Field(primary_key=True, max_length=200)  #: as compared (links.url_key / links.cbn_key)
    entry: str = Field(max_length=200)  #: as given
    created_at: datetime
    source: str | None = Field(default=None, max_length=64)  #: who added it (operator, import file...)
    note: str | None = Field(default=None, max_length=200)


API_KEY = ApiKey.__table__  # type: ignore[attr-defined]
OPT_OUT = OptOut.__table__  # type: ignore[attr-defined]
BREAKER = Breaker.__table__  # type: ignore[attr-defined]
LINK_WHITELIST = LinkWhitelist.__table__  # type: ignore[attr-defined]
