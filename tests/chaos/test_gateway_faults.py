"""Gateway faults not covered one by one in tests/integration/test_pipeline_faults.py: all of them at once
(5xx, 429 with Retry-After, dropped connections, read timeouts after accepting, HTML error pages), and the
account faults: credits exhausted then topped up, authentication failing then fixed."""

from __future__ import annotations

import time

from .common import FAST_REPAIR, SENT, enqueue, hold_reasons, settle, verify
from .conftest import SOAK

STORM = {"rate_5xx": 0.08, "rate_429": 0.15, "retry_after_s": 0.3, "rate_drop_before_read": 0.08,
         "rate_read_timeout_after_accept": 0.08, "read_timeout_s": 2.5, "rate_html_error": 0.08}


def _faults_fired(stack) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in stack.sim.admin.calls():
        if c.get("fault"):
            out[c["fault"]] = out.get(c["fault"], 0) + 1
    return out


def test_gateway_fault_storm(make_stack):
    """Every transport fault at once: ambiguous sends end `unknown`, unsent ones are retried, none doubled."""
    stack = make_stack(batch_size=25, read_timeout=1.5, **FAST_REPAIR)
    stack.sim.admin.set_faults(**STORM)
    total = 10_000 if SOAK else 2500
    enqueue(stack, total)
    stack.start_worker(beat=True, concurrency=3)
    started = time.monotonic()
    settle(stack, total)
    fired = _faults_fired(stack)
    fig = verify(stack, "gateway-storm", ", ".join(f"{k}={v}" for k, v in sorted(fired.items())), total,
                 started)
    assert {"5xx", "429", "drop_before_read", "read_timeout_after_accept", "html"} <= set(fired)
    assert fig.unknown > 0 and fig.unknown_in_ledger > 0
    assert fig.sent_once > total // 2


def _held_by(stack, reason: str) -> None:
    """Wait until every unsent message is held for ``reason`` (none left queued or sending)."""
    def held() -> bool:
        counts = stack.counts()
        return (hold_reasons(stack).get(reason, 0) > 0 and counts.get("sending", 0) == 0
                and counts.get("queued", 0) == 0)
    stack.wait_until(held, 60, f"every unsent message held for {reason}")


def test_credits_exhausted_then_topped_up_and_auth_failing_then_fixed(make_stack):
    """No credits / refused key: messages held (none failed) and all sent once the cause is gone."""
    stack = make_stack(batch_size=100, **FAST_REPAIR)
    sim = stack.sim.admin
    sim.set_faults(latency_ms=50, commands=["send-bulk-sms"])
    n = 6000 if SOAK else 2000
    stack.start_worker(beat=True, concurrency=3)
    started = time.monotonic()

    enqueue(stack, n)
    stack.wait_until(lambda: sum(stack.counts().get(s, 0) for s in SENT) >= 300, 60, "sending to start")
    sim.set_faults(credits_exhausted=True)
    _held_by(stack, "credits")
    time.sleep(2)  # several release rounds see no credits: nothing moves, nothing fails
    held = stack.counts().get("held", 0)
    assert held > 0 and stack.counts().get("failed", 0) == 0 and stack.counts().get("unknown", 0) == 0
    sim.set_faults(credits_exhausted=False)
    settle(stack, n)
    fig = verify(stack, "credits-exhausted", f"credits exhausted mid-run ({held} held), then topped up", n,
                 started)
    assert fig.sent_once == n

    # the key stops working while the lanes are idle (no send has failed yet): the balance check refuses it
    sim.set_faults(auth_failing=True)
    time.sleep(1.5)  # the cached balance is stale: the next batch asks get-sms-balance first
    enqueue(stack, 500, start=n)
    _held_by(stack, "authentication")
    sim.set_faults(auth_failing=False)
    settle(stack, n + 500)

    # ... and while a run is under way (a send is refused)
    total = 2 * n + 500
    enqueue(stack, n, start=n + 500)
    stack.wait_until(lambda: sum(stack.counts().get(s, 0) for s in SENT) >= n + 800, 60, "sending again")
    sim.set_faults(auth_failing=True)
    _held_by(stack, "authentication")
    time.sleep(2)  # the release task keeps trying the key and keeps them held
    held = stack.counts().get("held", 0)
    assert held > 0 and stack.counts().get("failed", 0) == 0 and stack.counts().get("unknown", 0) == 0
    assert set(hold_reasons(stack)) == {"authentication"}
    sim.set_faults(auth_failing=False)
    settle(stack, total)
    fig = verify(stack, "auth-failing", f"API key refused while idle (500 held) and mid-run ({held} held), "
                 "then accepted again", total, started)
    assert fig.sent_once == total
