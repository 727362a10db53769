"""The collector against real Redis and a real database (the publisher records instead of publishing):
wake-ups are coalesced by a kick flag and none is lost; the OTP lane's collector makes its calls itself."""

from __future__ import annotations

import threading

import pytest

from dispatcher import collector, sender
from dispatcher.db import transaction
from dispatcher.errors import StorageUnavailable
from tests.fixtures.producer import NOON_IST, producer_env

OTP = {"channel": "otp", "sender_id": "OTPSMS", "template_id": "1207161000000000004"}


@pytest.fixture
def env(request, database_url, redis_url, redis_prefix):
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST,
                      otp_inline_send=getattr(request, "param", True)) as e:
        yield e


@pytest.mark.parametrize("env", [False], indirect=True, ids=["task"])  # no gateway here: hand batches over
def test_a_wake_up_that_found_the_collector_busy_is_published_again_when_it_ends(env, monkeypatch):
    """While collector C1 runs, a producer pushes E1 and sets the kick flag; the run it publishes finds
    the lease taken and returns. C1 still reads E1, so nothing is unread when it ends, but the flag
    stands: without a new run, every later push (E2) would wait for the flag to expire."""
    ctx, lanes = env.ctx, env.ctx.lanes
    real_read = lanes.read
    seen: dict[str, object] = {}

    def read(lane, consumer, count, block_ms):
        if "busy" not in seen:
            env.d.send_sms("9954654365", "Your OTP is 1111", **OTP)  # E1: flag set, a run published
            seen["busy"] = collector.collect(ctx, "otp").busy  # that run: the lease is ours
        return real_read(lane, consumer, count, block_ms)

    monkeypatch.setattr(lanes, "read", read)
    result = collector.collect(ctx, "otp")
    monkeypatch.undo()

    assert seen["busy"] is True and result.messages == 1
    assert lanes.unread("otp") == 0 and lanes.kick_requested("otp")
    # E1's run, then the one C1 published on its way out because the flag still stood
    assert env.pub.collects == ["otp", "otp"]
    env.d.send_sms("9954654366", "Your OTP is 2222", **OTP)  # E2: the flag stands, no publish of its own
    assert env.pub.collects == ["otp", "otp"]
    again = collector.collect(ctx, "otp")  # the run C1 published reads E2
    assert again.messages == 1 and not lanes.kick_requested("otp")


@pytest.mark.parametrize("env", [True, False], indirect=True, ids=["inline", "task"])
def test_the_otp_collector_sends_its_batch_itself_unless_told_not_to(env, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(sender, "send_batch", lambda ctx, batch_id: calls.append(batch_id))
    env.d.send_sms("9954654365", "Your OTP is 1111", **OTP)
    result = collector.collect(env.ctx, "otp")
    assert result.batches == 1
    if env.ctx.settings.otp_inline_send:
        assert len(calls) == 1 and env.pub.batches == []
    else:
        assert calls == [] and [b[0] for b in env.pub.batches] == [_batch_ids(env.ctx)[0]]


def test_a_failed_inline_send_hands_the_committed_batch_to_a_send_task(env, monkeypatch):
    def down(ctx, batch_id):
        raise StorageUnavailable("database unavailable: OperationalError")

    monkeypatch.setattr(sender, "send_batch", down)
    env.d.send_sms("9954654365", "Your OTP is 1111", **OTP)
    result = collector.collect(env.ctx, "otp")
    (batch_id,) = _batch_ids(env.ctx)
    assert result.batches == 1 and [b[0] for b in env.pub.batches] == [batch_id]
    assert env.ctx.lanes.unread("otp") == 0  # the entry was acknowledged: the batch row holds the id


@pytest.mark.parametrize("threads", [1, 2])
def test_an_otp_that_arrives_during_a_call_goes_out_without_waiting_for_it(database_url, redis_url,
                                                                         redis_prefix, monkeypatch, threads):
    """The first call is still in flight when the second OTP arrives: with two threads the collector
    batches it and a second call starts before the first ends; with one, it waits for the first."""
    first: list[str] = []
    second_started = threading.Event()
    overlapped: list[bool] = []

    def send_batch(ctx, batch_id):
        if first:
            second_started.set()
            return
        first.append(batch_id)
        env.d.send_sms("9954654366", "Your OTP is 2222", **OTP)  # arrives while this call is in flight
        overlapped.append(second_started.wait(timeout=1.5))

    monkeypatch.setattr(sender, "send_batch", send_batch)
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST,
                      otp_inline_threads=threads) as env:
        env.d.send_sms("9954654365", "Your OTP is 1111", **OTP)
        result = collector.collect(env.ctx, "otp", max_run_s=3.0)
        assert result.batches == 2 and result.messages == 2
        assert second_started.is_set()  # the second batch was sent in every case
        assert overlapped == [threads > 1]


def _batch_ids(ctx) -> list[str]:
    from dispatcher.models import BATCH

    with transaction(ctx.engine) as conn:
        return [r[0] for r in conn.execute(BATCH.select().with_only_columns(BATCH.c.id))]
