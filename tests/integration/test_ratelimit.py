"""RateLimiter on the real Redis: both budgets, oversize batches, timeouts, many processes sharing it."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections.abc import Iterator

import pytest
import redis

from dispatcher.ratelimit import RateLimiter
from dispatcher.settings import MAX_BATCH, Settings


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}")


def test_call_burst_then_wait(client: redis.Redis, redis_prefix: str) -> None:
    """A full bucket admits calls_per_s * burst_s calls; the next is told to wait about one interval."""
    rl = RateLimiter(client, redis_prefix, calls_per_s=10, parts_per_s=10_000, burst_s=1.0)
    assert [rl.try_acquire(1) for _ in range(10)] == [0.0] * 10
    wait = rl.try_acquire(1)
    assert 0.05 < wait <= 0.1
    assert rl.admitted() == {"calls": 10, "parts": 10}  # the refused call took nothing


def test_parts_budget_limits_on_its_own(client: redis.Redis, redis_prefix: str) -> None:
    """With plenty of calls, the parts budget alone decides, and the wait is the time to repay the excess."""
    rl = RateLimiter(client, redis_prefix, calls_per_s=1000, parts_per_s=100, burst_s=1.0)
    assert rl.try_acquire(60) == 0.0
    wait = rl.try_acquire(60)  # needs 0.2 s of refill: 60 + 60 - 100 parts at 100/s
    assert 0.15 < wait <= 0.2
    assert rl.admitted() == {"calls": 1, "parts": 60}


def test_bulk_batch_of_2000_x_3_parts_is_admitted(client: redis.Redis, redis_prefix: str) -> None:
    """A 2000-recipient x 3-part batch passes at the default limits and also when it exceeds the burst."""
    s = Settings()
    rl = RateLimiter(client, redis_prefix, calls_per_s=s.rate_limit_calls_per_s,
                     parts_per_s=s.rate_limit_parts_per_s)
    assert rl.try_acquire(MAX_BATCH * 3) == 0.0
    small = RateLimiter(client, redis_prefix, calls_per_s=50, parts_per_s=1000, name="small")
    assert small.acquire(MAX_BATCH * 3, timeout=0.0) == 0.0  # 6000 parts > 1000 capacity, bucket full
    wait = small.try_acquire(1)  # then its debt is repaid: 6 s of parts minus the 1 s burst
    assert 4.9 < wait <= 5.01


def test_oversize_request_waits_only_for_a_full_bucket(client: redis.Redis, redis_prefix: str) -> None:
    """An oversize request after a small one waits until the bucket is full again, not forever."""
    rl = RateLimiter(client, redis_prefix, calls_per_s=1000, parts_per_s=1000, burst_s=1.0)
    assert rl.try_acquire(500) == 0.0
    wait = rl.try_acquire(6000)
    assert 0.45 < wait <= 0.5
    time.sleep(wait)
    assert rl.try_acquire(6000) == 0.0
    assert rl.admitted() == {"calls": 2, "parts": 6500}


def test_acquire_sleeps_the_reported_wait(client: redis.Redis, redis_prefix: str) -> None:
    """acquire() sleeps what Redis reports and returns the total; the injected sleep is used."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    rl = RateLimiter(client, redis_prefix, calls_per_s=20, parts_per_s=1000, burst_s=0.05, sleep=sleep)
    assert rl.acquire(1) == 0.0
    waited = rl.acquire(1)
    assert slept and waited == pytest.approx(sum(slept))
    assert 0.02 < waited < 0.2
    assert rl.admitted()["calls"] == 2


def test_acquire_timeout_raises_at_once_and_takes_nothing(client: redis.Redis, redis_prefix: str) -> None:
    """When the wait exceeds the timeout, acquire raises TimeoutError without sleeping or consuming."""
    rl = RateLimiter(client, redis_prefix, calls_per_s=1, parts_per_s=1000, burst_s=1.0, sleep=_never_sleep)
    rl.acquire(1)
    with pytest.raises(TimeoutError):
        rl.acquire(1, timeout=0.5)
    assert rl.admitted() == {"calls": 1, "parts": 1}


def test_invalid_arguments_are_refused(client: redis.Redis, redis_prefix: str) -> None:
    """Non-positive rates or burst, and negative parts, raise ValueError."""
    for kw in ({"calls_per_s": 0, "parts_per_s": 1}, {"calls_per_s": 1, "parts_per_s": -1},
               {"calls_per_s": 1, "parts_per_s": 1, "burst_s": 0}):
        with pytest.raises(ValueError):
            RateLimiter(client, redis_prefix, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RateLimiter(client, redis_prefix, calls_per_s=1, parts_per_s=1).try_acquire(-1)


CALLS, PARTS, BURST = 100.0, 250.0, 0.5


def _start_together(client: redis.Redis, prefix: str, n: int) -> None:
    """Wait until all n child processes have started (each counts itself in Redis)."""
    client.incr(f"{prefix}:test:ready")
    while int(client.get(f"{prefix}:test:ready") or 0) < n:
        time.sleep(0.002)


def _hammer(url: str, prefix: str, seed: int, n: int, run_s: float) -> list[tuple[float, float, int]]:
    """Child process: try to take 1-4 parts as fast as allowed; per admission (sent, answered, parts)."""
    client = redis.Redis.from_url(url)
    rl = RateLimiter(client, prefix, calls_per_s=CALLS, parts_per_s=PARTS, burst_s=BURST)
    rng = random.Random(seed)
    got: list[tuple[float, float, int]] = []
    _start_together(client, prefix, n)
    stop_at = time.time() + run_s
    parts = rng.randint(1, 4)
    while time.time() < stop_at:
        sent = time.time()
        wait = rl.try_acquire(parts)
        if wait == 0.0:
            got.append((sent, time.time(), parts))
            parts = rng.randint(1, 4)
        else:
            time.sleep(min(wait, 0.003))
    client.close()
    return got


def test_processes_share_both_limits(client: redis.Redis, redis_url: str, redis_prefix: str) -> None:
    """Four processes hammering for 2 s stay within rate * time + burst for calls and for parts."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        runs = pool.starmap_async(_hammer, [(redis_url, redis_prefix, seed, 4, 2.0)
                                            for seed in range(4)]).get(timeout=60)
    events = [e for run in runs for e in run]
    assert all(len(run) > 10 for run in runs)  # every process really took part
    # Redis admitted each request between `sent` and `answered` (same host clock as Redis TIME), so this
    # span is at least the true span between the first and last admission.
    span = max(answered for _, answered, _ in events) - min(sent for sent, _, _ in events)
    calls, parts = len(events), sum(p for _, _, p in events)
    assert RateLimiter(client, redis_prefix, calls_per_s=CALLS, parts_per_s=PARTS).admitted() == {
        "calls": calls, "parts": parts}
    # GCRA bound over any window: rate * span + a full bucket (+ 1 for clock granularity).
    assert calls <= CALLS * span + CALLS * BURST + 1, (calls, span)
    assert parts <= PARTS * span + PARTS * BURST + 1, (parts, span)
    # and the limiter is not merely refusing: the binding budget is mostly used
    used = max(calls / (CALLS * span + CALLS * BURST), parts / (PARTS * span + PARTS * BURST))
    assert used > 0.7, (calls, parts, span)
