"""`sending` is carried by the batch row (real database and Redis, the simulator over loopback): the
claimed messages are not rewritten when their batch goes `sending`, readers still see them `sending`, and
everything that acts on `sending` messages (the sweeper, the breaker, a late answer) acts on the batch."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatcher import collector, repair, sender, store
from dispatcher.db import reading, transaction
from dispatcher.models import BATCH, MESSAGE
from dispatcher.states import BatchState, HoldReason, State
from dispatcher.store import guards
from tests.fixtures.producer import NOON_IST, producer_env

from .pipeline_helpers import OTP, TXN, calls, ledger, number, otp_text


class Clock:
    def __init__(self) -> None:
        self.now = NOON_IST

    def __call__(self):
        return self.now


@pytest.fixture
def env(database_url, redis_url, redis_prefix, simulator):
    clock = Clock()
    with producer_env(database_url, redis_url, redis_prefix, clock=clock, otp_inline_send=False,
                      smspoint_base_url=simulator.base_url, smspoint_api_key=simulator.api_key,
                      connect_timeout=1.0, read_timeout=5.0, retry_max_attempts=3,
                      retry_max_elapsed_s=10.0, stale_sending_after_s=60.0) as e:
        e.clock = clock
        yield e


def _stored(ctx, ids) -> dict[str, tuple[str, object, object]]:
    with reading(ctx.engine) as conn:
        rows = conn.execute(select(MESSAGE.c.id, MESSAGE.c.state, MESSAGE.c.sending_at, MESSAGE.c.updated_at)
                            .where(MESSAGE.c.id.in_(ids)))
        return {r.id: (r.state, r.sending_at, r.updated_at) for r in rows}


def _batch(ctx, batch_id: str):
    with reading(ctx.engine) as conn:
        return conn.execute(select(BATCH).where(BATCH.c.id == batch_id)).one()


def _collect_one(env, lane: str) -> str:
    assert collector.collect(env.ctx, lane).batches == 1
    return env.pub.batches[-1][0]


def _to_sending(env, batch_id: str) -> None:
    """What the sender commits before its call (here without the call: a worker that dies right after)."""
    with transaction(env.ctx.engine) as conn:
        assert store.move_batch(conn, batch_id, BatchState.SENDING, env.clock(), credits=3)


def test_sending_is_one_batch_row_and_reads_as_sending(env):
    ids = [env.d.send_sms(f"99546543{i:02d}", f"Your OTP is {1000 + i}", **OTP) for i in range(3)]
    batch_id = _collect_one(env, "otp")
    claimed = _stored(env.ctx, ids)
    env.clock.now += timedelta(seconds=5)
    _to_sending(env, batch_id)

    assert _stored(env.ctx, ids) == claimed  # not one message row was written by `sending`
    status = env.d.get_status(ids[0])
    assert status.state == "sending" and status.sending_at is not None and status.attempts == 1
    assert status.sending_at.replace(tzinfo=None) == env.clock.now.replace(tzinfo=None)
    with reading(env.ctx.engine) as conn:
        counts = store.counts_by_state(conn)
    assert counts == {("sending", "otp"): 3}


def test_sweeper_turns_a_stale_sending_batch_and_its_messages_unknown(env):
    ids = [env.d.send_sms(f"99546543{i:02d}", f"Your OTP is {1000 + i}", **OTP) for i in range(3)]
    other = env.d.send_sms("9954654399", "Your OTP is 4242", **OTP)
    batch_id = _collect_one(env, "otp")
    _to_sending(env, batch_id)
    sending_at = env.clock.now

    env.clock.now += timedelta(seconds=30)  # not stale yet
    assert repair.sweep(env.ctx).unknown == 0
    assert env.d.get_status(ids[0]).state == "sending"

    env.clock.now += timedelta(seconds=31)
    assert repair.sweep(env.ctx).unknown == 4  # the batch holds all four (one group)
    assert _batch(env.ctx, batch_id).state == "unknown"
    for mid in [*ids, other]:
        st = env.d.get_status(mid)
        assert st.state == "unknown" and "worker stopped" in (st.last_error or "")
        assert st.sending_at.replace(tzinfo=None) == sending_at.replace(tzinfo=None)  # kept in the history
        assert any(h["state"] == "unknown" for h in st.history)
    assert repair.sweep(env.ctx).unknown == 0  # once


def test_breaker_holds_pending_batches_and_unclaimed_messages_never_one_in_flight(env):
    flying = [env.d.send_sms(f"99546543{i:02d}", f"Your code is {1000 + i}", **TXN) for i in range(2)]
    in_flight = _collect_one(env, "transactional")
    _to_sending(env, in_flight)
    waiting = [env.d.send_sms(f"99546544{i:02d}", f"Your code is {2000 + i}", **TXN) for i in range(2)]
    pending = _collect_one(env, "transactional")
    loose = env.d.send_sms("9954654500", "Your code is 3000", **TXN)  # enqueued, not batched

    with transaction(env.ctx.engine) as conn:
        held = guards.hold_group(conn, TXN["sender_id"], TXN["template_id"], env.clock(), "breaker: test")
    assert held == 3
    assert _batch(env.ctx, in_flight).state == "sending" and _batch(env.ctx, pending).state == "held"
    assert {env.d.get_status(m).state for m in flying} == {"sending"}
    for mid in [*waiting, loose]:
        st = env.d.get_status(mid)
        assert (st.state, st.hold_reason) == ("held", HoldReason.BREAKER.value)
    # the pending batch can no longer be sent
    assert sender.send_batch(env.ctx, pending).outcome == "skipped"


def test_an_answer_that_arrives_after_the_sweeper_is_recorded_over_unknown(env, simulator):
    """The sweeper judged the batch stale while its call was in the air (the promise that a live send
    cannot outlast ``stale_sending_after_s`` was broken); the gateway's answer is still the truth."""
    ids = [env.d.send_sms(number(i), otp_text(i), **OTP) for i in range(3)]
    batch_id = _collect_one(env, "otp")
    simulator.admin.set_faults(latency_ms=1500, commands=["send-bulk-sms"])
    out: dict[str, sender.SendOutcome] = {}
    worker = threading.Thread(target=lambda: out.setdefault("r", sender.send_batch(env.ctx, batch_id)))
    worker.start()
    deadline = time.monotonic() + 10
    while _batch(env.ctx, batch_id).state != "sending":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    env.clock.now += timedelta(seconds=61)
    assert repair.sweep(env.ctx).unknown == 3
    worker.join(timeout=20)
    assert not worker.is_alive()

    assert len(ledger(simulator)) == 3 and len(calls(simulator)) >= 1
    assert _batch(env.ctx, batch_id).state == "unknown"  # the batch keeps what was known at the time
    for mid in ids:
        st = env.d.get_status(mid)
        assert st.state == State.SENT.value and st.gateway_job_id and st.credits_charged == 1


def test_sent_is_recorded_exactly_whatever_the_gateway_message_ids_hold(env):
    """mark_sent sends its arrays as array literals on PostgreSQL: gateway message ids with quotes,
    backslashes, commas, braces, spaces, the word NULL or no id at all are stored exactly as answered,
    on SQLite and PostgreSQL alike."""
    odd = ['a"b', "c\\d", "e,f", "{g}", " h i ", "NULL", None, "ñ-é", ""]
    ids = [env.d.send_sms(f"99546543{i:02d}", f"Your OTP is {1000 + i}", **OTP) for i in range(len(odd))]
    batch_id = _collect_one(env, "otp")
    _to_sending(env, batch_id)
    rows = [{"id": mid, "gateway_message_id": gmid, "credits_charged": None if i == 2 else i}
            for i, (mid, gmid) in enumerate(zip(ids, odd, strict=True))]
    with transaction(env.ctx.engine) as conn:
        done = store.mark_sent(conn, rows, "job-1", env.clock(), batch_id=batch_id, sending_at=env.clock())
    assert done == len(odd)
    with reading(env.ctx.engine) as conn:
        got = {r.id: (r.state, r.gateway_message_id, r.credits_charged, r.gateway_job_id)
               for r in conn.execute(select(MESSAGE).where(MESSAGE.c.id.in_(ids)))}
    assert got == {r["id"]: ("sent", r["gateway_message_id"], r["credits_charged"], "job-1") for r in rows}


def test_id_lists_with_commas_still_match_exactly(env):
    """The id-list predicate sends a comma-joined text on PostgreSQL; a list holding a comma falls back
    to an array parameter, so no value is ever split into others."""
    ids = [env.d.send_sms(f"99546543{i:02d}", f"Your OTP is {1000 + i}", **OTP) for i in range(2)]
    with reading(env.ctx.engine) as conn:
        assert store.states_of(conn, [ids[0], f"{ids[0]},{ids[1]}"]) == {ids[0]: "queued"}
        assert store.states_of(conn, ids) == {ids[0]: "queued", ids[1]: "queued"}
