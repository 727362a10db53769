"""Sending one batch: the only place that calls the gateway's send commands.

    pending batch ──(credits reserved, rate limit taken)──► commit the batch `sending` ──► gateway call
        ──► commit `sent` + job id + each recipient's gateway message id        (one transaction)
            (a recipient the answer neither lists nor refuses: `unconfirmed`, settled by the reports)
        ──► or: rejected -> failed | no credits / auth / gateway down -> held | ambiguous -> unknown

Every step is guarded by the batch's state, so a redelivered task, a second worker or a republished
batch does nothing. `sending` is one row: the batch's (its claimed messages stay stored as `queued` and
read as `sending`, states.THROUGH_BATCH), so a message row is written once between enqueue and the
answer. A crash after `sending` is committed leaves the batch in `sending`; the sweeper turns a stale one
and its messages into `unknown` (never resent automatically). A database failure around the `sending`
commit, or before a retry, with no call made, puts the batch back to `pending` (_undo_sending).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import Connection

from . import breaker, optout, priority, store
from .account import held_for_authentication, hold_for_authentication, refresh_balance
from .channels import Channel
from .credits import ReserveResult
from .db import reading, transaction
from .errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    GatewayError,
    InsufficientCredits,
    RetryableGatewayError,
    StorageUnavailable,
)
from .gateway import SendResult
from .gateway.retry import unsent_retry
from .matching import Refusal, account
from .numbers import mask
from .observe import observe_batch, observe_call, observe_unconfirmed
from .schedule import next_window_start
from .states import BatchOutcome, BatchState, HoldReason, State

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Longest wait for the shared rate limit before a batch is left pending (republished by the sweeper).
LIMIT_WAIT_S = 30.0
#: Why a message is `unconfirmed` (its last_error and event detail).
UNCONFIRMED_REASON = "accepted call, but the gateway's answer did not list this recipient"


@dataclass
class SendOutcome:
    batch_id: str
    outcome: BatchOutcome
    size: int = 0
    sent: int = 0
    failed: int = 0
    job_id: str | None = None
    detail: str = ""
    unconfirmed: int = 0


def send_batch(ctx: Context, batch_id: str) -> SendOutcome:
    """Send one pending batch through the gateway (idempotent: a non-pending batch is left alone)."""
    with reading(ctx.engine) as conn:
        batch = store.get_batch(conn, batch_id)
        messages = store.batch_messages(conn, batch_id, State.QUEUED) if batch else []
    if batch is None or batch.state != BatchState.PENDING:
        return SendOutcome(batch_id, BatchOutcome.SKIPPED,
                           detail=f"batch is {batch.state if batch else 'missing'}")
    if batch.channel != Channel.OTP:
        priority.yield_for(ctx, batch.lane)
        return _send(ctx, batch, messages)
    try:
        return _send(ctx, batch, messages)
    finally:  # whatever the outcome, these OTPs no longer hold bulk calls back
        try:
            ctx.priority.done(m.id for m in messages)
        except RedisError as exc:  # their entries age out of the signal (otp_priority_stale_ms)
            log.warning("OTP priority signal unavailable (%s)", exc.__class__.__name__)


def _send(ctx: Context, batch: store.BatchRow, messages: list[store.Outgoing]) -> SendOutcome:
    batch_id = batch.id
    channel = Channel(batch.channel)
    messages = optout.drop_opted_out(ctx, batch_id, channel, messages)
    if not messages:
        with transaction(ctx.engine) as conn:
            store.move_batch(conn, batch_id, BatchState.CANCELLED, ctx.clock())
        return SendOutcome(batch_id, BatchOutcome.SKIPPED, detail="no queued messages")
    later = _outside_window(ctx, channel)
    if later is not None:
        with transaction(ctx.engine) as conn:
            moved = store.reschedule_batch(conn, batch_id, later, ctx.clock())
            store.move_batch(conn, batch_id, BatchState.CANCELLED, ctx.clock(),
                             error="outside the promotional window")
        return SendOutcome(batch_id, BatchOutcome.RESCHEDULED, size=moved,
                           detail=f"outside window; at {later}")
    held = _held_lane(ctx, batch)
    if held is not None:
        return held
    credits = sum(m.credits for m in messages)
    try:
        reserved = _reserve(ctx, channel.package, credits)
    except AuthenticationFailed:  # the balance refresh was refused: nothing reserved, nothing sent
        return _auth_failed(ctx, batch_id, BatchState.PENDING)
    except GatewayError as exc:  # the balance refresh failed: nothing reserved, nothing sent
        return _hold(ctx, batch_id, HoldReason.GATEWAY_DOWN, f"balance unavailable: {exc}")
    if not reserved:
        return _hold(ctx, batch_id, HoldReason.CREDITS,
                     f"not enough {channel.package} credits for {credits}")
    try:
        ctx.limiter.acquire(sum(m.parts for m in messages), timeout=LIMIT_WAIT_S)
    except TimeoutError:
        ctx.ledger.release(channel.package, credits)  # still pending: the sweeper republishes it
        return SendOutcome(batch_id, BatchOutcome.DEFERRED, detail="shared rate limit busy")
    except BaseException:
        ctx.ledger.release(channel.package, credits)
        raise
    now = ctx.clock()
    taken = _commit_sending(ctx, batch_id, channel.package, credits, now)
    if taken is not None:
        return taken
    return breaker.after_send(ctx, batch, _call(ctx, batch, channel, messages, credits, now))


def _commit_sending(ctx: Context, batch_id: str, package: str, credits: int, now: datetime
                    ) -> SendOutcome | None:
    """Commit the batch `sending`, the last step before the call: None when committed; otherwise the
    reservation is released and the outcome says why."""
    try:
        with transaction(ctx.engine) as conn:
            if store.move_batch(conn, batch_id, BatchState.SENDING, now, credits=credits):
                return None
    except StorageUnavailable:  # `sending` may have been committed, its answer lost; no call was made
        _undo_sending(ctx, batch_id, package, credits, now)
        raise
    except BaseException:
        ctx.ledger.release(package, credits)
        raise
    ctx.ledger.release(package, credits)
    return SendOutcome(batch_id, BatchOutcome.SKIPPED, detail="batch taken by another worker")


def _held_lane(ctx: Context, batch: store.BatchRow) -> SendOutcome | None:
    """Hold the batch (before any credit is reserved) while gateway authentication fails or its group's
    breaker is open."""
    if held_for_authentication(ctx):
        return _hold(ctx, batch.id, HoldReason.AUTHENTICATION, "lane held: gateway authentication failing")
    if breaker.is_open(ctx, batch.sender_id, batch.template_id):
        return _hold(ctx, batch.id, HoldReason.BREAKER, "breaker open for this sender id and template")
    return None


def _outside_window(ctx: Context, channel: Channel) -> datetime | None:
    """For promotional batches drained after the window closed: when the next window opens."""
    if channel is not Channel.PROMOTIONAL:
        return None
    s = ctx.settings
    return next_window_start(ctx.clock(), s.promo_window_start, s.promo_window_end, s.timezone)


class _Taken(Exception):
    """The batch left `sending` while its call was being retried (the sweeper judged it stale): it is no
    longer this worker's to send."""


def _still_sending(ctx: Context, batch_id: str) -> None:
    """Before a retry: the batch must still be `sending`. Settings keep ``stale_sending_after_s`` longer
    than a send with all its retries can last, so this fails only when that promise is broken (clocks of
    two hosts far apart, a process paused for minutes)."""
    with reading(ctx.engine) as conn:
        state = store.batch_state(conn, batch_id)
    if state != BatchState.SENDING:
        raise _Taken(f"the batch left 'sending' (now {state}) while the call was retried")


def _undo_sending(ctx: Context, batch_id: str, package: str, credits: int, sending_at: datetime) -> None:
    """The database failed while this worker committed `sending` (the commit may have happened, its answer
    lost) or before a retry, and no call reached the gateway: the reservation is released and the batch
    goes back to `pending`, if it is still this worker's `sending` (store.undo_sending), to be sent later
    instead of ending `unknown`. The database's outage is waited out as for an answer (_after_call); if it
    outlasts that, the batch stays `sending` and the sweeper makes it `unknown`, as for a worker that died
    there."""
    ctx.ledger.release(package, credits)
    try:
        undone = _after_call(ctx, lambda conn: store.undo_sending(conn, batch_id, sending_at))
    except StorageUnavailable:
        log.error("batch %s: database unavailable; its 'sending' (no call made) could not be undone",
                  batch_id)
        return
    if undone:
        log.warning("batch %s: database lost around its 'sending'; no call was made, back to pending",
                    batch_id)


def _reserve(ctx: Context, package: str, credits: int) -> bool:
    ledger = ctx.ledger
    res = ledger.reserve(package, credits, max_age_s=ctx.settings.balance_refresh_s)
    if res is ReserveResult.RESERVED:
        return True
    refresh_balance(ctx)
    return ledger.reserve(package, credits) is ReserveResult.RESERVED


def _call(ctx: Context, batch: store.BatchRow, channel: Channel, messages: list[store.Outgoing],
          credits: int, sending_at: datetime) -> SendOutcome:
    batch_id = batch.id
    s = ctx.settings
    observe_batch(ctx, len(messages), batch.lane)
    try:
        for attempt in unsent_retry(s.retry_max_attempts, s.retry_max_elapsed_s):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    _still_sending(ctx, batch_id)
                started = time.monotonic()
                try:
                    result = ctx.client.send_bulk(messages, sender_id=batch.sender_id,
                                                  template_id=batch.template_id, channel=channel,
                                                  is_unicode=bool(batch.is_unicode))
                except GatewayError as exc:
                    observe_call(ctx, "send-bulk-sms", time.monotonic() - started, type(exc).__name__)
                    raise
                observe_call(ctx, "send-bulk-sms", time.monotonic() - started)
    except _Taken as exc:  # nothing was sent; the sweeper made the batch and its messages unknown
        ctx.ledger.release(channel.package, credits)
        log.error("batch %s: %s; not retried", batch_id, exc)
        return SendOutcome(batch_id, BatchOutcome.SKIPPED, detail=str(exc))
    except StorageUnavailable:  # from _still_sending: every call so far was provably unsent
        _undo_sending(ctx, batch_id, channel.package, credits, sending_at)
        raise
    except AmbiguousOutcome as exc:
        ctx.ledger.settle_unknown(channel.package, credits)
        return _unknown(ctx, batch_id, f"ambiguous gateway outcome: {exc}")
    except InsufficientCredits:
        ctx.ledger.release(channel.package, credits)
        ctx.ledger.set_balance(channel.package, 0)
        return _hold(ctx, batch_id, HoldReason.CREDITS, "gateway: SMS Credits Not Available",
                     frm=BatchState.SENDING)
    except AuthenticationFailed:
        ctx.ledger.release(channel.package, credits)
        return _auth_failed(ctx, batch_id, BatchState.SENDING)
    except RetryableGatewayError as exc:
        ctx.ledger.release(channel.package, credits)
        return _hold(ctx, batch_id, HoldReason.GATEWAY_DOWN, f"gateway unavailable: {exc}",
                     frm=BatchState.SENDING)
    except GatewayError as exc:
        ctx.ledger.release(channel.package, credits)
        return _fail(ctx, batch_id, f"rejected by gateway: {exc}")
    return _record(ctx, batch, channel, messages, credits, result, sending_at)


def _record(ctx: Context, batch: store.BatchRow, channel: Channel, messages: list[store.Outgoing],
            credits: int, result: SendResult, sending_at: datetime) -> SendOutcome:
    """Account for every recipient from the gateway's answer (:func:`dispatcher.matching.account`) and
    commit it in one transaction: listed -> `sent` with its gateway message id, refused -> `failed`,
    neither -> `unconfirmed` (its credits stay reserved until the delivery reports settle it).

    The batch's own move out of `sending` comes first and guards the rest: its claimed rows are stored as
    `queued` (states.THROUGH_BATCH). If the sweeper judged the batch stale meanwhile (its messages are
    `unknown`), the answer is still the truth and is written over `unknown`: listed -> `sent`, refused ->
    `failed`; the unlisted stay `unknown`."""
    acc = account(messages, result.messages if result.listed else None,  # rows and entries as they are
                  [Refusal(r.number, r.reason) for r in result.rejected])
    by_id = {m.id: m for m in messages}
    sent_rows = [{"id": mid, "gateway_message_id": acc.ids.get(mid), "credits_charged": by_id[mid].credits}
                 for mid in acc.accepted]
    failed = [(by_id[mid], reason) for mid, reason in acc.failed.items()]
    charged = sum(by_id[mid].credits for mid in acc.accepted)
    pending = sum(by_id[mid].credits for mid in acc.unconfirmed)
    released = credits - charged - pending
    now = ctx.clock()
    job_id = result.job_id

    def write(conn: Connection) -> None:
        frm = State.QUEUED
        if not store.move_batch(conn, batch.id, BatchState.SENT, now, job_id=job_id):
            frm = State.UNKNOWN
            log.error("batch %s was judged stale before its answer arrived; recording the answer over "
                      "'unknown'", batch.id)
        store.mark_sent(conn, sent_rows, job_id, now, batch_id=batch.id, sending_at=sending_at, frm=frm)
        failed_ids = [m.id for m, _ in failed]
        for m, reason in failed:
            store.move_messages(conn, [m.id], State.FAILED, now, frm=frm, last_error=reason)
        if failed:
            store.add_events(conn, failed_ids, State.FAILED, now, "rejected by gateway")
        if acc.unconfirmed and frm is State.QUEUED:
            moved = store.move_messages(conn, acc.unconfirmed, State.UNCONFIRMED, now, frm=frm,
                                        gateway_job_id=job_id, sending_at=sending_at, attempts=1,
                                        last_error=UNCONFIRMED_REASON)
            store.add_events(conn, moved, State.UNCONFIRMED, now, UNCONFIRMED_REASON)
        if job_id and (sent_rows or acc.unconfirmed):
            store.insert_job(conn, {"job_id": job_id, "batch_id": batch.id, "channel": channel.value,
                                    "size": len(sent_rows) + len(acc.unconfirmed), "created_at": now,
                                    "open": True, "next_poll_at": now, "poll_count": 0,
                                    "invalid_id_count": 0, "credits_reserved": credits,
                                    "credits_charged": charged, "credits_released": released})

    _after_call(ctx, write)
    if charged:
        ctx.ledger.commit(channel.package, charged)
    if released > 0:
        ctx.ledger.release(channel.package, released)
    for m, reason in failed[:5]:
        log.warning("gateway rejected %s in batch %s: %s", mask(m.number), batch.id, reason)
    if acc.unconfirmed or acc.unmatched or acc.ambiguous or acc.repeats:
        log.warning("batch %s (job %s): the answer did not list %d of %d recipient(s) (unconfirmed until "
                    "the delivery reports show them); %d entry(ies) fit no recipient, %d fit several, "
                    "%d repeated",
                    batch.id, job_id, len(acc.unconfirmed), len(messages), acc.unmatched, acc.ambiguous,
                    acc.repeats)
        observe_unconfirmed(ctx, len(acc.unconfirmed))
    log.info("batch %s: %d sent as job %s, %d unconfirmed, %d rejected", batch.id, len(sent_rows), job_id,
             len(acc.unconfirmed), len(failed))
    return SendOutcome(batch.id, BatchOutcome.SENT, size=len(messages), sent=len(sent_rows),
                       failed=len(failed), job_id=job_id, unconfirmed=len(acc.unconfirmed))


def _after_call(ctx: Context, write: Callable[[Connection], T], budget_s: float = 120.0) -> T:
    """Run ``write`` in a transaction, for what the gateway answered: that answer is the most valuable
    thing we hold, so a database outage is waited out (up to ``budget_s``) rather than leaving rows in
    `sending` (which would end as `unknown`)."""
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            with transaction(ctx.engine) as conn:
                return write(conn)
        except StorageUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable while recording a gateway answer; retrying in %.1fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _auth_failed(ctx: Context, batch_id: str, frm: BatchState) -> SendOutcome:
    hold_for_authentication(ctx)
    log.critical("gateway authentication failed: lanes are held until the API key works again")
    return _hold(ctx, batch_id, HoldReason.AUTHENTICATION, "gateway: API key not accepted", frm=frm)


def _hold(ctx: Context, batch_id: str, reason: HoldReason, detail: str,
          frm: BatchState = BatchState.PENDING) -> SendOutcome:
    """The batch (still in ``frm``) and its messages -> held. Nothing moves if the batch has left ``frm``:
    another worker that took it owns its messages."""
    now = ctx.clock()
    error = detail  # the store fits texts to their columns

    def write(conn: Connection) -> int:
        if not store.move_batch(conn, batch_id, BatchState.HELD, now, frm=frm, error=error):
            return -1
        return len(store.move_batch_messages(conn, batch_id, State.HELD, now, hold_reason=reason.value,
                                             last_error=error))

    moved = _after_call(ctx, write)
    if moved < 0:
        return SendOutcome(batch_id, BatchOutcome.SKIPPED, detail=f"batch no longer {frm.value}")
    log.warning("batch %s: %d message(s) held (%s): %s", batch_id, moved, reason.value, detail)
    return SendOutcome(batch_id, BatchOutcome.HELD, size=moved, detail=f"{reason.value}: {detail}")


def _fail(ctx: Context, batch_id: str, detail: str) -> SendOutcome:
    now = ctx.clock()
    error = detail  # the store fits texts to their columns

    def write(conn: Connection) -> int:
        if not store.move_batch(conn, batch_id, BatchState.FAILED, now, error=error):
            return 0
        return len(store.move_batch_messages(conn, batch_id, State.FAILED, now, last_error=error))

    moved = _after_call(ctx, write)
    log.warning("batch %s: %d message(s) failed: %s", batch_id, moved, detail)
    return SendOutcome(batch_id, BatchOutcome.FAILED, size=moved, failed=moved, detail=detail)


def _unknown(ctx: Context, batch_id: str, detail: str) -> SendOutcome:
    now = ctx.clock()
    error = detail  # the store fits texts to their columns

    def write(conn: Connection) -> list[str]:
        if not store.move_batch(conn, batch_id, BatchState.UNKNOWN, now, error=error):
            return []
        moved = store.move_batch_messages(conn, batch_id, State.UNKNOWN, now, frm=State.QUEUED,
                                          last_error=error)
        store.add_events(conn, moved, State.UNKNOWN, now, error)
        return moved

    moved = _after_call(ctx, write)
    log.error("batch %s: %d message(s) UNKNOWN (not resent automatically): %s", batch_id, len(moved), detail)
    return SendOutcome(batch_id, BatchOutcome.UNKNOWN, size=len(moved), detail=detail)
