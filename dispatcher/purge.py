"""Purging finished rows past their retention (beat's ``purge_expired`` task and ``smsdispatch purge``).

The policy is dispatcher/retention.py and the SQL the retention section of dispatcher/store.py; this
module runs them so that the pipeline does not notice: each transaction deletes at most
``RETENTION_CHUNK_ROWS`` rows (on SQLite it holds the write lock for milliseconds, on PostgreSQL it locks
only rows nothing else touches any more); the runner rests between transactions so that it deletes at
most ``RETENTION_ROWS_PER_S`` rows a second (2,000: 7 million an hour, far more than a deployment adds);
and a run stops after ``RETENTION_RUN_S`` (the next one goes on). One purge runs at a time (a Redis lease).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import observe, retention, store
from .context import Context
from .db import reading, transaction
from .ids import id_floor
from .locks import Lease
from .retention import Cutoffs, Table

log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    """What one purge deleted (or, in a dry run, would delete), per table."""

    dry_run: bool
    cutoffs: dict[str, datetime | None]
    deleted: dict[str, int] = field(default_factory=dict)
    #: False when the run stopped at its time budget with rows left (the next run goes on)
    complete: bool = True
    #: False when another purge held the lease (nothing was done)
    ran: bool = True
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "ran": self.ran, "complete": self.complete,
                "seconds": round(self.seconds, 3), "total": self.total, "deleted": dict(self.deleted),
                "cutoffs": {k: v.isoformat() if v else None for k, v in self.cutoffs.items()}}


def policy(ctx: Context, older_than: timedelta | None = None) -> Cutoffs:
    """The cutoffs now: from the RETENTION_DAYS* settings, or ``older_than`` for every table."""
    s = ctx.settings
    return retention.cutoffs(ctx.clock(), s.retention_days, s.retention_days_batches, s.retention_days_hooks,
                             older_than)


def lease(ctx: Context) -> Lease:
    """The lease that keeps purges one at a time (a run lasts at most retention_run_s)."""
    s = ctx.settings
    return Lease(ctx.redis, f"{s.redis_prefix}:lock:purge", ttl_s=s.retention_run_s + 60)


def purge(ctx: Context, *, older_than: timedelta | None = None, dry_run: bool = False,
          budget_s: float | None = None, sleep: Callable[[float], None] = time.sleep) -> PurgeResult:
    """Delete (or with ``dry_run`` count) what the retention policy allows, in small transactions, for at
    most ``budget_s`` seconds (RETENTION_RUN_S by default; None from the CLI means until done)."""
    cut = policy(ctx, older_than)
    out = PurgeResult(dry_run, {t.value: cut.of(t) for t in Table})
    t0 = time.monotonic()
    if dry_run:
        with reading(ctx.engine) as conn:
            out.deleted = store.count_purgeable(conn, _below(cut), out.cutoffs)
        out.seconds = time.monotonic() - t0
        return out
    s = ctx.settings
    deadline = None if budget_s is None else t0 + budget_s
    per_chunk = s.retention_chunk_rows / s.retention_rows_per_s  # seconds a chunk may take, rest included
    out.deleted = dict.fromkeys([*(t.value for t in Table), *retention.DEPENDENT], 0)
    for table in cut.active:
        out.complete = _purge_table(ctx, table, cut, out.deleted, deadline, per_chunk, sleep)
        if not out.complete:
            break
    out.seconds = time.monotonic() - t0
    observe.observe_purge(ctx, out.deleted)
    if out.total:
        log.info("purge: deleted %s in %.1f s%s", ", ".join(f"{n} {k}" for k, n in out.deleted.items() if n),
                 out.seconds, "" if out.complete else " (stopped at the time budget; the next run goes on)")
    return out


def purge_locked(ctx: Context, **kwargs: Any) -> PurgeResult:
    """``purge`` under the purge lease; a run that finds another one going does nothing (``ran`` False)."""
    held = lease(ctx)
    if not held.acquire():
        cut = policy(ctx, kwargs.get("older_than"))
        return PurgeResult(bool(kwargs.get("dry_run")), {t.value: cut.of(t) for t in Table}, ran=False)
    try:
        return purge(ctx, **kwargs)
    finally:
        held.release()


def _below(cut: Cutoffs) -> str:
    return id_floor(cut.messages) if cut.messages is not None else ""


def _purge_table(ctx: Context, table: Table, cut: Cutoffs, deleted: dict[str, int], deadline: float | None,
                 per_chunk: float, sleep: Callable[[float], None]) -> bool:
    """Chunks of one table until nothing is left (True) or the deadline passes (False)."""
    chunk = ctx.settings.retention_chunk_rows
    cutoff = cut.of(table)
    assert cutoff is not None
    after, below = "", _below(cut)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        started = time.monotonic()
        with transaction(ctx.engine) as conn:
            if table is Table.MESSAGES:
                page = store.message_page(conn, after, below, chunk)
                for name, n in store.delete_final_messages(conn, page, cutoff).items():
                    deleted[name] += n
                after, n = (page[-1] if page else after), len(page)
            elif table is Table.BATCHES:
                n = store.delete_done_batches(conn, cutoff, chunk)
                deleted[table.value] += n
            elif table is Table.JOBS:
                n = store.delete_closed_jobs(conn, cutoff, chunk)
                deleted[table.value] += n
            else:
                n = store.delete_delivered_hooks(conn, cutoff, chunk)
                deleted[table.value] += n
        if retention.chunks_done(n, chunk):
            return True
        rest = per_chunk - (time.monotonic() - started)
        if rest > 0:
            sleep(rest)
