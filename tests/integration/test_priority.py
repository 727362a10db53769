"""OTPs first (dispatcher.priority) on real Redis, and through the sender against the simulator: an OTP
pushed into its lane holds bulk calls back for a bounded time, its answer releases them, and a crashed
OTP worker's entries age out."""

from __future__ import annotations

import time

import pytest
from redis import Redis

from dispatcher import collector, sender
from dispatcher.observe import yield_key
from dispatcher.priority import OtpPriority
from dispatcher.queue import Lanes
from tests.fixtures.producer import NOON_IST, producer_env

from .pipeline_helpers import OTP, TXN, ledger, number, otp_text, txn_text


@pytest.fixture
def redis(redis_url):
    r = Redis.from_url(redis_url)
    yield r
    r.close()


def test_an_otp_push_marks_the_signal_and_its_answer_clears_it(redis, redis_prefix):
    lanes = Lanes(redis, redis_prefix)
    prio = OtpPriority(redis, redis_prefix, stale_ms=5000)
    lanes.push([("a1", "otp|SNDR|T1|0"), ("a2", "otp|SNDR|T1|0"), ("b1", "transactional|SNDR|T2|0")])
    assert prio.waiting() == 2  # the transactional message is not an OTP
    prio.done(["a1"])
    assert prio.waiting() == 1
    prio.done(["a2", "never-pushed"])
    assert prio.waiting() == 0


def test_entries_of_a_crashed_otp_worker_age_out(redis, redis_prefix):
    now = [1_000_000]
    prio = OtpPriority(redis, redis_prefix, stale_ms=5000, clock_ms=lambda: now[0])
    redis.zadd(prio.key, {"x": 1_000_000})
    assert prio.waiting() == 1
    now[0] += 5001
    assert prio.waiting() == 0 and redis.zcard(prio.key) == 0  # trimmed, not just ignored


def test_a_bulk_call_yields_while_otps_wait_but_never_longer_than_the_bound(redis, redis_prefix):
    prio = OtpPriority(redis, redis_prefix, stale_ms=5000)
    assert prio.yield_to_otp(1.0) == 0.0  # nothing waiting: no wait at all
    redis.zadd(prio.key, {"otp-1": int(time.time() * 1000)})
    t0 = time.monotonic()
    waited = prio.yield_to_otp(0.12)
    assert 0.12 <= waited < 0.5 and time.monotonic() - t0 < 0.5  # bounded although the OTP never ends

    steps = []

    def sleep(s: float) -> None:  # the OTP is answered after three looks
        steps.append(s)
        if len(steps) == 3:
            prio.done(["otp-1"])
        time.sleep(s)

    waited = prio.yield_to_otp(5.0, sleep=sleep)
    assert len(steps) == 3 and waited < 1.0
    assert prio.yield_to_otp(0.0) == 0.0  # 0 turns it off


@pytest.fixture
def env(database_url, redis_url, redis_prefix, simulator):
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST, otp_inline_send=False,
                      smspoint_base_url=simulator.base_url, smspoint_api_key=simulator.api_key,
                      otp_priority_yield_ms=300) as e:
        yield e


def test_the_sender_holds_a_bulk_call_for_a_waiting_otp_and_the_otp_call_releases_it(env, simulator):
    otp_id = env.d.send_sms(number(1), otp_text(1), **OTP)
    txn_id = env.d.send_sms(number(2), txn_text(2), **TXN)
    assert env.ctx.priority.waiting() == 1
    assert collector.collect(env.ctx, "otp").batches == 1
    t0 = time.monotonic()
    assert collector.collect(env.ctx, "transactional").batches == 1  # its claim waited for the OTP
    assert time.monotonic() - t0 >= 0.3
    otp_batch, txn_batch = (b[0] for b in env.pub.batches)

    t0 = time.monotonic()
    assert sender.send_batch(env.ctx, txn_batch).outcome == "sent"  # waited for the OTP, then sent anyway
    assert time.monotonic() - t0 >= 0.3
    held = env.ctx.redis.hgetall(yield_key(env.ctx.settings.redis_prefix))
    assert int(held[b"transactional|count"]) == 2 and float(held[b"transactional|sum"]) >= 0.6

    assert sender.send_batch(env.ctx, otp_batch).outcome == "sent"
    assert env.ctx.priority.waiting() == 0  # answered: bulk is no longer held back
    assert {e["number"][-10:] for e in ledger(simulator)} == {number(1)[-10:], number(2)[-10:]}
    assert env.d.get_status(otp_id).state == env.d.get_status(txn_id).state == "sent"
