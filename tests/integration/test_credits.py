"""CreditLedger on the real Redis: the reservation lifecycle, staleness, and atomicity across processes."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections.abc import Iterator

import pytest
import redis

from dispatcher.channels import PACKAGES
from dispatcher.credits import CreditLedger, ReserveResult

PKG = "Transactional"


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def ledger(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> Iterator[CreditLedger]:
    client = redis.Redis.from_url(redis_url, decode_responses=request.param)
    yield CreditLedger(client, redis_prefix)
    client.close()


def _counts(ledger: CreditLedger, package: str = PKG) -> tuple[int | float | None, ...]:
    s = ledger.snapshot()[package]
    return s["available"], s["inflight"], s["spent"], s["unknown"]


def test_reserve_is_unknown_before_any_balance(ledger: CreditLedger) -> None:
    """Without a fetched balance, reserve answers UNKNOWN and takes nothing."""
    assert ledger.reserve(PKG, 5) is ReserveResult.UNKNOWN
    assert ledger.available(PKG) is None
    assert ledger.age_s(PKG) is None
    assert _counts(ledger) == (None, 0, 0, 0)


def test_lifecycle_commit_release_settle(ledger: CreditLedger) -> None:
    """Reserve moves credits to inflight; commit, release and settle_unknown move them out as documented."""
    assert ledger.set_balance(PKG, 100) == 100
    assert ledger.reserve(PKG, 30) is ReserveResult.RESERVED
    assert _counts(ledger) == (70, 30, 0, 0)
    ledger.commit(PKG, 10)
    assert _counts(ledger) == (70, 20, 10, 0)
    ledger.release(PKG, 10)
    assert _counts(ledger) == (80, 10, 10, 0)
    ledger.settle_unknown(PKG, 10)
    assert _counts(ledger) == (80, 0, 10, 10)


def test_insufficient_takes_nothing(ledger: CreditLedger) -> None:
    """A reservation larger than available is refused and leaves every counter unchanged."""
    ledger.set_balance(PKG, 10)
    assert ledger.reserve(PKG, 11) is ReserveResult.INSUFFICIENT
    assert _counts(ledger) == (10, 0, 0, 0)
    assert ledger.reserve(PKG, 10) is ReserveResult.RESERVED
    assert ledger.reserve(PKG, 1) is ReserveResult.INSUFFICIENT
    assert _counts(ledger) == (0, 10, 0, 0)


def test_set_balance_subtracts_inflight(ledger: CreditLedger) -> None:
    """A refresh while calls are in flight sets available = gateway balance - inflight."""
    ledger.set_balance(PKG, 100)
    ledger.reserve(PKG, 40)
    assert ledger.set_balance(PKG, 90) == 50
    assert _counts(ledger) == (50, 40, 0, 0)
    ledger.release(PKG, 40)
    assert ledger.available(PKG) == 90


def test_stale_balance_is_unknown(ledger: CreditLedger) -> None:
    """A balance older than max_age_s makes reserve answer UNKNOWN; age_s grows on the Redis clock."""
    ledger.set_balance(PKG, 100)
    time.sleep(0.15)
    age = ledger.age_s(PKG)
    assert age is not None and 0.1 <= age < 5
    assert ledger.reserve(PKG, 1, max_age_s=0.05) is ReserveResult.UNKNOWN
    assert ledger.available(PKG) == 100
    assert ledger.reserve(PKG, 1, max_age_s=30) is ReserveResult.RESERVED
    ledger.set_balance(PKG, 100)
    assert ledger.reserve(PKG, 1, max_age_s=0.05) is ReserveResult.RESERVED


def test_double_release_does_not_inflate(ledger: CreditLedger) -> None:
    """Releasing more than is in flight credits back only what was in flight."""
    ledger.set_balance(PKG, 50)
    ledger.reserve(PKG, 20)
    ledger.release(PKG, 20)
    ledger.release(PKG, 20)
    assert _counts(ledger) == (50, 0, 0, 0)


def test_amounts_must_be_positive_ints(ledger: CreditLedger) -> None:
    """Zero, negative and non-integer amounts are refused before touching Redis."""
    ledger.set_balance(PKG, 50)
    for method in (ledger.reserve, ledger.commit, ledger.release, ledger.settle_unknown):
        with pytest.raises(ValueError):
            method(PKG, 0)
        with pytest.raises(ValueError):
            method(PKG, -3)
        with pytest.raises(TypeError):
            method(PKG, 1.5)  # type: ignore[arg-type]
    assert _counts(ledger) == (50, 0, 0, 0)


def test_snapshot_lists_known_and_extra_packages(ledger: CreditLedger) -> None:
    """snapshot() always lists the gateway's packages, plus any other package given a balance."""
    ledger.set_balance("OTP", 7)
    ledger.set_balance("Custom", 3)
    snap = ledger.snapshot()
    assert set(snap) == set(PACKAGES) | {"Custom"}
    assert snap["OTP"]["available"] == 7 and snap["Custom"]["available"] == 3
    assert snap["Promotional"] == {"available": None, "inflight": 0, "spent": 0, "unknown": 0, "age_s": None}
    age = snap["OTP"]["age_s"]
    assert age is not None and 0 <= age < 5


def _reserve_until_empty(url: str, prefix: str, seed: int, n: int) -> tuple[int, int]:
    """Child process: reserve random amounts until even 1 credit is refused; return (total, calls)."""
    client = redis.Redis.from_url(url)
    ledger = CreditLedger(client, prefix)
    rng = random.Random(seed)
    total = calls = 0
    client.incr(f"{prefix}:test:ready")  # start together once all n children are up
    while int(client.get(f"{prefix}:test:ready") or 0) < n:
        time.sleep(0.002)
    while True:
        amount = rng.choice((1, 1, 2, 3, 5, 8, 13))
        result = ledger.reserve(PKG, amount)
        calls += 1
        if result is ReserveResult.RESERVED:
            total += amount
        elif amount == 1:
            break
    client.close()
    return total, calls


def test_concurrent_reserve_never_over_reserves(redis_url: str, redis_prefix: str) -> None:
    """Four processes reserving at once take exactly the balance, never more."""
    client = redis.Redis.from_url(redis_url)
    ledger = CreditLedger(client, redis_prefix)
    balance = 20_000
    ledger.set_balance(PKG, balance)
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        jobs = [(redis_url, redis_prefix, seed, 4) for seed in range(4)]
        results = pool.starmap_async(_reserve_until_empty, jobs).get(timeout=60)
    reserved = sum(total for total, _ in results)
    assert all(calls > 100 for _, calls in results)  # every process really took part
    assert reserved == balance
    assert _counts(ledger) == (0, balance, 0, 0)
    client.close()
