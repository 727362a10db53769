"""Scenario 1, enqueue: how fast a producer hands messages over (no workers running).

Per database: one ``send_bulk`` of N messages, one ``send_bulk`` of N rows each with an idempotency key and
metadata (the keyed path: INSERT ... ON CONFLICT DO NOTHING instead of the COPY), then N ``send_sms`` calls
one after another, each timed.
Both commit the rows and push their ids into the Redis lane (the call returns after both), exactly as
an application would see it. Reports messages per second and p50/p99 of one ``send_sms``.
"""

from __future__ import annotations

import time
from typing import Any

from . import report
from .harness import Run, percentiles, rate, simulator, stack
from .report import Result
from .workload import TXN, number, txn_text

SCENARIO = "enqueue"
TITLE = "send_bulk and send_sms: messages per second, latency of one send_sms"


def measure(run: Run, db: str, sim: Any) -> dict[str, Any]:
    n = run.opts.size
    with stack(run, db, sim) as s:
        d = s.dispatcher
        d.send_bulk([(number(10**6 + i), txn_text(10**6 + i)) for i in range(10)], **TXN)  # warm-up
        d.send_sms(number(10**6 + 99), txn_text(10**6 + 99), **TXN)
        t0 = time.perf_counter()
        ids = d.send_bulk(((number(i), txn_text(i)) for i in range(n)), **TXN)
        bulk_s = time.perf_counter() - t0
        keyed = ({"number": number(i), "text": txn_text(i), "idempotency_key": f"bench-{i}",
                  "metadata": {"row": i}} for i in range(2 * n, 3 * n))
        t2 = time.perf_counter()
        keyed_ids = d.send_bulk(keyed, **TXN)
        keyed_s = time.perf_counter() - t2
        lat: list[float] = []
        t1 = time.perf_counter()
        for i in range(3 * n, 4 * n):
            t = time.perf_counter()
            d.send_sms(number(i), txn_text(i), **TXN)
            lat.append(time.perf_counter() - t)
        single_s = time.perf_counter() - t1
        queued = s.state_counts().get("queued", 0)
        config = s.described()
    assert len(ids) == n and keyed_ids.created == n and queued == 3 * n + 11, (len(ids), queued)
    return {"db": db, "messages": n, "bulk_s": bulk_s, "bulk_rate": rate(n, bulk_s), "keyed_s": keyed_s,
            "keyed_rate": rate(n, keyed_s), "single_s": single_s,
            "single_rate": rate(n, single_s), "send_sms": percentiles(lat),
            "latencies_ms": [x * 1000 for x in lat], "settings": config}


def run(run: Run) -> Result:
    opts = run.opts
    per_db: dict[str, dict[str, Any]] = {}
    with simulator(opts) as sim:
        for db in opts.dbs:
            per_db[db] = measure(run, db, sim)
    rows: list[list[Any]] = []
    for db, m in per_db.items():
        rows.append([db, "send_bulk (one call)", m["messages"], m["bulk_s"], m["bulk_rate"], "-", "-"])
        rows.append([db, "send_bulk, rows with key + metadata", m["messages"], m["keyed_s"], m["keyed_rate"],
                     "-", "-"])
        rows.append([db, "send_sms (one at a time)", m["messages"], m["single_s"], m["single_rate"],
                     m["send_sms"]["p50_ms"], m["send_sms"]["p99_ms"]])
    first = next(iter(per_db.values()))
    res = Result(SCENARIO, TITLE,
                 {"messages": opts.size, "databases": ",".join(opts.dbs), "group": "transactional GSM",
                  **first["settings"]},
                 {db: {k: v for k, v in m.items() if k not in ("latencies_ms", "settings")}
                  for db, m in per_db.items()},
                 ["database", "call", "messages", "seconds", "msgs/s", "p50 ms", "p99 ms"], rows)
    for db, m in per_db.items():
        res.ratios[f"{db}: send_bulk / send_sms msgs/s"] = m["bulk_rate"] / max(m["single_rate"], 1e-9)
        res.ratios[f"{db}: send_bulk keyed / unkeyed msgs/s"] = m["keyed_rate"] / max(m["bulk_rate"], 1e-9)
        res.target(f"{db}: send_sms p99 ms", m["send_sms"]["p99_ms"], 5.0, at_most=True)
    if "postgresql" in per_db:
        res.target("postgresql: send_bulk msgs/s", per_db["postgresql"]["bulk_rate"], 50_000)
    if {"postgresql", "sqlite"} <= per_db.keys():
        res.ratios["send_bulk postgresql / sqlite"] = (per_db["postgresql"]["bulk_rate"]
                                                       / max(per_db["sqlite"]["bulk_rate"], 1e-9))
    res.plots.append(report.bars(opts.out / "enqueue_rates.png", "Enqueue: messages per second",
                                 [f"{r[0]}\n{r[1]}" for r in rows], [r[4] for r in rows], "messages / s",
                                 log=True))
    res.plots.append(report.cdf(opts.out / "enqueue_send_sms_latency.png", "One send_sms call: latency",
                                {db: m["latencies_ms"] for db, m in per_db.items()}))
    return res
