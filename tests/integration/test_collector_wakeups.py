"""Collector wake-ups are coalesced by a kick flag; a wake-up that finds another collector running must
not be lost (real Redis and database; the publisher records instead of publishing)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from dispatcher import collector
from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.db import dispose_all, upgrade
from dispatcher.publish import RecordingPublisher
from dispatcher.settings import Settings

OTP = {"channel": "otp", "sender_id": "OTPSMS", "template_id": "1207161000000000004"}
NOON_IST = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


@pytest.fixture
def env(database_url, redis_url, redis_prefix):
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix)
    upgrade(database_url)
    pub = RecordingPublisher()
    ctx = Context(settings, publisher=pub, clock=lambda: NOON_IST)
    yield SimpleNamespace(ctx=ctx, d=Dispatcher(ctx), pub=pub)
    ctx.redis.close()
    dispose_all()


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
