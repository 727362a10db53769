"""Scenario 5, OTP under load: OTPs sent one at a time (``send_sms`` every 100 ms) while N promotional
messages are enqueued (``send_bulk`` from another process, as an application's bulk import would be) and
drain; the OTP lane has its own worker (``-Q otp``), the bulk lanes theirs. Reports p50/p99 enqueue ->
accepted (``sent_at - created_at``) of the OTPs enqueued before the last promotional message was sent,
side by side with OTPs sent on the idle system just before (after a few warm-up OTPs).

Measured twice in one run: with bulk calls yielding to OTPs (``OTP_PRIORITY_YIELD_MS``, the default) and
without (``0``), so the cost of the yield to the drain's throughput is a ratio from the same run.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from dispatcher.settings import Settings
from workers.queues import QUEUE_MAINTENANCE, QUEUE_OTP, QUEUE_PROMOTIONAL, QUEUE_SYNC, QUEUE_TRANSACTIONAL

from . import end_to_end, report
from .harness import Run, Stack, percentiles, rate, simulator, stack
from .report import Result
from .workload import OTP, PROMO, number, otp_text, promo_text

SCENARIO = "otp_load"
TITLE = "OTP enqueue -> accepted while a promotional backlog drains"
WARM_UP = 3
BULK_QUEUES = (QUEUE_TRANSACTIONAL, QUEUE_PROMOTIONAL, QUEUE_SYNC, QUEUE_MAINTENANCE)


def _bulk_producer(settings: Settings, n: int, started: Any, seconds: Any) -> None:
    """In a separate process (an application's bulk import is not the process that sends OTPs)."""
    from dispatcher.api import Dispatcher
    from dispatcher.context import Context

    dispatcher = Dispatcher(Context(settings))
    started.set()
    t0 = time.perf_counter()
    dispatcher.send_bulk(((number(i), promo_text(i)) for i in range(n)), **PROMO)
    seconds.value = time.perf_counter() - t0


def send_otp(s: Stack, i: int) -> None:
    s.dispatcher.send_sms(number(5_000_000 + i), otp_text(i), **OTP)


def measure(run: Run, **overrides: Any) -> dict[str, Any]:
    opts = run.opts
    n = opts.size
    interval, idle_n = 0.1, 10 if opts.smoke else 50
    mp = multiprocessing.get_context("spawn")
    with simulator(opts) as sim, stack(run, opts.main_db, sim, **overrides) as s:
        s.start("bulk", queues=BULK_QUEUES, concurrency=opts.concurrency, beat=True)
        s.start("otp", queues=(QUEUE_OTP,), concurrency=opts.otp_concurrency)
        s.wait_ready()
        for i in range(WARM_UP):  # the first OTPs of fresh workers pay for connections: not measured
            send_otp(s, i)
        s.wait_recorded(WARM_UP, "otp")
        t_idle = time.time()
        sent = WARM_UP
        for _ in range(idle_n):
            send_otp(s, sent)
            sent += 1
            time.sleep(interval)
        s.wait_recorded(sent, "otp")
        started, enqueue_s = mp.Event(), mp.Value("d", 0.0)
        producer = mp.Process(target=_bulk_producer, args=(s.settings, n, started, enqueue_s), daemon=True)
        producer.start()
        try:
            if not started.wait(60):
                raise RuntimeError("the bulk producer process did not start")
            t_load = time.time()
            deadline = time.monotonic() + end_to_end.timeout_for(n)
            drained, next_check = False, 0.0
            while not drained:
                send_otp(s, sent)
                sent += 1
                time.sleep(interval)
                if time.monotonic() >= next_check:
                    drained, next_check = s.recorded("promotional") >= n, time.monotonic() + 0.25
                if time.monotonic() > deadline or any(w.proc.poll() is not None for w in s.workers):
                    raise RuntimeError(f"promotional backlog did not drain; states={s.state_counts()}")
            producer.join(30)
            if producer.exitcode != 0:
                raise RuntimeError(f"the bulk producer failed (exit code {producer.exitcode})")
        finally:
            if producer.is_alive():
                producer.kill()
                producer.join()
        s.wait_recorded(sent, "otp")
        otp_stages = s.stages("otp")
        promo_times = s.times("promotional")
    promo_last = max(sa for _, sa in promo_times)
    idle_lat = [sa - c for c, _, _, sa in otp_stages if t_idle <= c < t_load]
    under = [st for st in otp_stages if t_load <= st[0] <= promo_last]
    load = sorted((c - t_load, sa - c) for c, _, _, sa in under)
    if not load:
        raise RuntimeError("no OTP was enqueued while the backlog drained: nothing was measured")
    # where an OTP's time goes under load: waiting to be batched, batch -> `sending`, the call + record
    stages = {"enqueue -> batched": percentiles([b - c for c, b, _, _ in under]),
              "batched -> sending": percentiles([sg - b for _, b, sg, _ in under]),
              "sending -> accepted": percentiles([sa - sg for _, _, sg, sa in under])}
    return {"promo_messages": n, "promo_enqueue_s": enqueue_s.value, "promo_drain_s": promo_last - t_load,
            "promo_rate": rate(n, promo_last - t_load), "otp_interval_s": interval,
            "otp_idle": percentiles(idle_lat), "otp_under_load": percentiles([x for _, x in load]),
            "otp_stages_under_load": stages,
            "otp_after_drain": sum(1 for c, *_ in otp_stages if c > promo_last), "series_load": load,
            "idle_ms": [x * 1000 for x in idle_lat]}


def run(run: Run) -> Result:
    opts = run.opts
    off = measure(run, otp_priority_yield_ms=0)
    m = measure(run)  # the default: bulk yields to OTPs
    idle, load = m["otp_idle"], m["otp_under_load"]
    rows = [["OTPs, idle system", idle["n"], idle["p50_ms"], idle["p99_ms"], idle["max_ms"]],
            ["OTPs while the backlog drains", load["n"], load["p50_ms"], load["p99_ms"], load["max_ms"]],
            *[[f"  under load, {name}", st["n"], st["p50_ms"], st["p99_ms"], st["max_ms"]]
              for name, st in m["otp_stages_under_load"].items()],
            [f"promotional: {m['promo_messages']:,} enqueued in {m['promo_enqueue_s']:.1f} s, "
             f"all sent at {m['promo_rate']:,.0f}/s",
             m["promo_messages"], "-", "-", f"{m['promo_drain_s']:.1f} s"],
            ["without the yield (OTP_PRIORITY_YIELD_MS=0): OTPs while the backlog drains",
             off["otp_under_load"]["n"], off["otp_under_load"]["p50_ms"], off["otp_under_load"]["p99_ms"],
             off["otp_under_load"]["max_ms"]],
            [f"  without the yield: promotional all sent at {off['promo_rate']:,.0f}/s",
             off["promo_messages"], "-", "-", f"{off['promo_drain_s']:.1f} s"]]
    yield_ms = run_settings_note()
    res = Result(SCENARIO, TITLE,
                 {"promotional": opts.size, "latency_ms": opts.latency_ms, "db": opts.main_db,
                  "bulk_worker": f"{opts.concurrency} processes, -Q {','.join(BULK_QUEUES)}, beat",
                  "otp_worker": f"{opts.otp_concurrency} processes, -Q otp",
                  "otp_every_s": m["otp_interval_s"], "otp_priority_yield_ms": yield_ms},
                 {**{k: v for k, v in m.items() if k not in ("series_load", "idle_ms")},
                  "without_yield": {k: v for k, v in off.items() if k not in ("series_load", "idle_ms")}},
                 ["what", "messages", "p50 ms", "p99 ms", "max"], rows)
    res.ratios["OTP p99 under load / idle"] = load["p99_ms"] / max(idle["p99_ms"], 1e-9)
    res.ratios["OTP p99 under load, yield / no yield"] = load["p99_ms"] / max(off["otp_under_load"]["p99_ms"],
                                                                              1e-9)
    drain = m["promo_rate"] / max(off["promo_rate"], 1e-9)
    res.ratios["drain rate, yield / no yield"] = drain
    res.target("OTP p99 ms under load", load["p99_ms"], 250, at_most=True)
    res.target("drain rate kept with the yield", drain, 0.9)
    load_ms = [x * 1000 for _, x in m["series_load"]]
    res.plots.append(report.lines(
        opts.out / "otp_latency_over_time.png", "OTP enqueue -> accepted while promotional messages drain",
        "seconds since the promotional enqueue started", "milliseconds",
        {"OTP, bulk yields": ([t for t, _ in m["series_load"]], load_ms),
         "OTP, no yield": ([t for t, _ in off["series_load"]], [x * 1000 for _, x in off["series_load"]])},
        marker="."))
    res.plots.append(report.cdf(opts.out / "otp_latency_cdf.png", "OTP enqueue -> accepted",
                                {"idle": m["idle_ms"], "under load, bulk yields": load_ms,
                                 "under load, no yield": [x * 1000 for _, x in off["series_load"]]}))
    return res


def run_settings_note() -> int:
    """The yield the default run uses (Settings' default, or OTP_PRIORITY_YIELD_MS from the environment)."""
    return Settings().otp_priority_yield_ms
