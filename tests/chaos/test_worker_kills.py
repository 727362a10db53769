"""Workers killed and stopped: SIGKILL at random moments and inside both halves of the gateway call, SIGTERM
mid-batch (warm shutdown), and Celery messages delivered again for batches already sent or in flight."""

from __future__ import annotations

import random
import re
import signal
import time
import uuid
from typing import Any

import pytest

from dispatcher.publish import TASK_SEND_BATCH

from ..integration.pipeline_helpers import calls, ledger
from .common import FAST_REPAIR, batches_in, enqueue, settle, verify
from .conftest import SOAK

#: The simulator waits LATENCY before processing a send (a kill then: the gateway never takes it) and
#: holds its answer for HOLD after recording the send (a kill then: accepted but never recorded).
LATENCY_S = 0.4
HOLD_S = 0.4
CALL_WINDOW_FAULTS = {"latency_ms": LATENCY_S * 1000, "rate_read_timeout_after_accept": 1.0,
                      "read_timeout_s": HOLD_S, "commands": ["send-bulk-sms"]}


def _wait_new_sending(stack: Any, seen: set[str], timeout: float = 30.0) -> float:
    """Block until a batch not seen before enters `sending`; returns the monotonic time it was noticed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = set(batches_in(stack, "sending")) - seen
        if fresh:
            seen |= fresh
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"no batch entered `sending` within {timeout} s; states={stack.counts()}")


def _offset(target: str, rng: random.Random) -> float:
    """Seconds after a batch entered `sending` at which to kill, for each target window."""
    if target == "before-gateway":  # inside the latency: the request is out but not processed
        return rng.uniform(0.05, LATENCY_S - 0.12)
    if target == "after-accept":  # the gateway recorded the send and holds its answer
        return rng.uniform(LATENCY_S + 0.1, LATENCY_S + HOLD_S - 0.1)
    return rng.uniform(0.0, LATENCY_S + HOLD_S + 0.5)


@pytest.mark.slow
def test_sigkill_at_random_moments_and_inside_the_gateway_call(make_stack):
    """Repeated SIGKILLs, some inside the call: nothing lost, nothing doubled, the cut ones `unknown`."""
    stack = make_stack(batch_size=50, read_timeout=3.0, **FAST_REPAIR)
    stack.sim.admin.set_faults(**CALL_WINDOW_FAULTS)
    total = 12_000 if SOAK else 3000
    targets = ["before-gateway", "after-accept", "random"] * (6 if SOAK else 2)
    enqueue(stack, total)
    rng = random.Random(20240607)
    seen: set[str] = set()
    started = time.monotonic()
    for i, target in enumerate(targets):
        w = stack.start_worker(beat=True, concurrency=3, name=f"k{i}")
        noticed = _wait_new_sending(stack, seen)
        time.sleep(max(0.0, noticed + _offset(target, rng) - time.monotonic()))
        w.kill()
    stack.start_worker(beat=True, concurrency=3, name="survivor")
    settle(stack, total, timeout=240 if SOAK else 150)
    fig = verify(stack, "sigkill", f"{len(targets)} SIGKILLs ({', '.join(sorted(set(targets)))})", total,
                 started)
    assert fig.unknown > 0, "no kill cut a gateway call: the test proves nothing"
    assert fig.unknown_in_ledger > 0, "no kill landed between acceptance and recording `sent`"
    assert fig.unknown_in_ledger < fig.unknown, "no kill landed between `sending` and the gateway taking it"
    assert fig.sent_once > total // 2


def _succeeded(stack: Any, task_ids: set[str]) -> dict[str, str]:
    """task id -> the send_batch outcome its worker logged, for the ids that finished."""
    pattern = re.compile(r"Task smspoint\.send_batch\[([0-9a-f-]+)\] succeeded in [0-9.e-]+s: "
                         r"\{'batch_id': '[0-9a-f]+', 'outcome': '(\w+)'")
    out = {}
    for p in stack.procs:
        for m in pattern.finditer(p.log.read_text(errors="replace")):
            if m.group(1) in task_ids:
                out[m.group(1)] = m.group(2)
    return out


def _publish_again(stack: Any, batch_ids: list[str], copies: int = 1) -> set[str]:
    """Publish send_batch task messages of our own for these batches (as a broker redelivery would)."""
    app = stack.ctx.publisher.app
    ids = set()
    for batch_id in batch_ids:
        for _ in range(copies):
            task_id = str(uuid.uuid4())
            app.send_task(TASK_SEND_BATCH, kwargs={"batch_id": batch_id, "lane": "transactional"},
                          queue="transactional", task_id=task_id, ignore_result=True)
            ids.add(task_id)
    return ids


def test_sigterm_mid_batch_and_redelivered_messages_send_nothing_twice(make_stack):
    """Warm shutdown mid-batch leaves nothing `sending`; redelivered send_batch messages send nothing."""
    stack = make_stack(batch_size=100, **FAST_REPAIR)
    stack.sim.admin.set_faults(latency_ms=300, commands=["send-bulk-sms"])
    total = 8000 if SOAK else 2500
    stops = 6 if SOAK else 3
    enqueue(stack, total)
    seen: set[str] = set()
    duplicates: set[str] = set()
    started = time.monotonic()
    for i in range(stops):
        w = stack.start_worker(beat=True, concurrency=3, name=f"t{i}")
        _wait_new_sending(stack, seen)
        duplicates |= _publish_again(stack, batches_in(stack, "pending") + batches_in(stack, "sending"), 2)
        time.sleep(0.15)
        w.proc.send_signal(signal.SIGTERM)  # to the main process, as Kubernetes and docker stop do
        w.proc.wait(60)
        assert w.proc.returncode == 0, w.log.read_text()[-2000:]
        assert "Warm shutdown" in w.log.read_text()
        left = stack.counts().get("sending", 0)
        assert left == 0, f"warm shutdown left {left} message(s) in `sending`"
    last = stack.start_worker(beat=True, concurrency=3, name="last")
    settle(stack, total)
    fig = verify(stack, "sigterm", f"{stops} SIGTERMs mid-batch, {len(duplicates)} duplicated task messages",
                 total, started)
    assert fig.unknown == 0 and fig.sent_once == total

    sent_batches = batches_in(stack, "sent")
    before_calls = sum(1 for c in calls(stack.sim) if c["command"] == "send-bulk-sms")
    before_ledger = len(ledger(stack.sim))
    again = _publish_again(stack, sent_batches)
    stack.wait_until(lambda: len(_succeeded(stack, again)) == len(again), 60, "redelivered tasks to run")
    outcomes = set(_succeeded(stack, again).values())
    after_calls = sum(1 for c in calls(stack.sim) if c["command"] == "send-bulk-sms")
    print(f"CHAOS redelivery [{fig.db}]: {len(again)} send_batch messages for sent batches -> outcomes "
          f"{sorted(outcomes)}; gateway send calls {before_calls} -> {after_calls}")
    assert outcomes == {"skipped"}
    assert after_calls == before_calls and len(ledger(stack.sim)) == before_ledger
    assert set(_succeeded(stack, duplicates).values()) <= {"skipped", "sent"}
    last.stop()
    verify(stack, "redelivery", f"{len(again)} redelivered send_batch messages", total, started)
