"""Scenario 6, delivery-report sync: N messages in 50 gateway jobs, one ``dispatcher.sync.run`` that polls
every job once and writes every report; rows updated per second, on each database. The measurement is
bench/bench_sync.py's (also runnable alone: ``python -m bench.bench_sync``); this runs it against the
run's simulator (with its latency) and reports it like the other scenarios.
"""

from __future__ import annotations

import math
from typing import Any

from . import bench_sync, report
from .harness import Run, simulator
from .report import Result

SCENARIO = "sync"
TITLE = "delivery-report sync: rows updated per second"


def run(run: Run) -> Result:
    opts = run.opts
    jobs = max(50, math.ceil(opts.size / 2000))
    argv = ["--db", ",".join(opts.dbs), "--pg-url", opts.pg_admin, "--redis-url", opts.redis_url]
    argv += ["--smoke"] if opts.smoke else ["--messages", str(opts.size), "--jobs", str(jobs)]
    args = bench_sync.parse(argv)
    outcomes: dict[str, Any] = {}
    with simulator(opts) as sim:
        for kind in opts.dbs:
            outcomes[kind] = bench_sync.run_one(kind, args, sim)
    rows = []
    results: dict[str, Any] = {}
    for kind, o in outcomes.items():
        own = max(o.seconds - o.gateway_s, 1e-9)
        rows.append([kind, o.messages, o.jobs, o.calls, o.rows, o.seconds, o.gateway_s,
                     o.rows / max(o.seconds, 1e-9), o.rows / own])
        results[kind] = {"messages": o.messages, "jobs": o.jobs, "calls": o.calls, "rows_updated": o.rows,
                         "seconds": o.seconds, "gateway_s": o.gateway_s, "finals": o.finals,
                         "rate": o.rows / max(o.seconds, 1e-9), "rate_without_gateway_wait": o.rows / own}
        if o.calls != o.jobs or o.rows != o.messages:
            raise RuntimeError(f"{kind}: {o.calls} calls for {o.jobs} jobs, {o.rows} rows for {o.messages}")
    res = Result(SCENARIO, TITLE,
                 {"messages": args.messages, "jobs": args.jobs, "latency_ms": opts.latency_ms,
                  "databases": ",".join(opts.dbs), "fates": "93% delivered, 5% undelivered, 2% pending"},
                 results, ["database", "messages", "jobs", "gateway calls", "rows updated", "seconds",
                           "gateway s", "rows/s", "rows/s without gateway wait"], rows)
    if {"postgresql", "sqlite"} <= results.keys():
        res.ratios["rows/s postgresql / sqlite"] = results["postgresql"]["rate"] / results["sqlite"]["rate"]
    res.plots.append(report.bars(opts.out / "sync_rates.png", "Delivery-report sync: rows updated per second",
                                 list(results), [r["rate"] for r in results.values()], "rows / s"))
    return res
