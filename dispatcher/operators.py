"""What operators ask of the system: the report, message history, and resolving ``unknown`` messages.

``unknown`` means the gateway may or may not have the message (a timeout after the request left, a worker
killed mid-call). Nothing resends it automatically; an operator decides, after checking the gateway's
portal or the recipient: ``resend`` (unknown -> queued, pushed into its lane again: a duplicate if the
gateway did have it) or ``fail`` (unknown -> failed, with the operator's reason).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import store, wakeup
from .db import transaction
from .errors import InvalidTransition, MessageNotFound, ValidationError
from .models import MESSAGE
from .numbers import mask
from .retention import parse_duration
from .states import State

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

M = MESSAGE.c
PAGE = 5000
#: States whose delivery report is in: the delivery rate is delivered / these.
REPORTED = (State.DELIVERED, State.UNDELIVERED, State.EXPIRED)
#: States in which the gateway accepted the message.
ACCEPTED = (State.SENT, *REPORTED)


def parse_since(text: str, now: datetime, tz: str = "UTC") -> datetime:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` before ``now``, or an ISO date/time (naive: in ``tz``)."""
    ago = parse_duration(text)
    if ago is not None:
        return now - ago
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError("since", f"{text!r} is neither a duration like 1h / 30m / 2d nor an ISO "
                                       "date such as 2025-01-31T09:00+05:30") from exc
    return when if when.utcoffset() is not None else when.replace(tzinfo=ZoneInfo(tz))


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    """Counts, delivery rate, credits and latencies of the messages created since ``since``."""

    since: datetime | None
    total: int
    by_state: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    accepted: int
    delivery_rate: float | None
    credits_charged: int
    latency_s: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    #: over the gateway jobs of the period: reserved, charged, released; and the credits of `unknown`
    #: (unaccounted for: the gateway may have charged them) and `unconfirmed` (awaiting reports) messages
    credits: dict[str, int] = field(default_factory=dict)
    #: the most recent jobs' credits (job_id, channel, size, reserved, charged, released, pending)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        return out


def report(ctx: Context, since: datetime | None = None, jobs: int = 0) -> Report:
    """The operator's report over messages created at or after ``since`` (all messages when None), with
    the credits of the ``jobs`` most recent gateway jobs."""
    with transaction(ctx.engine) as conn:
        credits = store.credit_totals(conn, since)
        recent = store.job_credits(conn, since, jobs) if jobs else []
        counts = store.counts_by_state(conn, since)
        charged = store.credits_charged(conn, since)
        lat = {
            "enqueue_to_sent": store.latency(conn, "sent_at", None, since),
            "enqueue_to_delivered": store.latency(conn, "final_at", State.DELIVERED, since),
        }
    by_state: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    for (state, channel), n in sorted(counts.items()):
        by_state[state] = by_state.get(state, 0) + n
        by_channel.setdefault(channel, {})[state] = n
    reported = sum(by_state.get(s.value, 0) for s in REPORTED)
    rate = by_state.get(State.DELIVERED.value, 0) / reported if reported else None
    for job in recent:
        job["created_at"] = job["created_at"].isoformat()
    return Report(since, sum(by_state.values()), by_state, by_channel,
                  sum(by_state.get(s.value, 0) for s in ACCEPTED), rate, charged, lat, credits, recent)


# --------------------------------------------------------------------------- history


def timeline(status: Any) -> list[tuple[datetime, str, str]]:
    """A message's history, oldest first: its timestamps and recorded events as (at, state, detail)."""
    points: list[tuple[datetime, str, str]] = [(status.created_at, "created", f"channel {status.channel}")]
    for attr, label in (("send_at", "scheduled for"), ("sending_at", "sending"), ("sent_at", "sent"),
                        ("final_at", status.state)):
        at = getattr(status, attr)
        if at is not None:
            detail = ""
            if attr == "sent_at" and status.gateway_job_id:
                detail = f"gateway job {status.gateway_job_id}"
            if attr == "final_at":
                detail = " ".join(x for x in (status.status_raw, status.status_remark) if x)
            points.append((at, label, detail))
    points += [(e["at"], e["state"], e.get("detail") or "") for e in status.history]
    return sorted(points, key=lambda p: p[0])


# --------------------------------------------------------------------------- unknown messages


@dataclass(frozen=True)
class UnknownMessage:
    id: str
    channel: str
    number_masked: str
    sender_id: str
    template_id: str
    since: datetime | None
    batch_id: str | None
    gateway_job_id: str | None
    last_error: str | None


@dataclass
class ActionResult:
    """What an operator action did: the ids it moved."""

    action: str
    moved: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "moved": len(self.moved), "ids": self.moved}


def count_unknown(ctx: Context) -> int:
    with transaction(ctx.engine) as conn:
        return store.count_in_state(conn, State.UNKNOWN)


def list_unknown(ctx: Context, limit: int = 100) -> list[UnknownMessage]:
    """The oldest ``unknown`` messages first (numbers masked)."""
    with transaction(ctx.engine) as conn:
        rows = store.in_state(conn, State.UNKNOWN, limit)
    return [UnknownMessage(r.id, r.channel, mask(r.number), r.sender_id, r.template_id, r.updated_at,
                           r.batch_id, r.gateway_job_id, r.last_error) for r in rows]


def check_unknown(ctx: Context, ids: Sequence[str]) -> None:
    """Raise MessageNotFound / InvalidTransition unless every id names an ``unknown`` message."""
    states: dict[str, str] = {}
    with transaction(ctx.engine) as conn:
        for i in range(0, len(ids), PAGE):
            states.update(store.states_of(conn, ids[i:i + PAGE]))
    missing = [i for i in ids if i not in states]
    if missing:
        raise MessageNotFound(f"no message with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                      if len(missing) > 1 else ""))
    wrong = [(i, states[i]) for i in ids if states[i] != State.UNKNOWN.value]
    if wrong:
        mid, state = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise InvalidTransition(f"message {mid} is {state}, not unknown{more}: only unknown messages "
                                "can be resent or failed by an operator")


def _batches(ctx: Context, ids: Sequence[str] | None) -> Any:
    """Pages of ids to act on: the given ones, or every unknown message (``ids`` None)."""
    if ids is not None:
        for i in range(0, len(ids), PAGE):
            yield list(ids[i:i + PAGE])
        return
    after = ""
    while True:
        with transaction(ctx.engine) as conn:
            page = store.ids_in_state(conn, State.UNKNOWN, after, PAGE)
        if not page:
            return
        yield page
        after = page[-1]


def resend_unknown(ctx: Context, ids: Sequence[str] | None) -> ActionResult:
    """unknown -> queued, then pushed into the lanes (all unknown messages when ``ids`` is None)."""
    if ids is not None:
        check_unknown(ctx, ids)
    out = ActionResult("resend")
    for page in _batches(ctx, ids):
        now = ctx.clock()
        with transaction(ctx.engine) as conn:
            items = store.requeue(conn, page, State.UNKNOWN, now)
            store.add_events(conn, [i for i, _ in items], State.QUEUED, now, "operator: resend")
        try:
            wakeup.push(ctx, items)
        except Exception as exc:  # noqa: BLE001 - committed as queued: the sweeper pushes them later
            log.warning("resend: %d message(s) queued but not pushed (%s); the sweeper will push them",
                        len(items), exc.__class__.__name__)
        out.moved += [i for i, _ in items]
    log.info("operator resend: %d unknown message(s) queued again", len(out.moved))
    return out


def fail_unknown(ctx: Context, ids: Sequence[str] | None, reason: str) -> ActionResult:
    """unknown -> failed with ``reason`` (all unknown messages when ``ids`` is None)."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason", "say why these messages are failed (it is kept in their history)")
    if ids is not None:
        check_unknown(ctx, ids)
    out = ActionResult("fail")
    detail = f"operator: {reason}"
    for page in _batches(ctx, ids):
        now = ctx.clock()
        with transaction(ctx.engine) as conn:
            moved = store.move_messages(conn, page, State.FAILED, now, frm=State.UNKNOWN, last_error=detail)
            store.add_events(conn, moved, State.FAILED, now, detail)
        out.moved += moved
    log.info("operator fail: %d unknown message(s) failed (%s)", len(out.moved), reason)
    return out
