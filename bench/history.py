"""Scenario 10, history: does the pipeline slow down as the ``message`` table fills up?

A deployment that has run for weeks holds millions of finished rows. Two stacks are measured side by side
in one run, each on a fresh database: one empty, one seeded with ``--history-size`` messages (default
10,000,000) spread over the last 30 days as the pipeline leaves them: in batches of 2,000 with their
``batch`` and ``gateway_job`` rows, mostly final (delivered 85 %, undelivered 7 %, failed 4 %, expired 2 %)
and the newest 2 % still ``sent`` with open jobs awaiting reports; then ``ANALYZE``, as autovacuum would
have. On each: ``--history-sms`` ``send_sms`` calls one after another (p50/p99), then one worker drains
``--size`` mixed messages end to end (messages / (last ``sent_at`` - start of the enqueue)). Only the
messages created during the measurement are counted. The issue's target: with the history, end-to-end
throughput and ``send_sms`` p99 within 10 % of the empty table's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from dispatcher import store
from dispatcher.db import transaction
from dispatcher.ids import new_id, new_ids
from dispatcher.states import BatchState, State

from . import report
from .end_to_end import timeout_for
from .harness import Run, percentiles, rate, simulator, stack
from .report import Result
from .workload import MIX_TEXT, PROMO, TXN, enqueue_mix, number, promo_text, txn_text

SCENARIO = "history"
TITLE = "cost as work grows: end to end and send_sms on an empty table vs one with a long history"
DAYS = 30
BATCH = 2000
#: Final states of seeded batches, by share (the newest 2 % are `sent`, awaiting reports).
MIX = ((State.DELIVERED, 85), (State.UNDELIVERED, 7), (State.FAILED, 4), (State.EXPIRED, 2))
SENT_SHARE = 0.02
#: Batches per transaction while seeding.
PER_TX = 50


def _state_of(k: int, batches: int) -> State:
    """Deterministic state of seeded batch ``k`` of ``batches`` (the newest ones still `sent`)."""
    if k >= batches * (1 - SENT_SHARE):
        return State.SENT
    slot = (k * 37) % 98
    for state, share in MIX:
        if slot < share:
            return state
        slot -= share
    return State.DELIVERED


def seed_history(engine: Engine, n: int, now: datetime) -> dict[str, Any]:
    """Write ``n`` messages of the last DAYS days with their batch and job rows; returns what was written
    and how long it took."""
    t0 = time.perf_counter()
    batches = (n + BATCH - 1) // BATCH
    start = now - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / max(batches, 1)
    by_state: dict[str, int] = {}
    for first in range(0, batches, PER_TX):
        with transaction(engine) as conn:
            for k in range(first, min(first + PER_TX, batches)):
                size = min(BATCH, n - k * BATCH)
                _seed_batch(conn, k, size, _state_of(k, batches), start + step * k, now)
                state = _state_of(k, batches).value
                by_state[state] = by_state.get(state, 0) + size
    fill_s = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"messages": n, "batches": batches, "by_state": by_state, "fill_s": fill_s,
            "analyze_s": time.perf_counter() - t0 - fill_s}


def _seed_batch(conn: Any, k: int, size: int, state: State, created: datetime, now: datetime) -> None:
    promo = k % 10 < 3  # the end-to-end mix's share of promotional messages
    params = PROMO if promo else TXN
    batch_id, job_id = new_id(), f"hist-{k:08d}"
    sent_at = created + timedelta(seconds=2)
    final_at = None if state is State.SENT else sent_at + timedelta(seconds=30)
    common = {"state": state.value, "hold_reason": None, "channel": params["channel"],
              "sender_id": params["sender_id"], "template_id": params["template_id"], "idempotency_key": None,
              "meta": None, "bulk_id": None, "batch_id": batch_id, "attempts": 1, "created_at": created,
              "send_at": None, "pushed_at": created, "sending_at": created, "sent_at": sent_at,
              "final_at": final_at, "updated_at": final_at or sent_at, "gateway_job_id": job_id,
              "credits_charged": 1, "status_raw": None if state is State.SENT else state.value.capitalize(),
              "last_error": "rejected by gateway: Invalid Number" if state is State.FAILED else None}
    base = k * BATCH
    texts = promo_text if promo else txn_text
    rows = [(number(base + i), texts(base + i), 1, 1, False, None, None) for i in range(size)]
    with store.MessageWriter(conn, common) as out:
        out.write(new_ids(size, created), rows)
    store.insert_batch(conn, {"id": batch_id, "lane": params["channel"], "channel": params["channel"],
                              "sender_id": params["sender_id"], "template_id": params["template_id"],
                              "is_unicode": False, "size": size, "credits": size,
                              "state": BatchState.SENT.value, "created_at": created, "published_at": created,
                              "sending_at": created, "done_at": sent_at, "job_id": job_id})
    open_job = state is State.SENT
    store.insert_job(conn, {"job_id": job_id, "batch_id": batch_id, "channel": params["channel"],
                            "size": size, "created_at": sent_at, "open": open_job,
                            "next_poll_at": now + timedelta(days=1) if open_job else sent_at,
                            "poll_count": 0 if open_job else 5, "invalid_id_count": 0,
                            "closed_at": None if open_job else final_at, "credits_reserved": size,
                            "credits_charged": size, "credits_released": 0})


def measure(run: Run, history: int) -> dict[str, Any]:
    """send_sms p50/p99 and one end-to-end drain on a fresh database holding ``history`` old messages."""
    opts = run.opts
    n, calls = opts.size, opts.history_sms
    with simulator(opts) as sim, stack(run, opts.main_db, sim) as s:
        seeded = seed_history(s.ctx.engine, history, datetime.now(UTC)) if history else {}
        s.since = datetime.now(UTC)
        d = s.dispatcher
        d.send_sms(number(9_000_000), txn_text(9_000_000), **TXN)  # warm-up: connections
        lat: list[float] = []
        for i in range(calls):
            t = time.perf_counter()
            d.send_sms(number(8_000_000 + i), txn_text(8_000_000 + i), **TXN)
            lat.append(time.perf_counter() - t)
        s.start("pipeline", concurrency=opts.concurrency, beat=True)
        s.wait_ready()
        s.wait_accepted(calls + 1, timeout_for(calls))  # the send_sms messages go first, not timed
        t0 = time.time()
        enqueue_mix(s.dispatcher, n)
        s.wait_accepted(calls + 1 + n, timeout_for(n))
        s.wait_recorded(calls + 1 + n)
        last = s.last_sent()
        states = s.state_counts()
    return {"history": history, "seeded": seeded, "send_sms": percentiles(lat),
            "sms_ms": [x * 1000 for x in lat], "e2e_rate": rate(n, last - t0), "e2e_s": last - t0,
            "states": states}


def run(run: Run) -> Result:
    opts = run.opts
    empty = measure(run, 0)
    full = measure(run, opts.history_size)
    seeded = full["seeded"]
    rows = [[label, f"{m['history']:,}", m["send_sms"]["p50_ms"], m["send_sms"]["p99_ms"],
             f"{m['e2e_rate']:,.0f}", f"{m['e2e_s']:.2f}"]
            for label, m in (("empty table", empty), ("with history", full))]
    res = Result(SCENARIO, TITLE,
                 {"db": opts.main_db, "history": opts.history_size, "history_days": DAYS,
                  "history_states": seeded.get("by_state"), "seed_s": round(seeded.get("fill_s", 0.0), 1),
                  "analyze_s": round(seeded.get("analyze_s", 0.0), 1), "send_sms_calls": opts.history_sms,
                  "messages": opts.size, "mix": MIX_TEXT, "latency_ms": opts.latency_ms,
                  "workers": f"1 worker x {opts.concurrency} processes (+ beat)"},
                 {"empty": {k: v for k, v in empty.items() if k != "sms_ms"},
                  "history": {k: v for k, v in full.items() if k != "sms_ms"}},
                 ["table", "rows before", "send_sms p50 ms", "send_sms p99 ms", "end to end msgs/s",
                  "drain s"], rows)
    thr = full["e2e_rate"] / max(empty["e2e_rate"], 1e-9)
    p99 = full["send_sms"]["p99_ms"] / max(empty["send_sms"]["p99_ms"], 1e-9)
    res.ratios["end to end, history / empty"] = thr
    res.ratios["send_sms p99, history / empty"] = p99
    res.target("end to end kept with the history", thr, 0.9)
    res.target("send_sms p99 with the history / empty", p99, 1.1, at_most=True)
    res.plots.append(report.cdf(opts.out / "history_send_sms.png", "send_sms latency, empty vs long history",
                                {"empty table": empty["sms_ms"],
                                 f"{opts.history_size:,} rows": full["sms_ms"]}))
    return res
