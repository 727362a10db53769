"""Scenario 3, baseline: one Celery task per message calling send-single-sms (bench/baseline_app.py), on
the same machine, with the same simulator latency, the same mix of messages and the same number of pool
processes as the pipeline of scenario 2. Reports its throughput and time per message, and the ratio of
the pipeline's throughput (scenario 2, same run) to it.

The baseline pays the gateway latency once per message, so it is run on fewer messages (about 20 s of
its steady state unless ``--baseline-size`` says otherwise); rates do not depend on the count.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dispatcher.channels import DEFAULT_CHANNEL_MAP

from . import baseline_app, end_to_end, report
from .harness import TEARDOWN_GRACE_S, Run, percentiles, rate, redis_prefix, simulator
from .procs import ROOT, start_worker, wait_accepted
from .report import Result
from .workload import MIX_TEXT, number, split_mix

SCENARIO = "baseline"
TITLE = "one Celery task per message (send-single-sms) against the pipeline"


def size_for(run: Run) -> int:
    opts = run.opts
    if opts.baseline_size:
        return opts.baseline_size
    per_s = opts.concurrency * 1000.0 / max(opts.latency_ms + 5, 1.0)
    return max(200, min(opts.size, int(per_s * 20)))


def measure(run: Run) -> dict[str, Any]:
    opts = run.opts
    n = size_for(run)
    channels = DEFAULT_CHANNEL_MAP  # the simulator's default channel numbers
    with simulator(opts) as sim, redis_prefix(opts.redis_url) as prefix:
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "BENCH_BASELINE_BROKER": opts.redis_url, "BENCH_BASELINE_KEYPREFIX": f"{prefix}:celery:",
               "BENCH_BASELINE_GATEWAY": sim.base_url, "BENCH_BASELINE_API_KEY": sim.api_key}
        worker = start_worker(env, run.logs, "baseline", queues=[baseline_app.QUEUE],
                              concurrency=opts.concurrency, app="bench.baseline_app")
        app = baseline_app.make_app(opts.redis_url, f"{prefix}:celery:")
        try:
            worker.wait_ready()
            sent_at: dict[str, float] = {}
            t0 = time.time()
            for group, idx in split_mix(n):
                p = group.params
                for i in idx:
                    text = group.text(i)
                    sent_at[text] = time.time()
                    app.send_task(baseline_app.TASK, queue=baseline_app.QUEUE,
                                  args=[number(i), text, p["sender_id"], p["template_id"],
                                        channels[p["channel"]], int(group.is_unicode)])
            enqueue_s = time.time() - t0
            wait_accepted(sim, n, 120 + n / 5, [worker])
            ledger = sim.admin.ledger()
        finally:
            worker.stop(TEARDOWN_GRACE_S)
            app.close()
    lat = [e["accepted_at"] - sent_at[e["text"]] for e in ledger if e["text"] in sent_at]
    seconds = max(e["accepted_at"] for e in ledger) - t0
    assert len(lat) == n, (len(lat), n)
    return {"messages": n, "seconds": seconds, "rate": rate(n, seconds), "enqueue_s": enqueue_s,
            "latency": percentiles(lat), "latencies_ms": [x * 1000 for x in lat]}


def run(run: Run) -> Result:
    opts = run.opts
    pipe = end_to_end.measure(run, opts.main_db)
    base = measure(run)
    rows = [["pipeline (scenario 2, " + opts.main_db + ")", pipe["messages"], pipe["seconds"], pipe["rate"],
             pipe["latency"]["p50_ms"], pipe["latency"]["p99_ms"]],
            ["baseline: task per message", base["messages"], base["seconds"], base["rate"],
             base["latency"]["p50_ms"], base["latency"]["p99_ms"]]]
    res = Result(SCENARIO, TITLE,
                 {"baseline_messages": base["messages"], "pipeline_messages": pipe["messages"],
                  "mix": MIX_TEXT, "latency_ms": opts.latency_ms, "pool_processes": opts.concurrency,
                  "baseline": "celery prefork, 1 task/message, requests.Session keep-alive, send-single-sms"},
                 {"pipeline": {k: v for k, v in pipe.items() if k not in ("latencies_ms", "progress")},
                  "baseline": {k: v for k, v in base.items() if k != "latencies_ms"}},
                 ["system", "messages", "seconds", "msgs/s", "p50 ms", "p99 ms"], rows)
    ratio = pipe["rate"] / max(base["rate"], 1e-9)
    res.ratios["end-to-end msgs/s: pipeline / baseline"] = ratio
    res.target("pipeline / baseline", ratio, 50)
    title = f"Throughput, {opts.concurrency} pool processes, {opts.latency_ms:g} ms gateway"
    res.plots.append(report.bars(opts.out / "baseline_vs_pipeline.png", title,
                                 ["pipeline (batches)", "baseline (task per message)"],
                                 [pipe["rate"], base["rate"]], "messages / s", log=True))
    return res
