"""The delivery-report sync: poll sms-delivery-status for open gateway jobs and record each recipient's fate.

One run (the beat task, every ``sync_interval_s``)::

    due, unheld jobs (oldest first) ──lease (guarded UPDATE)──► rate limit ──► sms-delivery-status
        ──► one transaction: guarded bulk UPDATEs of the job's messages + hook outbox rows for the rows
            that really became final + the job's next poll (backoff) or its closing; lease freed

At most ``sync_calls_per_run`` calls per run. A job is held by one runner at a time (two beat processes,
overlapping runs); a runner that dies leaves its lease to expire and nothing half-written. Jobs still open
at the horizon (``sync_horizon_h``) are polled a last time and their messages without a final report become
`expired`; a job id the gateway keeps calling invalid is given up after ``INVALID_ID_LIMIT`` tries.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from . import reports, store
from .channels import Channel
from .db import transaction
from .errors import AuthenticationFailed, GatewayError, InvalidJobId, RetryableGatewayError
from .gateway import DeliveryReport
from .hooks import hooks_enabled
from .numbers import mask
from .observe import observe_unconfirmed
from .states import FINAL, State

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

#: "Invalid Message ID" answers tolerated for a job before its open messages are given up.
INVALID_ID_LIMIT = 3
#: Reason written on messages whose job the gateway does not know.
INVALID_ID_REASON = "gateway does not know job id"
#: Reason written on messages still without a final report at the horizon.
HORIZON_REASON = "no final delivery report"
#: Reason written on unconfirmed messages that the delivery reports never showed.
NOT_IN_REPORTS_REASON = ("not listed in the gateway's send answer nor in {polls} delivery report(s): the "
                         "gateway may not have it (never resent automatically)")
#: Wait before re-polling a job after the gateway was unavailable (no poll is counted).
UNAVAILABLE_RETRY = timedelta(seconds=60)
#: A run stops after this many consecutive "gateway unavailable" answers.
UNAVAILABLE_STOP = 3
#: Failed messages (from the sender) given hook rows per run, and how far back they are looked for.
FAILED_PER_RUN = 5000


@dataclass
class SyncResult:
    """What one run did (returned by the task, so Flower shows it)."""

    calls: int = 0
    jobs: int = 0
    rows_updated: int = 0
    finals: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    unknown_statuses: int = 0
    stale: int = 0
    confirmed: int = 0  #: unconfirmed messages a report showed (now `sent` or final)
    unconfirmed_unknown: int = 0  #: unconfirmed messages absent from enough reports (now `unknown`)
    invalid_ids: int = 0
    errors: int = 0
    closed: int = 0
    lost_leases: int = 0
    outboxed: int = 0
    stopped: str | None = None

    def count_final(self, state: State, n: int) -> None:
        if n:
            self.finals[state.value] = self.finals.get(state.value, 0) + n

    def add(self, other: SyncResult) -> None:
        """Add a job's counts (made in a transaction that committed) to the run's."""
        for name in ("rows_updated", "unmatched", "unknown_statuses", "stale", "outboxed", "confirmed",
                     "unconfirmed_unknown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for state, n in other.finals.items():
            self.finals[state] = self.finals.get(state, 0) + n


def run(ctx: Context, *, max_calls: int | None = None, owner: str | None = None) -> SyncResult:
    """One sync run: poll up to ``max_calls`` (default ``sync_calls_per_run``) due jobs."""
    budget = max_calls if max_calls is not None else ctx.settings.sync_calls_per_run
    owner = owner or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
    result = SyncResult()
    if hooks_enabled(ctx.settings):
        _outbox_failed(ctx, result)
    tried: list[str] = []
    unavailable = 0
    while result.calls < budget and result.stopped is None:
        now = ctx.clock()
        with transaction(ctx.engine) as conn:
            due = store.due_jobs(conn, now, min(budget - result.calls, 100), exclude=tried)
        if not due:
            break
        for job_id in due:
            tried.append(job_id)
            outcome = _sync_job(ctx, job_id, owner, result)
            if outcome == "unavailable":
                unavailable += 1
            elif outcome != "taken":  # the gateway answered
                unavailable = 0
            if unavailable >= UNAVAILABLE_STOP:
                result.stopped = "gateway unavailable"
            if result.stopped or result.calls >= budget:
                break
    if result.calls or result.stopped:
        log.info("sync run: %s", result)
    return result


def lease_seconds(ctx: Context) -> float:
    """How long a runner holds a job: room for a slow gateway answer and a rate-limit wait."""
    s = ctx.settings
    return 2 * (s.connect_timeout + s.read_timeout) + 60.0


def _sync_job(ctx: Context, job_id: str, owner: str, result: SyncResult) -> str:
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        job = store.lease_job(conn, job_id, owner, now, now + timedelta(seconds=lease_seconds(ctx)))
    if job is None:
        return "taken"  # another runner holds it, or it was polled since we listed it
    try:
        ctx.limiter.acquire(0, timeout=lease_seconds(ctx) / 2)
    except TimeoutError:
        _release(ctx, job_id, owner, None)
        result.stopped = "rate limit"
        return "stopped"
    result.calls += 1
    report: DeliveryReport | None = None
    try:
        report = ctx.client.delivery_status(job_id)
    except InvalidJobId:
        return _invalid(ctx, job, owner, result)
    except AuthenticationFailed:
        log.critical("sync: the gateway refused the API key; stopping this run")
        _release(ctx, job_id, owner, None)
        result.stopped = "authentication"
        return "stopped"
    except RetryableGatewayError as exc:
        log.warning("sync: job %s: gateway unavailable (%s); retrying later", job_id, type(exc).__name__)
        _release(ctx, job_id, owner, ctx.clock() + UNAVAILABLE_RETRY)
        result.errors += 1
        return "unavailable"
    except GatewayError as exc:  # an undocumented answer: counted as a poll, retried on the schedule
        log.warning("sync: job %s: unusable delivery report: %s", job_id, exc)
        result.errors += 1
    _record(ctx, job, owner, report, result)
    return "polled"


def _release(ctx: Context, job_id: str, owner: str, next_poll_at: datetime | None) -> None:
    values: dict[str, Any] = {} if next_poll_at is None else {"next_poll_at": next_poll_at}
    with transaction(ctx.engine) as conn:
        store.finish_job(conn, job_id, owner, **values)


def _invalid(ctx: Context, job: store.LeasedJob, owner: str, result: SyncResult) -> str:
    count = int(job.invalid_id_count) + 1
    result.invalid_ids += 1
    give_up = count >= INVALID_ID_LIMIT
    log.warning("sync: job %s: gateway says Invalid Message ID (%d of %d)%s", job.job_id, count,
                INVALID_ID_LIMIT, "; giving its messages up" if give_up else "")
    _record(ctx, job, owner, None, result, invalid_id_count=count,
            give_up=INVALID_ID_REASON if give_up else None)
    return "invalid"


class _LostLease(Exception):
    pass


def _record(ctx: Context, job: store.LeasedJob, owner: str, report: DeliveryReport | None,
            result: SyncResult, *, invalid_id_count: int | None = None, give_up: str | None = None) -> None:
    """Write one job's report and bookkeeping in one transaction (nothing when the lease was lost)."""
    job_id = job.job_id
    now = ctx.clock()
    s = ctx.settings
    horizon = timedelta(hours=s.sync_horizon_h)
    if give_up is None and now >= job.created_at + horizon:
        give_up = HORIZON_REASON
    polls = int(job.poll_count) + 1
    counts = SyncResult()  # added to the run's result only if the transaction commits
    credits = _Credits()
    schedule = reports.Schedule.of(s.sync_backoff_min, s.sync_poll_every_min)
    try:
        with transaction(ctx.engine) as conn:
            rows = store.job_messages(conn, job_id)
            done = _apply(ctx, conn, job_id, rows, report, give_up, now, counts, credits,
                          settle_unconfirmed=report is not None and polls >= s.unconfirmed_polls,
                          polls=polls)
            values: dict[str, Any] = {"poll_count": polls, "last_polled_at": now,
                                      "next_poll_at": schedule.next_poll_at(job.created_at, polls, now,
                                                                            horizon)}
            if invalid_id_count is not None:
                values["invalid_id_count"] = invalid_id_count
            if done:
                values.update(open=False, closed_at=now)
            if not store.finish_job(conn, job_id, owner, **values):
                raise _LostLease()
    except _LostLease:
        result.lost_leases += 1
        log.warning("sync: job %s: lease expired before the report was written; left to its new holder",
                    job_id)
        return
    result.add(counts)
    result.jobs += 1
    result.closed += done
    credits.settle(ctx, job.channel)
    observe_unconfirmed(ctx, counts.confirmed, "confirmed")
    observe_unconfirmed(ctx, counts.unconfirmed_unknown, "unknown")


@dataclass
class _Credits:
    """Credits of a job's unconfirmed messages settled by this poll, applied to the shared ledger only
    after the transaction committed (a crash in between is corrected by the sweeper's in-flight resync)."""

    charged: int = 0
    released: int = 0
    charged_late: int = 0  #: of messages already `unknown` (their reservation was released)

    def settle(self, ctx: Context, channel: str) -> None:
        package = Channel(channel).package
        if self.charged:
            ctx.ledger.commit(package, self.charged)
        if self.released:
            ctx.ledger.release(package, self.released)
        if self.charged_late:
            ctx.ledger.charge_unreserved(package, self.charged_late)


def _apply(ctx: Context, conn: Connection, job_id: str, rows: list[store.JobMessage],
           report: DeliveryReport | None, give_up: str | None, now: datetime, result: SyncResult,
           credits: _Credits, *, settle_unconfirmed: bool, polls: int) -> bool:
    """The job's message writes; returns True when the job needs no more polls: every message final, or
    the job given up (its `unknown` messages are left to an operator)."""
    states = {r.id: r.state for r in rows}
    outbox: list[tuple[str, str]] = []
    if report is not None:
        candidates = [reports.Candidate(r.id, r.number, r.text, r.gateway_message_id, r.state, r.status_raw,
                                        r.status_remark, r.credits) for r in rows]
        matching = reports.match(report.entries, candidates)
        _log_unmatched(job_id, matching.unmatched)
        pairs = _confirm(ctx, conn, job_id, matching.pairs, now, result, credits)
        for m, _ in pairs:
            states[m.id] = m.state
        plan = reports.plan(pairs, expired_final=ctx.settings.expired_is_final)
        for to, changes in plan.finals.items():
            n = store.write_finals(conn, to, [_params(c) for c in changes], now)
            _check(job_id, to, n, len(changes))
            result.count_final(to, len(changes))
            for c in changes:
                states[c.id] = to.value
                outbox.append((c.id, to.value))
        written = store.write_statuses(conn, [_params(c) for c in plan.statuses], now)
        _check(job_id, None, written, len(plan.statuses))
        result.rows_updated += len(plan.statuses) + len(plan.final_ids())
        result.unmatched += len(matching.unmatched)
        result.unknown_statuses += sum(plan.unknown_statuses.values())
        result.stale += plan.stale
        for name, n in plan.unknown_statuses.items():
            log.warning("sync: job %s: %d report(s) with unknown status %r (kept verbatim)", job_id, n, name)
    waiting = [mid for mid, st in states.items() if st == State.UNCONFIRMED.value]
    if waiting and (settle_unconfirmed or give_up is not None):
        reason = give_up or NOT_IN_REPORTS_REASON.format(polls=polls)
        cost = {r.id: r.credits for r in rows}
        _unconfirmed_to_unknown(conn, job_id, waiting, reason, now, result, credits, states, cost)
    if give_up is not None:
        ids = [mid for mid, st in states.items() if st == State.SENT.value]
        moved = store.move_messages(conn, ids, State.EXPIRED, now, last_error=give_up)
        store.add_events(conn, moved, State.EXPIRED, now, give_up)
        result.count_final(State.EXPIRED, len(moved))
        result.rows_updated += len(moved)
        for mid in moved:
            states[mid] = State.EXPIRED.value
            outbox.append((mid, State.EXPIRED.value))
        if moved:
            log.info("sync: job %s: %d message(s) expired: %s", job_id, len(moved), give_up)
    if outbox and hooks_enabled(ctx.settings):
        result.outboxed += store.insert_outbox(conn, outbox, now)
    return give_up is not None or all(st in FINAL for st in states.values())


def _confirm(ctx: Context, conn: Connection, job_id: str,
             pairs: list[tuple[reports.Candidate, Any]], now: datetime, result: SyncResult,
             credits: _Credits) -> list[tuple[reports.Candidate, Any]]:
    """Messages of the job a report lists though the send answer did not (`unconfirmed`, or already
    `unknown` when the report came late): the gateway has them and charged them: `sent`, then planned like
    any other. Returns the pairs with those candidates' states updated."""
    waiting = [m.id for m, _ in pairs if m.state == State.UNCONFIRMED.value]
    late = [m.id for m, _ in pairs if m.state == State.UNKNOWN.value]
    if not waiting and not late:
        return pairs
    charged = store.confirm_messages(conn, waiting, State.UNCONFIRMED, now)
    charged_late = store.confirm_messages(conn, late, State.UNKNOWN, now)
    store.add_events(conn, waiting + late, State.SENT, now, "listed by a delivery report")
    store.add_job_credits(conn, job_id, charged=charged + charged_late, released=-charged_late)
    credits.charged += charged
    credits.charged_late += charged_late
    result.confirmed += len(waiting) + len(late)
    result.rows_updated += len(waiting) + len(late)
    log.info("sync: job %s: %d unconfirmed and %d unknown message(s) found in the delivery report: sent",
             job_id, len(waiting), len(late))
    moved = {*waiting, *late}
    return [(replace(m, state=State.SENT.value) if m.id in moved else m, e) for m, e in pairs]


def _unconfirmed_to_unknown(conn: Connection, job_id: str, ids: list[str], reason: str, now: datetime,
                            result: SyncResult, credits: _Credits, states: dict[str, str],
                            cost: dict[str, int]) -> None:
    """Unconfirmed messages the reports never showed: `unknown` (an operator decides); their credits are
    released (the gateway's balance corrects that if it did charge them)."""
    moved = store.move_messages(conn, ids, State.UNKNOWN, now, last_error=reason)
    if not moved:
        return
    store.add_events(conn, moved, State.UNKNOWN, now, reason)
    released = sum(cost[mid] for mid in moved)
    store.add_job_credits(conn, job_id, released=released)
    credits.released += released
    result.unconfirmed_unknown += len(moved)
    result.rows_updated += len(moved)
    for mid in moved:
        states[mid] = State.UNKNOWN.value
    log.error("sync: job %s: %d unconfirmed message(s) absent from the delivery reports: UNKNOWN (%s)",
              job_id, len(moved), reason)


def _params(c: reports.Change) -> store.ReportWrite:
    return store.ReportWrite(c.id, c.status_raw, c.status_remark, c.gateway_message_id)


def _check(job_id: str, to: State | None, written: int, planned: int) -> None:
    """The plan was made from row-locked states, so the guarded UPDATEs must hit exactly its rows."""
    if written not in (planned, -1):  # -1: the driver does not count executemany rows
        log.warning("sync: job %s: %d of %d planned rows written (%s); rows changed under the lock?",
                    job_id, written, planned, to.value if to else "status only")


def _log_unmatched(job_id: str, entries: list[Any]) -> None:
    for e in entries[:5]:
        log.warning("sync: job %s: report entry matches no message (number %s, message id %s, status %s)",
                    job_id, mask(e.number or ""), e.message_id, e.status)
    if len(entries) > 5:
        log.warning("sync: job %s: %d more unmatched report entries", job_id, len(entries) - 5)


def _outbox_failed(ctx: Context, result: SyncResult) -> None:
    """Give hook rows to messages the sender failed (they never reach a job, so no report finalises them)."""
    now = ctx.clock()
    since = now - timedelta(hours=ctx.settings.sync_horizon_h)
    with transaction(ctx.engine) as conn:
        ids = store.failed_without_outbox(conn, since, FAILED_PER_RUN)
        result.outboxed += store.insert_outbox(conn, [(mid, State.FAILED.value) for mid in ids], now)
