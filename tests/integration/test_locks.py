"""Lease against the real Redis: one holder at a time, expiry, owner-only extend and release."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from dispatcher.locks import Lease


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


@pytest.fixture
def key(redis_prefix: str) -> str:
    return f"{redis_prefix}:lock:collector:otp"


def test_second_holder_is_refused_until_release(client: redis.Redis, key: str) -> None:
    """While one lease holds the key another cannot take it; after release it can."""
    a, b = Lease(client, key, ttl_s=5), Lease(client, key, ttl_s=5)
    assert a.acquire() and a.owned()
    assert not b.acquire() and not b.owned()
    assert a.release()
    assert b.acquire() and b.owned()
    assert not a.owned()


def test_release_by_non_owner_is_refused(client: redis.Redis, key: str) -> None:
    """A lease that does not hold the key cannot release it, and the holder keeps it."""
    a, b = Lease(client, key, ttl_s=5), Lease(client, key, ttl_s=5)
    assert a.acquire()
    assert not b.release()
    assert not b.acquire()
    assert not b.release()
    assert not b.extend()
    assert a.owned() and client.exists(key)


def test_expiry_frees_it_and_the_old_holder_loses_it(client: redis.Redis, key: str) -> None:
    """After the TTL the key is free; the expired holder can neither extend nor release the new lease."""
    a, b = Lease(client, key, ttl_s=0.2), Lease(client, key, ttl_s=5)
    assert a.acquire()
    assert not b.acquire()
    time.sleep(0.3)
    assert b.acquire()
    assert not a.extend()
    assert not a.release()
    assert b.owned()


def test_extend_keeps_it_past_the_first_ttl(client: redis.Redis, key: str) -> None:
    """extend() resets the TTL of a lease still held, so it outlives its first TTL."""
    a = Lease(client, key, ttl_s=0.3)
    assert a.acquire()
    assert a.extend(2.0)
    assert client.pttl(key) > 1500
    time.sleep(0.4)
    assert a.owned()
    assert a.acquire()  # already ours: renews rather than failing
    assert client.pttl(key) <= 300


def test_blocking_acquire_waits_for_release_or_times_out(client: redis.Redis, key: str) -> None:
    """A blocking acquire gets the lease once it is released, and gives up after its timeout otherwise."""
    a, b = Lease(client, key, ttl_s=5), Lease(client, key, ttl_s=5)
    assert a.acquire()
    t0 = time.monotonic()
    assert not b.acquire(blocking=True, timeout=0.2)
    assert 0.18 <= time.monotonic() - t0 < 1.0
    timer = threading.Timer(0.2, a.release)
    timer.start()
    t0 = time.monotonic()
    assert b.acquire(blocking=True, timeout=3)
    assert 0.15 <= time.monotonic() - t0 < 2.0
    timer.join()


def test_held_yields_whether_taken_and_releases(client: redis.Redis, key: str) -> None:
    """held() yields True and frees on exit; a second held() yields False and leaves the holder's lease."""
    a, b = Lease(client, key, ttl_s=5), Lease(client, key, ttl_s=5)
    with a.held() as got_a:
        assert got_a
        with b.held() as got_b:
            assert not got_b
        assert a.owned()
    assert not client.exists(key)
    with pytest.raises(RuntimeError), a.held() as got:
        assert got
        raise RuntimeError("work failed")
    assert not client.exists(key)  # released even when the work raised


def test_ttl_must_be_positive(client: redis.Redis, key: str) -> None:
    """A zero or negative TTL is refused."""
    with pytest.raises(ValueError):
        Lease(client, key, ttl_s=0)
    a = Lease(client, key, ttl_s=1)
    assert a.acquire()
    with pytest.raises(ValueError):
        a.extend(-1)


def test_many_contenders_never_hold_together(redis_url: str, key: str) -> None:
    """Eight threads with their own clients contending for 1.5 s never hold the lease at the same time."""
    holders = 0
    max_holders = 0
    acquisitions = 0
    failed_releases = 0
    guard = threading.Lock()
    stop_at = time.monotonic() + 1.5

    def contend() -> None:
        nonlocal holders, max_holders, acquisitions, failed_releases
        r = redis.Redis.from_url(redis_url)
        lease = Lease(r, key, ttl_s=2)
        while time.monotonic() < stop_at:
            if lease.acquire(blocking=True, timeout=0.05):
                with guard:
                    holders += 1
                    acquisitions += 1
                    max_holders = max(max_holders, holders)
                time.sleep(0.001)
                with guard:
                    holders -= 1
                    failed_releases += not lease.release()
        r.close()

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_holders == 1
    assert acquisitions > 20, acquisitions
    assert failed_releases == 0
