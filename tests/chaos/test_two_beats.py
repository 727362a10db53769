"""Two beat processes at once (two workers, each with -B): every periodic task runs twice as often and
concurrently, yet no batch is sent twice, no job is polled twice at once, and every hook fires once."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from dispatcher.db import reading
from dispatcher.models import JOB

from .common import FAST_REPAIR, HOOK_LOG_ENV, enqueue, verify
from .conftest import SOAK

FINAL = ("delivered", "undelivered", "expired", "failed")
#: Every message reaches its final status at once, so the first poll of a job closes it.
INSTANT_LIFECYCLE = {"delivered_after_s": 0, "undelivered_after_s": 0, "jitter": 0, "undelivered_rate": 0.1,
                     "pending_rate": 0}


def test_two_beats_process_nothing_twice(make_stack, tmp_path: Path):
    """Two beats: messages sent once, each job polled exactly once, each final state hooked exactly once."""
    hook_log = tmp_path / "hooks.jsonl"
    hook_log.touch()
    stack = make_stack(batch_size=100, sync_interval_s=1.0, hooks_interval_s=1.0,
                       hook_callable="tests.chaos.common:record_hook", **FAST_REPAIR)
    stack.env[HOOK_LOG_ENV] = str(hook_log)
    stack.sim.admin.set_lifecycle(**INSTANT_LIFECYCLE)
    total = 10_000 if SOAK else 2000
    enqueue(stack, total)
    stack.start_worker(beat=True, concurrency=2, name="beat1")
    stack.start_worker(beat=True, concurrency=2, name="beat2")
    started = time.monotonic()
    stack.wait_settled(total, timeout=150, done=FINAL)

    def hooked() -> Counter[str]:
        return Counter(json.loads(line)["message_id"] for line in hook_log.read_text().splitlines())

    stack.wait_until(lambda: len(hooked()) == total, 60, "a hook for every message")
    time.sleep(3)  # three more rounds of both beats' hook and sync tasks: nothing may fire again
    fig = verify(stack, "two-beats", "2 beat processes (every periodic task doubled)", total, started)
    assert fig.sent_once == total

    calls = Counter(str(c["job_id"]) for c in stack.sim.admin.calls()
                    if c["command"] == "sms-delivery-status")
    with reading(stack.ctx.engine) as conn:
        jobs = {r.job_id: r for r in conn.execute(select(JOB))}
    assert jobs and all(not j.open for j in jobs.values())
    assert {jid: calls[jid] for jid in jobs} == {jid: j.poll_count for jid, j in jobs.items()}
    assert all(j.poll_count == 1 for j in jobs.values()), "a job was polled twice"
    beats = [p for p in stack.procs if "Scheduler: Sending due task sweep" in p.log.read_text()]
    assert len(beats) == 2, "both beats must have been scheduling"
    twice = [mid for mid, n in hooked().items() if n > 1]
    print(f"CHAOS two-beats [{fig.db}]: jobs={len(jobs)} status calls={sum(calls.values())} "
          f"hooks={sum(hooked().values())} for {total} messages; hooked twice={len(twice)}")
    assert twice == []
