"""Periodic repair and release (run by beat): what crashes, restarts and holds leave behind.

- Redis lost its data (flush, restart without AOF): every queued message is pushed again and every
  pending batch republished.
- A pending batch whose task message was lost (worker SIGKILLed after taking it) is republished.
- A queued message not seen to move for ``requeue_after_s`` is pushed again (a duplicate entry is
  harmless: the collector's guarded claim skips ids that are already batched).
- A batch stuck in ``sending`` longer than ``stale_sending_after_s`` becomes ``unknown`` with its
  messages: the worker died between committing ``sending`` and recording the gateway's answer; they may
  have been sent.
- Scheduled messages whose time has come, and held messages whose cause has cleared, are queued.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from . import store, wakeup
from .account import held_for_authentication, refresh_balance, release_authentication_hold
from .channels import Channel
from .db import reading, transaction
from .errors import GatewayError
from .states import BatchState, HoldReason, State

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

PAGE = 5000
STALE_ERROR = "worker stopped between 'sending' and the gateway's answer"
STALE_EVENT = "stale sending: may or may not have been sent"


@dataclass
class SweepResult:
    redis_lost: bool = False
    republished: int = 0
    repushed: int = 0
    unknown: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def sweep(ctx: Context) -> SweepResult:
    """One repair pass; safe to run concurrently with workers and with itself."""
    s = ctx.settings
    now = ctx.clock()
    out = SweepResult(redis_lost=ctx.lanes.lost_data())
    if out.redis_lost:
        log.warning("sweeper: Redis has lost its data; pushing every queued message again")
    batch_cutoff = None if out.redis_lost else now - timedelta(seconds=s.republish_after_s)
    with transaction(ctx.engine) as conn:
        batches = store.pending_batches(conn, batch_cutoff, PAGE)
        store.touch_batches(conn, [b.id for b in batches], now)
    for b in batches:
        group = store.group_key(b.channel, b.sender_id, b.template_id, b.is_unicode)
        ctx.publisher.send_batch(b.id, b.lane, b.size, group)
    out.republished = len(batches)

    push_cutoff = None if out.redis_lost else now - timedelta(seconds=s.requeue_after_s)
    while True:
        with transaction(ctx.engine) as conn:
            items = store.unpushed_queued(conn, push_cutoff, PAGE)
            store.mark_pushed(conn, [i for i, _ in items], now)
        if not items:
            break
        wakeup.push(ctx, items)
        out.repushed += len(items)
        if len(items) < PAGE:
            break

    stale_before = now - timedelta(seconds=s.stale_sending_after_s)
    with transaction(ctx.engine) as conn:
        for batch_id in store.stale_sending_batches(conn, stale_before, PAGE):
            if store.move_batch(conn, batch_id, BatchState.UNKNOWN, now, frm=BatchState.SENDING,
                                error=STALE_ERROR):
                moved = store.move_batch_messages(conn, batch_id, State.UNKNOWN, now, frm=State.QUEUED,
                                                  last_error=STALE_ERROR)
                store.add_events(conn, moved, State.UNKNOWN, now, STALE_EVENT)
                out.unknown += len(moved)
        # rows a version before the batch carried `sending` wrote as `sending`
        stale = store.stale_sending(conn, stale_before, PAGE)
        moved = store.move_messages(conn, stale, State.UNKNOWN, now, frm=State.SENDING,
                                    last_error=STALE_ERROR)
        store.add_events(conn, moved, State.UNKNOWN, now, STALE_EVENT)
        out.unknown += len(moved)
    if out.unknown:
        log.error("sweeper: %d stale 'sending' message(s) marked unknown", out.unknown)
    _resync_inflight(ctx)
    return out


def _resync_inflight(ctx: Context) -> None:
    """In-flight credits follow the database (a SIGKILLed worker cannot leak a reservation for ever)."""
    with reading(ctx.engine) as conn:
        by_channel = store.inflight_credits(conn)
    for channel in Channel:
        ctx.ledger.set_inflight(channel.package, by_channel.get(channel.value, 0))


@dataclass
class ReleaseResult:
    scheduled: int = 0
    credits: int = 0
    gateway_down: int = 0
    authentication: int = 0


def release_due(ctx: Context) -> ReleaseResult:
    """Queue scheduled messages whose time has come and held messages whose cause has cleared."""
    out = ReleaseResult()
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        ids = store.due_scheduled(conn, now, PAGE)
        items = store.requeue(conn, ids, State.SCHEDULED, now)
    wakeup.push(ctx, items)
    out.scheduled = len(items)

    with transaction(ctx.engine) as conn:
        down = store.held(conn, HoldReason.GATEWAY_DOWN.value, PAGE,
                          before=now - timedelta(seconds=ctx.settings.gateway_down_retry_s))
        items = store.requeue(conn, [i for i, _, _ in down], State.HELD, now)
    wakeup.push(ctx, items)
    out.gateway_down = len(items)

    out.authentication = _release_auth(ctx)
    out.credits = _release_credits(ctx)
    return out


def _release_auth(ctx: Context) -> int:
    if not held_for_authentication(ctx):
        with reading(ctx.engine) as conn:
            held = store.held(conn, HoldReason.AUTHENTICATION.value, 1)
        if not held:
            return 0
    try:
        refresh_balance(ctx)  # proves the key works again
    except GatewayError as exc:
        log.error("gateway authentication still failing (%s); lanes stay held", exc.__class__.__name__)
        return 0
    release_authentication_hold(ctx)
    total = 0
    now = ctx.clock()
    while True:
        with transaction(ctx.engine) as conn:
            rows = store.held(conn, HoldReason.AUTHENTICATION.value, PAGE)
            items = store.requeue(conn, [i for i, _, _ in rows], State.HELD, now)
        wakeup.push(ctx, items)
        total += len(items)
        if len(rows) < PAGE:
            break
    log.warning("gateway authentication works again: %d held message(s) queued", total)
    return total


def _release_credits(ctx: Context) -> int:
    with reading(ctx.engine) as conn:
        rows = store.held(conn, HoldReason.CREDITS.value, PAGE * 4)
    if not rows:
        return 0
    try:
        balances = refresh_balance(ctx)
    except GatewayError as exc:
        log.warning("credit release: balance unavailable (%s)", exc.__class__.__name__)
        return 0
    budget = {pkg: max(0, n) for pkg, n in balances.items()}
    take: list[str] = []
    by_pkg: dict[str, int] = defaultdict(int)
    for mid, credits, channel in rows:
        pkg = Channel(channel).package
        if by_pkg[pkg] + credits <= budget.get(pkg, 0):
            by_pkg[pkg] += credits
            take.append(mid)
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        items = store.requeue(conn, take, State.HELD, now)
    wakeup.push(ctx, items)
    if items:
        log.info("credits available again: %d held message(s) queued", len(items))
    return len(items)


def refresh_catalog(ctx: Context, *, force: bool = False) -> dict[str, object]:
    """Fetch sender ids and templates when the shared copy is missing or older than catalog_refresh_s."""
    current = ctx.catalog.get()
    age = None if current is None else time.time() - current.fetched_at
    if not force and age is not None and age < ctx.settings.catalog_refresh_s:
        return {"refreshed": False, "age_s": round(age, 1)}
    try:
        catalog = ctx.catalog.refresh(ctx.client)
    except GatewayError as exc:
        log.warning("catalogue refresh failed (%s); keeping the previous copy", exc.__class__.__name__)
        return {"refreshed": False, "error": exc.__class__.__name__}
    return {"refreshed": True, "senders": len(catalog.senders), "templates": len(catalog.templates)}
