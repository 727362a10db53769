"""A breaker on bad outcomes per (sender id, template): stop spending credits on what networks refuse.

Each sent batch adds one outcome (bad, total) to its group's recent history in Redis: bad = recipients the
gateway rejected (all of them when it rejected the whole call). A beat task adds the group's undelivered
reports whose remarks point at DLT or template problems (bad only: their messages were counted when
sent). When, over the group's last ``BREAKER_WINDOW`` messages (at least ``BREAKER_MIN_MESSAGES``), the
bad share reaches ``BREAKER_THRESHOLD``, the breaker opens: the group's queued messages are held (reason
``breaker``), later batches of the group are held before any credit is reserved, a CRITICAL line is
logged and ``smspoint_breakers_open`` counts it. ``smsdispatch breaker release`` closes it and queues
the held messages again. The database row is the record of truth; Redis only keeps the recent history.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import store, wakeup
from .db import reading, transaction
from .errors import BreakerNotFound
from .states import BatchOutcome, State
from .store import guards as guard_store

if TYPE_CHECKING:
    from .context import Context
    from .sender import SendOutcome

log = logging.getLogger(__name__)

#: Outcomes kept per group (each one batch, or one scan's reports).
HISTORY = 1000
#: Held messages queued again per transaction on release.
PAGE = 2000
#: Delivery-report remarks that point at DLT registration or template problems (operators' wording varies).
DLT_REMARK = re.compile(
    r"dlt|template|header|scrub|content|entity|pe[- ]?tm|telemarketer|consent|unregistered|not registered"
    r"|blacklist|\b61[4-8]\b", re.I)


@dataclass(frozen=True)
class Verdict:
    bad: int
    total: int

    def line(self, threshold: float) -> str:
        return f"{self.bad} bad of the last {self.total} message(s) (threshold {threshold:.0%})"


def judge(outcomes: Sequence[tuple[int, int]], window: int, threshold: float,
          min_messages: int) -> Verdict | None:
    """Newest-first (bad, total) outcomes -> a Verdict when the breaker must open, else None (pure).
    Outcomes are summed until ``window`` messages are covered."""
    bad = total = 0
    for b, t in outcomes:
        if total >= window:
            break
        bad, total = bad + b, total + t
    if total < min_messages or total == 0:
        return None
    return Verdict(bad, total) if bad / total >= threshold else None


def is_dlt_remark(remark: str | None) -> bool:
    """Whether an undelivered report's remark points at DLT / template trouble (not DND, absent phone...)."""
    return bool(remark) and DLT_REMARK.search(remark or "") is not None


def _key(ctx: Context, sender_id: str, template_id: str) -> str:
    return f"{ctx.settings.redis_prefix}:breaker:{sender_id}|{template_id}"


def record(ctx: Context, sender_id: str, template_id: str, bad: int, total: int) -> bool:
    """Add one outcome to the group's history and open the breaker if it must; True when it opened."""
    key = _key(ctx, sender_id, template_id)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.lpush(key, f"{bad}:{total}")
    pipe.ltrim(key, 0, HISTORY - 1)
    pipe.lrange(key, 0, HISTORY - 1)
    raw = pipe.execute()[2]
    outcomes = [tuple(int(x) for x in (r.decode() if isinstance(r, bytes) else r).split(":")) for r in raw]
    s = ctx.settings
    verdict = judge(outcomes, s.breaker_window, s.breaker_threshold, s.breaker_min_messages)  # type: ignore[arg-type]
    return verdict is not None and trip(ctx, sender_id, template_id, verdict)


def trip(ctx: Context, sender_id: str, template_id: str, verdict: Verdict) -> bool:
    """Open the group's breaker and hold its queued messages; False when it was open already."""
    now = ctx.clock()
    why = verdict.line(ctx.settings.breaker_threshold)
    with transaction(ctx.engine) as conn:
        if not guard_store.open_breaker(conn, sender_id, template_id, now, verdict.bad, verdict.total, why):
            return False
        held = guard_store.hold_group(conn, sender_id, template_id, now, f"breaker open: {why}")
    log.critical("breaker OPEN for sender %s template %s: %s; %d queued message(s) held. Fix the template "
                 "(DLT), then: smsdispatch breaker release %s %s", sender_id, template_id, why, held,
                 sender_id, template_id)
    return True


def is_open(ctx: Context, sender_id: str, template_id: str) -> bool:
    with reading(ctx.engine) as conn:
        row = guard_store.get_breaker(conn, sender_id, template_id)
    return row is not None and row["state"] == "open"


def after_send(ctx: Context, batch: store.BatchRow, outcome: SendOutcome) -> SendOutcome:
    """Record a sent (or rejected) batch's outcome for its group; returns the outcome unchanged."""
    if outcome.outcome in (BatchOutcome.SENT, BatchOutcome.FAILED) and outcome.size:
        bad = outcome.size if outcome.outcome is BatchOutcome.FAILED else outcome.failed
        try:
            record(ctx, batch.sender_id, batch.template_id, bad, outcome.size)
        except Exception as exc:  # noqa: BLE001 - the batch's own result is recorded; never lose it here
            log.error("breaker: could not record batch %s (%s)", batch.id, exc.__class__.__name__)
    return outcome


def release(ctx: Context, sender_id: str, template_id: str, by: str = "operator") -> int:
    """Close the group's breaker, forget its history and queue its held messages; returns how many."""
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        if not guard_store.release_breaker(conn, sender_id, template_id, now, by):
            raise BreakerNotFound(f"no open breaker for sender id {sender_id!r} and template {template_id!r}")
    ctx.redis.delete(_key(ctx, sender_id, template_id))
    total = 0
    while True:
        with transaction(ctx.engine) as conn:
            ids = guard_store.held_by_breaker(conn, sender_id, template_id, PAGE)
            items = store.requeue(conn, ids, State.HELD, now)
        wakeup.push(ctx, items)
        total += len(items)
        if len(ids) < PAGE:
            break
    log.warning("breaker released for sender %s template %s by %s: %d message(s) queued", sender_id,
                template_id, by, total)
    return total


def breakers(ctx: Context, *, open_only: bool = True) -> list[dict[str, Any]]:
    with reading(ctx.engine) as conn:
        return guard_store.breakers(conn, open_only=open_only)


def scan_reports(ctx: Context) -> dict[str, int]:
    """Count undelivered reports with DLT remarks that arrived since the last scan, per group, and record
    them (bad only). The time already scanned up to is kept in Redis."""
    now = ctx.clock()
    mark = f"{ctx.settings.redis_prefix}:breaker:scanned_until"
    raw = ctx.redis.get(mark)
    since = (datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw) if raw
             else now - timedelta(seconds=2 * ctx.settings.breaker_scan_interval_s))
    horizon = now - timedelta(hours=ctx.settings.sync_horizon_h)
    with reading(ctx.engine) as conn:
        rows = guard_store.undelivered_since(conn, since, now, horizon)
    bad: dict[tuple[str, str], int] = defaultdict(int)
    for sender_id, template_id, remark in rows:
        if is_dlt_remark(remark):
            bad[(sender_id, template_id)] += 1
    opened = 0
    for (sender_id, template_id), n in bad.items():
        opened += record(ctx, sender_id, template_id, n, 0)
    ctx.redis.set(mark, now.isoformat())
    return {"undelivered": len(rows), "dlt": sum(bad.values()), "opened": opened}
