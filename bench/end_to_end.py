"""Scenario 2, end to end: N messages in mixed groups, from the first ``send_bulk`` until the simulator has
accepted every one of them, through real Celery workers (one worker, ``--concurrency`` pool processes,
with beat) on each database.

Throughput is N / (last ``sent_at`` - start); the time of one message is its ``sent_at - created_at`` in
the database (``sent_at`` is taken when the gateway's answer arrived, so it is slightly later than the
simulator's acceptance: the pipeline is measured conservatively). The rows are built before the clock
starts (since 2026-12-05; before, building them, about 1 us a message, was inside the first calls), as
the limit scenario builds its calls. The CPU each part spent while it ran is read from /proc: the
database server, the worker's processes, the simulator and the producer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from dispatcher.db import reading
from dispatcher.models import BATCH

from . import report
from .harness import Run, percentiles, rate, simulator, stack
from .procs import CpuMeter, Worker, progress
from .report import Result
from .workload import MIX_TEXT, enqueue_prepared, prepare_mix

Around = Callable[[Worker], AbstractContextManager[Any]]
SCENARIO = "end_to_end"
TITLE = "enqueue -> accepted by the gateway: throughput and time per message"


def timeout_for(n: int) -> float:
    return 120.0 + n / 500


def cpu_meter(database_url: str, worker: Worker, sim_pid: int, **others: int) -> CpuMeter:
    """CPU of each part while a run drains: the database's server processes (PostgreSQL backends of this
    run's database; SQLite works inside the other processes), the worker's process tree (main process,
    beat and the pool), the simulator, this process (the producer's send_bulk calls), and ``others``
    (name -> pid)."""
    name = make_url(database_url).database or ""
    pg = database_url.startswith("postgresql")
    me = os.getpid()
    return CpuMeter({
        "database server": lambda lines: [p for p, c in lines.items()
                                          if pg and c.startswith("postgres:") and f" {name} " in c],
        "worker processes": lambda _lines: worker.pids(),
        "simulator": lambda _lines: [sim_pid],
        "producer (send_bulk)": lambda _lines: [me],
        **{part: _only(pid) for part, pid in others.items()}})


def _only(pid: int) -> Callable[[dict[int, str]], list[int]]:
    return lambda _lines: [pid]


def measure(run: Run, db: str, n: int | None = None, around: Around | None = None,
            **overrides: Any) -> dict[str, Any]:
    """One end-to-end run (memoized per database and size in ``run.cache``, so scenarios compare with
    the same measurement). ``around(worker)`` wraps the enqueue and the drain (a profiler, say)."""
    opts = run.opts
    n = n or opts.size
    key = f"e2e:{db}:{n}:{sorted(overrides.items())}"
    if key in run.cache and around is None:
        return dict(run.cache[key])
    with simulator(opts) as sim, stack(run, db, sim, **overrides) as s:
        worker = s.start("pipeline", concurrency=opts.concurrency, beat=True)
        s.wait_ready()
        meter = cpu_meter(s.settings.database_url, worker, sim.proc.pid)
        calls = prepare_mix(n)  # the application's rows exist before the first send_bulk
        with around(worker) if around else nullcontext(), progress(sim) as trace:
            meter.start()
            t0 = time.time()
            enqueued = enqueue_prepared(s.dispatcher, calls)
            enqueue_s = time.time() - t0
            s.wait_accepted(n, timeout_for(n))
            cpu = meter.stop()
        s.wait_recorded(n)
        lat, _, last = s.latencies()
        with reading(s.ctx.engine) as conn:
            batches, mean_size = conn.execute(select(func.count(), func.avg(BATCH.c.size))).one()
        states = s.state_counts()
        config = s.described()
    assert enqueued == n and len(lat) == n, (enqueued, len(lat), states)
    seconds = last - t0
    out = {"db": db, "messages": n, "seconds": seconds, "rate": rate(n, seconds), "enqueue_s": enqueue_s,
           "batches": int(batches), "mean_batch": float(mean_size or 0), "latency": percentiles(lat),
           "states": states, "settings": config, "latencies_ms": [x * 1000 for x in lat],
           "cpu_us_per_message": {k: v * 1e6 / n for k, v in cpu.items()},
           "progress": list(trace)}
    if around is None:
        run.cache[key] = out
    return dict(out)


def run(run: Run) -> Result:
    opts = run.opts
    per_db = {db: measure(run, db) for db in opts.dbs}
    rows = [[db, m["messages"], m["batches"], m["mean_batch"], m["enqueue_s"], m["seconds"], m["rate"],
             m["latency"]["p50_ms"], m["latency"]["p99_ms"]] for db, m in per_db.items()]
    first = per_db[opts.main_db]
    res = Result(SCENARIO, TITLE,
                 {"messages": opts.size, "mix": MIX_TEXT, "latency_ms": opts.latency_ms,
                  "workers": f"1 worker x {opts.concurrency} processes (+ beat), all queues",
                  "databases": ",".join(opts.dbs), **first["settings"]},
                 {db: {k: v for k, v in m.items() if k not in ("latencies_ms", "settings", "progress")}
                  for db, m in per_db.items()},
                 ["database", "messages", "gateway calls", "mean batch", "enqueue s", "total s", "msgs/s",
                  "p50 ms", "p99 ms"], rows)
    res.target(f"{opts.main_db}: end-to-end msgs/s", first["rate"], 20_000)
    for db, m in per_db.items():
        res.notes.append(f"{db}: CPU per message while draining (/proc): " + ", ".join(
            f"{part} {us:.1f} us" for part, us in m["cpu_us_per_message"].items())
            + f"; all {sum(m['cpu_us_per_message'].values()):.1f} us")
    if len(per_db) > 1:
        other = next(db for db in per_db if db != opts.main_db)
        res.ratios[f"msgs/s {opts.main_db} / {other}"] = first["rate"] / max(per_db[other]["rate"], 1e-9)
    res.plots.append(report.cdf(opts.out / "end_to_end_latency.png", "Enqueue -> accepted, per message",
                                {db: m["latencies_ms"] for db, m in per_db.items()}))
    res.plots.append(report.lines(
        opts.out / "end_to_end_progress.png", "Messages accepted by the gateway over time", "seconds",
        "messages accepted", {db: ([t for t, _ in m["progress"]], [float(k) for _, k in m["progress"]])
                              for db, m in per_db.items()}, marker="."))
    return res
