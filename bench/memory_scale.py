"""Scenario 7, memory and scale.

Memory: one worker (``--concurrency`` pool processes + beat) sends ``--memory-size`` messages (default
1,000,000, enqueued in rounds while it drains); every half second each process of its tree is read from
/proc: VmRSS and VmHWM (the peak) per process, and PSS summed over the tree (shared pages count once).
Flat means the largest process grows by less than 10 % between 20 % of the run and its end.

Scale: ``--scale-size`` messages are enqueued first, then a worker with 1 or 2 (and ``--concurrency``)
pool processes and a batch size of 100, 500 or 2,000 drains them: messages per second from the worker
being ready until the last answer is recorded.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from . import end_to_end, report
from .harness import Run, rate, simulator, stack
from .procs import Worker, memory_kb
from .report import Result
from .workload import enqueue_mix

SCENARIO = "memory_scale"
TITLE = "worker memory across a long run; throughput against pool processes and batch size"
BATCH_SIZES = (100, 500, 2000)
FLAT_GROWTH = 0.10


def sample(worker: Worker) -> tuple[float, float, float, int]:
    """(tree PSS MB, largest process RSS MB, largest VmHWM MB, processes) of a worker's process group."""
    mem = [memory_kb(pid) for pid in worker.pids()]
    return (sum(p for _, _, p in mem) / 1024, max((r for r, _, _ in mem), default=0) / 1024,
            max((h for _, h, _ in mem), default=0) / 1024, len(mem))


def memory_run(run: Run) -> dict[str, Any]:
    opts = run.opts
    n = opts.memory_size
    step = min(50_000, max(1000, n // 20))
    samples: list[tuple[float, int, float, float, float, int]] = []
    stop = threading.Event()
    with simulator(opts) as sim, stack(run, opts.main_db, sim) as s:
        worker = s.start("pipeline", concurrency=opts.concurrency, beat=True)
        s.wait_ready()
        t0 = time.time()

        def sampler() -> None:
            while not stop.is_set():
                accepted = s.accepted()
                samples.append((time.time() - t0, accepted, *sample(worker)))
                stop.wait(0.5)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            for k in range(0, n, step):
                enqueue_mix(s.dispatcher, min(step, n - k), offset=k)
            s.wait_accepted(n, end_to_end.timeout_for(n))
            s.wait_recorded(n)
            last = s.last_sent()
        finally:
            stop.set()
            thread.join()
        samples.append((time.time() - t0, s.accepted(), *sample(worker)))
    early = next((x for x in samples if x[1] >= 0.2 * n), samples[0])
    end = max((x for x in samples if x[1] >= n), key=lambda x: x[0], default=samples[-1])
    growth = (end[3] - early[3]) / max(early[3], 1e-9)
    return {"messages": n, "seconds": last - t0, "rate": rate(n, last - t0),
            "peak_tree_pss_mb": max(x[2] for x in samples), "peak_process_hwm_mb": max(x[4] for x in samples),
            "largest_process_mb_at_20pct": early[3], "largest_process_mb_at_end": end[3],
            "growth_after_20pct": growth, "processes": max(x[5] for x in samples), "samples": samples}


def sweep(run: Run) -> list[dict[str, Any]]:
    opts = run.opts
    n = opts.scale_size
    points = []
    with simulator(opts) as sim:
        grid = [(1, 100), (2, 2000)] if opts.smoke else \
            [(p, b) for p in sorted({1, 2, opts.concurrency}) for b in BATCH_SIZES]
        for procs, batch in grid:
            sim.admin.reset()
            with stack(run, opts.main_db, sim, batch_size=batch) as s:
                enqueue_mix(s.dispatcher, n)
                s.start("pipeline", concurrency=procs, beat=True)
                s.wait_ready()
                t0 = time.time()
                s.wait_accepted(n, end_to_end.timeout_for(n) * 4)
                s.wait_recorded(n)
                last = s.last_sent()
            points.append({"processes": procs, "batch_size": batch, "messages": n,
                           "seconds": last - t0, "rate": rate(n, last - t0)})
    return points


def run(run: Run) -> Result:
    opts = run.opts
    mem = memory_run(run)
    points = sweep(run)
    rows: list[list[Any]] = [
        [f"memory run: {mem['messages']:,} messages, {mem['processes']} processes", mem["rate"],
         f"tree PSS peak {mem['peak_tree_pss_mb']:.0f} MB, largest process peak "
         f"{mem['peak_process_hwm_mb']:.0f} MB, {mem['growth_after_20pct']:+.1%} after 20 %"]]
    rows += [[f"drain: {p['processes']} pool process(es), batch {p['batch_size']}", p["rate"],
              f"{p['messages']:,} messages in {p['seconds']:.1f} s"] for p in points]
    res = Result(SCENARIO, TITLE,
                 {"memory_messages": mem["messages"], "scale_messages": opts.scale_size,
                  "latency_ms": opts.latency_ms, "db": opts.main_db, "memory_workers": opts.concurrency,
                  "flat_means": f"largest process grows < {FLAT_GROWTH:.0%} after 20 % of the run"},
                 {"memory": {k: v for k, v in mem.items() if k != "samples"}, "sweep": points},
                 ["run", "msgs/s", "detail"], rows)
    res.target("largest worker process peak MB", mem["peak_process_hwm_mb"], 250, at_most=True)
    res.target("growth after 20 % of the run", mem["growth_after_20pct"], FLAT_GROWTH, at_most=True)
    by = {p: [x for x in points if x["processes"] == p] for p in sorted({x["processes"] for x in points})}
    best = {p: max(x["rate"] for x in xs) for p, xs in by.items()}
    if 1 in best and 2 in best:
        res.ratios["best drain msgs/s, 2 / 1 pool processes"] = best[2] / max(best[1], 1e-9)
    most = max(by)
    at = {x["batch_size"]: x["rate"] for x in points if x["processes"] == most}
    if 100 in at and 2000 in at:
        res.ratios[f"drain msgs/s, batch 2000 / batch 100 ({most} processes)"] = at[2000] / max(at[100], 1e-9)
    smp = mem["samples"]
    res.plots.append(report.lines(
        opts.out / "memory_rss.png", f"Worker RSS across {mem['messages']:,} messages", "messages accepted",
        "MB", {"whole worker tree (PSS)": ([float(x[1]) for x in smp], [x[2] for x in smp]),
               "largest process (RSS)": ([float(x[1]) for x in smp], [x[3] for x in smp])}, marker="."))
    curves = {f"{p} pool process(es)": ([float(x["batch_size"]) for x in xs], [x["rate"] for x in xs])
              for p, xs in by.items()}
    res.plots.append(report.lines(opts.out / "scale_throughput.png", "Drain throughput against batch size",
                                  "batch size", "messages / s", curves, logx=True))
    return res
