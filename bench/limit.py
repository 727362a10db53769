"""Scenario 4, the limit: the same bulk calls made directly with SmsPointClient from one process (no
queue, no database), one after another and from ``--concurrency`` threads; the raw Redis XADD and
database insert rates; the ratio of the pipeline (scenario 2, same run) to the limit; and where a worker's
time goes (py-spy over a real worker when available, cProfile of the same code run in this process).

It also answers a design question: for one message, is send-single-sms or send-bulk-sms with one
recipient faster (same client, same simulator, at the run's latency and at zero latency)?
"""

from __future__ import annotations

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import insert

from dispatcher import collector, sender
from dispatcher.api import Dispatcher
from dispatcher.channels import Channel
from dispatcher.context import Context
from dispatcher.db import get_engine, transaction
from dispatcher.gateway import Recipient, SmsPointClient
from dispatcher.models import MESSAGE
from dispatcher.publish import RecordingPublisher
from dispatcher.simulator import SimulatorProcess

from . import end_to_end, profiling, report
from .harness import Run, database, percentiles, rate, redis_prefix, simulator, stack
from .report import Result
from .workload import TXN, enqueue_mix, number, split_mix, txn_text

SCENARIO = "limit"
TITLE = "the gateway calls alone, raw Redis and database rates, and where a worker's time goes"
Batch = tuple[dict[str, Any], bool, list[Recipient]]


def batches(n: int) -> list[Batch]:
    out: list[Batch] = []
    for group, idx in split_mix(n):
        recips = [Recipient(number(i), group.text(i)) for i in idx]
        out += [(group.params, group.is_unicode, recips[k:k + 2000]) for k in range(0, len(recips), 2000)]
    return out


def direct_calls(sim: SimulatorProcess, work: list[Batch], threads: int) -> float:
    """Seconds to send every batch with send_bulk from ``threads`` threads (a client each)."""
    local = threading.local()
    clients: list[SmsPointClient] = []

    def send(b: Batch) -> None:
        if not hasattr(local, "client"):
            local.client = SmsPointClient(sim.base_url, sim.api_key, read_timeout=120)
            clients.append(local.client)
        params, uni, recips = b
        local.client.send_bulk(recips, sender_id=params["sender_id"], template_id=params["template_id"],
                               channel=Channel.parse(params["channel"]), is_unicode=uni)

    sim.admin.reset()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, work))
    seconds = time.perf_counter() - t0
    for c in clients:
        c.close()
    assert sim.admin.ledger_page(0, 1)["total"] == sum(len(b[2]) for b in work)
    return seconds


def single_vs_bulk(sim: SimulatorProcess, calls: int, latency_ms: float) -> dict[str, Any]:
    """Per-call latency of send-single-sms vs send-bulk-sms with one recipient, alternating calls."""
    client = SmsPointClient(sim.base_url, sim.api_key)
    kw: dict[str, Any] = {"sender_id": TXN["sender_id"], "template_id": TXN["template_id"],
                          "channel": Channel.TRANSACTIONAL, "is_unicode": False}
    out: dict[str, Any] = {}
    try:
        for lat in (latency_ms, 0.0):
            sim.admin.set_faults(latency_ms=lat)
            single: list[float] = []
            bulk: list[float] = []
            for i in range(calls + 5):  # the first 5 of each warm the connection and are not counted
                t = time.perf_counter()
                client.send_single(number(i), txn_text(i), **kw)
                t1 = time.perf_counter()
                client.send_bulk([Recipient(number(i), txn_text(i))], **kw)
                t2 = time.perf_counter()
                if i >= 5:
                    single.append(t1 - t)
                    bulk.append(t2 - t1)
            out[f"{lat:g}ms"] = {"send-single-sms": percentiles(single),
                                 "send-bulk-sms x1": percentiles(bulk)}
    finally:
        sim.admin.set_faults(latency_ms=latency_ms)
        client.close()
    return out


def raw_xadd(redis_url: str, n: int) -> float:
    """XADD entries per second, pipelined 1,000 per round trip, on a throwaway stream."""
    with redis_prefix(redis_url) as prefix:
        r = Redis.from_url(redis_url)
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            pipe = r.pipeline(transaction=False)
            for i in range(start, min(start + 1000, n)):
                pipe.xadd(f"{prefix}:raw", {"g": "transactional|SMSPNT|x|0", "ids": f"{i:032x}"})
            pipe.execute()
        seconds = time.perf_counter() - t0
        r.close()
    return rate(n, seconds)


def raw_insert(run: Run, db: str, n: int) -> float:
    """Message rows inserted per second (executemany in chunks of 5,000, one transaction)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = [{"id": f"{i:032x}", "state": "queued", "channel": "transactional", "sender_id": "SMSPNT",
             "template_id": TXN["template_id"], "is_unicode": False, "number": number(i), "text": txn_text(i),
             "parts": 1, "credits": 1, "attempts": 0, "created_at": now, "updated_at": now} for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp, database(db, run.opts, Path(tmp)) as url:
        engine = get_engine(url)
        t0 = time.perf_counter()
        with transaction(engine) as conn:
            for k in range(0, n, 5000):
                conn.execute(insert(MESSAGE), rows[k:k + 5000])
        return rate(n, time.perf_counter() - t0)


def in_process_profile(run: Run, sim: SimulatorProcess, n: int) -> dict[str, Any]:
    """cProfile of send_bulk (producer) and of collect + send_batch (worker path), in this process."""
    flush0 = {"flush_interval_transactional_ms": 0, "flush_interval_promotional_ms": 0}
    with stack(run, run.opts.main_db, sim, **flush0) as s:
        publisher = RecordingPublisher()
        ctx = Context(s.settings, publisher=publisher)
        _, producer = profiling.cprofile(lambda: enqueue_mix(Dispatcher(ctx), n))

        def drain() -> int:
            for lane in ("transactional", "promotional"):
                collector.collect(ctx, lane, max_run_s=60)
            return sum(sender.send_batch(ctx, b[0]).sent for b in publisher.batches)

        sent, worker = profiling.cprofile(drain)
        ctx.redis.close()
    assert sent == n, (sent, n)
    return {"producer_send_bulk": producer, "worker_collect_send": worker}


def run(run: Run) -> Result:
    opts = run.opts
    pipe = end_to_end.measure(run, opts.main_db)
    n = opts.size
    work = batches(n)
    with simulator(opts) as sim:
        seq_s = direct_calls(sim, work, 1)
        conc_s = direct_calls(sim, work, opts.concurrency)
        one = single_vs_bulk(sim, 20 if opts.smoke else 200, opts.latency_ms)
        cprof = in_process_profile(run, sim, min(n, opts.profile_size))
    xadd = raw_xadd(opts.redis_url, n)
    inserts = {db: raw_insert(run, db, n) for db in opts.dbs}
    spy: dict[str, Any] = {"skipped": "py-spy not installed"}
    if profiling.pyspy():
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "pyspy.txt"
            end_to_end.measure(run, opts.main_db, min(n, opts.profile_size),
                               around=lambda w: profiling.pyspy_recording(w.proc.pid, raw))
            spy = profiling.summarize_pyspy(raw)
    limit = max(rate(n, seq_s), rate(n, conc_s))
    rows: list[list[Any]] = [
        [f"pipeline end to end (scenario 2, {opts.main_db})", n, pipe["seconds"], pipe["rate"]],
        ["direct send_bulk calls, 1 thread", n, seq_s, rate(n, seq_s)],
        [f"direct send_bulk calls, {opts.concurrency} threads", n, conc_s, rate(n, conc_s)],
        ["Redis XADD (pipelined 1,000), entries", n, n / xadd, xadd]]
    rows += [[f"{db} insert of message rows", n, n / r, r] for db, r in inserts.items()]
    for lat, calls in one.items():
        rows += [[f"{name}, 1 message, {lat} latency: p50 / p99 ms", calls[name]["n"], calls[name]["p50_ms"],
                  calls[name]["p99_ms"]] for name in ("send-single-sms", "send-bulk-sms x1")]
    res = Result(SCENARIO, TITLE,
                 {"messages": n, "latency_ms": opts.latency_ms, "threads": opts.concurrency,
                  "profiled_messages": min(n, opts.profile_size), "py_spy": bool(profiling.pyspy())},
                 {"pipeline_rate": pipe["rate"], "direct_sequential_rate": rate(n, seq_s),
                  "direct_threads_rate": rate(n, conc_s), "limit_rate": limit, "redis_xadd_rate": xadd,
                  "db_insert_rate": inserts, "single_vs_bulk_one": one, "pyspy_worker": spy,
                  "cprofile": cprof},
                 ["what", "messages / calls", "seconds / p50 ms", "per s / p99 ms"], rows)
    res.ratios["end to end / limit"] = pipe["rate"] / max(limit, 1e-9)
    at = f"{opts.latency_ms:g}ms"
    res.ratios[f"send-single-sms p50 / send-bulk-sms x1 p50 ({at})"] = (
        one[at]["send-single-sms"]["p50_ms"] / max(one[at]["send-bulk-sms x1"]["p50_ms"], 1e-9))
    res.ratios["send-single-sms p50 / send-bulk-sms x1 p50 (0ms)"] = (
        one["0ms"]["send-single-sms"]["p50_ms"] / max(one["0ms"]["send-bulk-sms x1"]["p50_ms"], 1e-9))
    res.target("end to end / limit", res.ratios["end to end / limit"], 0.6)  # issue 13
    res.notes += profiling.describe(spy, cprof)
    res.plots.append(report.bars(opts.out / "limit_rates.png", "Pipeline against its limits (per second)",
                                 [str(r[0]) for r in rows[:4 + len(inserts)]],
                                 [float(r[3]) for r in rows[:4 + len(inserts)]], "per second", log=True))
    return res
