"""Scenario 8, retention: does purging old rows slow the pipeline down?

One database holds ``--purge-size`` old messages (default 1,000,000; delivered 40 days ago, written
straight into the table as a long-running deployment would have them). Then, on the same database and
simulator, ``--size`` mixed messages are enqueued and one worker (``--concurrency`` pool processes, with
beat) drains them three times:

1. **alone, before**: the old rows stay where they are;
2. **with a purge**: ``smsdispatch purge --older-than 30d`` (the default RETENTION_CHUNK_ROWS and
   RETENTION_ROWS_PER_S) starts in its own process before the worker, the measurement starts once it has
   deleted its first rows, and it is stopped once the drain is done;
3. **alone, after**: as 1, on the database the first two drains left.

Drain rate = messages / (last ``sent_at`` - worker ready). The result is the ratio with / alone (the goal:
at least 0.9, "at most 10 % slower"), alone being the mean of the drains before and after, with the old
rows the purge deleted during the drain and whether it was still deleting when the drain ended (a purge
that ended early would flatter the ratio). Until 2026-12-05 only the drain before was measured, so
whatever the first drain leaves behind (100,000 more rows, their dead tuples, autovacuum) counted against
the purge; the drain after measures that. The workers' own beat purge is off (RETENTION_DAYS=0) so that
only the measured purge runs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from dispatcher import store
from dispatcher.db import reading, transaction
from dispatcher.ids import id_floor, new_ids
from dispatcher.models import MESSAGE
from dispatcher.retention import parse_age
from dispatcher.states import State

from . import report
from .end_to_end import cpu_meter, timeout_for
from .harness import Run, Stack, rate, settings_env, simulator, stack
from .procs import ROOT
from .report import Result
from .workload import MIX_TEXT, TXN, enqueue_mix, number, txn_text

SCENARIO = "retention"
TITLE = "drain rate with a concurrent purge of old rows, against the same drain alone"
#: The age of the seeded rows and the purge's --older-than: they are purged, nothing else is.
SEEDED_AGE = timedelta(days=40)
OLDER_THAN = "30d"
GOAL = 0.9
#: Retention off in the workers (their beat must not purge during the measurement).
NO_RETENTION = {"retention_days": 0, "retention_days_batches": 0, "retention_days_hooks": 0}


def seed_finished(engine: Engine, n: int, at: datetime, state: State = State.DELIVERED,
                  chunk: int = 20_000) -> int:
    """Write ``n`` transactional messages that reached ``state`` at ``at`` (created a minute before, ids of
    that time), through the bulk writer (COPY on PostgreSQL); returns ``n``."""
    created = at - timedelta(minutes=1)
    common = {"state": state.value, "hold_reason": None, "channel": TXN["channel"],
              "sender_id": TXN["sender_id"], "template_id": TXN["template_id"], "idempotency_key": None,
              "meta": None, "bulk_id": None, "batch_id": None, "attempts": 1, "created_at": created,
              "send_at": None, "pushed_at": created, "sending_at": created, "sent_at": created,
              "final_at": at, "updated_at": at, "credits_charged": 1, "status_raw": "Delivered"}
    for k in range(0, n, chunk):
        m = min(chunk, n - k)
        with transaction(engine) as conn, store.MessageWriter(conn, common) as out:
            rows = [(number(k + i), txn_text(k + i), 1, 1, False, None, None) for i in range(m)]
            out.write(new_ids(m, created), rows)
    return n


def old_rows(s: Stack) -> int:
    """Messages older than the purge's cutoff still in the database."""
    below = id_floor(datetime.now(UTC) - parse_age(OLDER_THAN))
    with reading(s.ctx.engine) as conn:
        return int(conn.execute(select(func.count()).where(MESSAGE.c.id < below)).scalar_one())


def start_purge(s: Stack) -> subprocess.Popen[str]:
    """``smsdispatch purge --older-than 30d`` in its own process; returns once it has deleted rows."""
    before = old_rows(s)
    argv = [sys.executable, "-m", "dispatcher.cli", "purge", "--older-than", OLDER_THAN, "--json"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=settings_env(s.settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while old_rows(s) == before:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"smsdispatch purge deleted nothing: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    return proc


def stop_purge(proc: subprocess.Popen[str]) -> bool:
    """Stop the purge if it still runs (SIGTERM: its open transaction rolls back; SIGINT would do nothing
    to a purge started from a shell's background job, which ignores it); True if it was still running."""
    running = proc.poll() is None
    if running:
        proc.terminate()
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"smsdispatch purge failed: {stderr[-2000:]}")
    return running


def drain(s: Stack, run: Run, n: int, offset: int, name: str, purge: bool) -> dict[str, Any]:
    """Enqueue ``n`` messages, start a worker and time it from ready until every answer is recorded; with
    ``purge``, ``smsdispatch purge`` is deleting old rows before the worker starts and until it is done."""
    opts = run.opts
    before = s.accepted()
    enqueue_mix(s.dispatcher, n, offset=offset)
    proc = start_purge(s) if purge else None
    worker = s.start(name, concurrency=opts.concurrency, beat=True)
    s.wait_ready()
    meter = cpu_meter(s.settings.database_url, worker, s.sim.proc.pid,
                      **({"purge": proc.pid} if proc is not None else {}))
    meter.start()
    t0, old_at_start = time.time(), old_rows(s)
    s.wait_accepted(before + n, timeout_for(n))
    s.wait_recorded(before + n)
    last = s.last_sent()
    cpu = meter.stop()
    out: dict[str, Any] = {"messages": n, "seconds": last - t0, "rate": rate(n, last - t0),
                           "cpu_s": {part: round(v, 3) for part, v in cpu.items() if v}}
    if proc is not None:
        old_at_end = old_rows(s)
        ran_throughout = stop_purge(proc)
        deleted = old_at_start - old_at_end
        out["purge"] = {"deleted_during_drain": deleted, "rows_per_s": rate(deleted, last - t0),
                        "ran_throughout": ran_throughout, "old_rows_left": old_rows(s)}
    worker.stop(grace_s=5.0)
    s.workers.remove(worker)
    return out


def run(run: Run) -> Result:
    opts = run.opts
    n, old = opts.size, opts.purge_size
    with simulator(opts) as sim, stack(run, opts.main_db, sim, **NO_RETENTION) as s:
        t = time.time()
        seed_finished(s.ctx.engine, old, datetime.now(UTC) - SEEDED_AGE)
        seed_s = time.time() - t
        first = drain(s, run, n, 0, "alone", purge=False)
        purged = drain(s, run, n, n, "with-purge", purge=True)
        after = drain(s, run, n, 2 * n, "alone-after", purge=False)
        config = s.described()
        left = s.state_counts()
        chunk, limit = s.settings.retention_chunk_rows, s.settings.retention_rows_per_s
    p = purged["purge"]
    alone_rate = (first["rate"] + after["rate"]) / 2  # before and after: the table's growth is in both
    ratio = purged["rate"] / max(alone_rate, 1e-9)
    rows: list[list[Any]] = [
        ["drain alone, before", n, first["seconds"], first["rate"], "-"],
        ["drain while purging", n, purged["seconds"], purged["rate"],
         f"{p['deleted_during_drain']:,} old messages deleted during the drain ({p['rows_per_s']:,.0f} "
         f"rows/s), {'purging throughout' if p['ran_throughout'] else 'purge ended before the drain did'}"],
        ["drain alone, after", n, after["seconds"], after["rate"], "-"]]
    res = Result(SCENARIO, TITLE,
                 {"messages": n, "old_rows": old, "mix": MIX_TEXT, "db": opts.main_db,
                  "latency_ms": opts.latency_ms, "seeded_age_days": SEEDED_AGE.days,
                  "purge": f"smsdispatch purge --older-than {OLDER_THAN}, {chunk} rows a transaction, "
                           f"at most {limit:,.0f} rows/s",
                  "workers": f"1 worker x {opts.concurrency} processes (+ beat), all queues",
                  "seed_seconds": round(seed_s, 1), **config},
                 {"alone": first, "with_purge": purged, "alone_after": after, "states_after": left},
                 ["drain", "messages", "seconds", "msgs/s", "purge"], rows)
    res.plots.append(report.bars(opts.out / "retention_drain.png",
                                 f"Drain of {n:,} messages, alone and while {old:,} old rows are purged",
                                 ["alone, before", "while purging", "alone, after"],
                                 [first["rate"], purged["rate"], after["rate"]], "messages / s"))
    res.ratios["drain msgs/s, with a concurrent purge / alone (mean of before and after)"] = ratio
    res.ratios["drain msgs/s, alone after / alone before"] = after["rate"] / max(first["rate"], 1e-9)
    res.target("drain with purge / drain alone", ratio, GOAL)
    for label, d in (("alone, before", first), ("while purging", purged), ("alone, after", after)):
        res.notes.append(f"CPU seconds during the drain {label} (/proc): " + ", ".join(
            f"{part} {v:.2f}" for part, v in d["cpu_s"].items()))
    if not p["ran_throughout"]:
        res.notes.append("the purge ended before the drain did: the end of the drain ran without it")
    return res
