"""Redis faults on a private redis-server: a crash and restart (AOF, fsync always) with producers enqueuing
while it is down, then FLUSHALL (every lane, Celery queue, lease and credit counter gone) mid-run."""

from __future__ import annotations

import time

import pytest

from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.errors import QueueUnavailable

from ..integration.pipeline_helpers import TXN, number, txn_text
from .common import FAST_REPAIR, SENT, enqueue, settle, verify
from .conftest import SOAK


def _some_sent(stack, at_least: int) -> None:
    stack.wait_until(lambda: sum(stack.counts().get(s, 0) for s in SENT) >= at_least, 60,
                     f"{at_least} messages sent")


def test_redis_restart_and_flushall_lose_nothing_and_double_nothing(make_stack, private_redis):
    """Redis crash (AOF) and FLUSHALL mid-run: the sweeper repairs the lanes; all sent once."""
    stack = make_stack(batch_size=100, **FAST_REPAIR)
    stack.sim.admin.set_faults(latency_ms=100, commands=["send-bulk-sms"])
    n = 6000 if SOAK else 2000
    rounds = 3 if SOAK else 1
    stack.ctx.catalog.refresh(stack.ctx.client)  # enqueue checks texts against the DLT templates
    stack.start_worker(beat=True, concurrency=3)
    started = time.monotonic()
    total = 0

    # --- crash and restart, with a bulk request accepted while Redis is down
    for _ in range(rounds):
        enqueue(stack, n, start=total)
        total += n
        _some_sent(stack, total - n + 200)
        private_redis.kill()
        stack.ctx.catalog.invalidate_local()  # as after 30 s: the producer must read the catalogue again
        enqueue(stack, 500, start=total)  # checked against its last copy, committed; the sweeper pushes it
        total += 500
        with pytest.raises(QueueUnavailable):
            stack.ctx.lanes.push([("x", "transactional|SMSPNT|1|0")])
        fresh = Dispatcher(Context(stack.settings))  # a producer that never saw the catalogue
        before = sum(stack.counts().values())
        with pytest.raises(QueueUnavailable):  # refused, typed, nothing written
            fresh.send_sms(number(10**6), txn_text(10**6), **TXN)
        assert sum(stack.counts().values()) == before
        time.sleep(3)
        private_redis.start()
    settle(stack, total)
    verify(stack, "redis-restart", f"{rounds} Redis crash(es) + AOF restart, 3 s down, "
           f"{500 * rounds} messages accepted while down", total, started)

    # --- Redis loses everything mid-run (lanes, Celery queues and unacked messages, credits, leases)
    flushes = 3 if SOAK else 2
    enqueue(stack, n, start=total)
    total += n
    epoch = f"{stack.settings.redis_prefix}:epoch"  # the sweeper sets it again when it notices the loss
    for i in range(flushes):
        _some_sent(stack, total - n + 300 * (i + 1))
        private_redis.flushall()
        stack.wait_until(lambda: bool(stack.ctx.redis.exists(epoch)), 30, "the sweeper to notice the flush")
    settle(stack, total)
    verify(stack, "redis-flushall", f"{flushes} FLUSHALLs mid-run", total, started)
