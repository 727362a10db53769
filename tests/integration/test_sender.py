"""The sender against the simulator, a real database and real Redis (in process, no Celery): a batch whose
rows left `sending` while its call was being retried is not sent by a later attempt, and settings refuse
a stale-`sending` limit that a live send with all its retries could outlast."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from dispatcher import collector, sender, store
from dispatcher.db import reading, transaction
from dispatcher.errors import StorageUnavailable
from dispatcher.models import BATCH, MESSAGE
from dispatcher.settings import Settings
from dispatcher.states import BatchState, State
from tests.fixtures.producer import NOON_IST, producer_env

from .pipeline_helpers import OTP, calls, ledger, number, otp_text


@pytest.fixture
def env(database_url, redis_url, redis_prefix, simulator):
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST, otp_inline_send=False,
                      smspoint_base_url=simulator.base_url, smspoint_api_key=simulator.api_key,
                      connect_timeout=1.0, read_timeout=2.0, retry_max_attempts=5,
                      retry_max_elapsed_s=30.0) as e:
        yield e


def _states(ctx) -> dict[str, str]:
    with reading(ctx.engine) as conn:
        return {r.id: r.state for r in conn.execute(select(MESSAGE.c.id, MESSAGE.c.state))}


def _batch_state(ctx, batch_id: str) -> str:
    with reading(ctx.engine) as conn:
        return conn.execute(select(BATCH.c.state).where(BATCH.c.id == batch_id)).scalar_one()


def test_a_batch_taken_from_sending_during_a_retry_is_not_sent_by_the_next_attempt(env, simulator):
    """The gateway answers 429 (provably unsent) and the worker waits to retry; meanwhile the batch is
    moved to unknown with its messages, as the sweeper does with a `sending` batch it judges stale. The
    next attempt would succeed, but the worker must not make it: nothing reaches the gateway, the
    messages stay unknown and the reservation is released."""
    ids = [env.d.send_sms(f"99546543{i:02d}", f"Your OTP is {1000 + i}", **OTP) for i in range(3)]
    assert collector.collect(env.ctx, "otp").batches == 1
    (batch_id,) = [b[0] for b in env.pub.batches]
    simulator.admin.set_faults(rate_429=1.0, retry_after_s=1.5, commands=["send-bulk-sms"])

    out: dict[str, sender.SendOutcome] = {}
    worker = threading.Thread(target=lambda: out.setdefault("r", sender.send_batch(env.ctx, batch_id)))
    worker.start()
    deadline = time.monotonic() + 10
    while not any(c.get("fault") == "429" for c in calls(simulator)):  # the first attempt was refused
        assert time.monotonic() < deadline, f"no 429 was answered; batch is {_batch_state(env.ctx, batch_id)}"
        time.sleep(0.02)
    # now inside the 1.5 s Retry-After wait before the second attempt; the messages read as `sending`
    assert env.d.get_status(ids[0]).state == "sending"
    with transaction(env.ctx.engine) as conn:
        now = env.ctx.clock()
        assert store.move_batch(conn, batch_id, BatchState.UNKNOWN, now, frm=BatchState.SENDING)
        assert sorted(store.move_batch_messages(conn, batch_id, State.UNKNOWN, now, frm=State.QUEUED)) \
            == sorted(ids)
    simulator.admin.clear_faults()  # the next attempt would be accepted
    worker.join(timeout=20)
    assert not worker.is_alive()

    assert out["r"].outcome == "skipped" and "left 'sending'" in out["r"].detail, out["r"]
    assert ledger(simulator) == []
    assert _states(env.ctx) == dict.fromkeys(ids, "unknown")
    credits = env.ctx.ledger.snapshot()["OTP"]
    assert credits["inflight"] == 0 and credits["spent"] == 0  # the reservation was released


def test_settings_refuse_a_stale_limit_a_live_send_could_outlast():
    with pytest.raises(ValidationError, match=r"stale_sending_after_s \(20 s\).*= 25 s"):
        Settings(stale_sending_after_s=20, retry_max_elapsed_s=10, connect_timeout=5, read_timeout=10)
    ok = Settings(stale_sending_after_s=26, retry_max_elapsed_s=10, connect_timeout=5, read_timeout=10)
    assert ok.longest_send_s == 25


def _one_otp_batch(env) -> tuple[list[str], str]:
    ids = [env.d.send_sms(number(700 + i), otp_text(700 + i), **OTP) for i in range(3)]
    assert collector.collect(env.ctx, "otp").batches == 1
    (batch_id,) = [b[0] for b in env.pub.batches]
    return ids, batch_id


def _lost_commit(monkeypatch, *, committed: bool) -> list[int]:
    """The sender's first transaction fails as a cut connection does: after the database committed it
    (its answer lost on the way back) or before (rolled back). Returns the count of transactions begun."""
    real = sender.transaction
    begun: list[int] = []

    @contextlib.contextmanager
    def flaky(engine):
        begun.append(1)
        first = len(begun) == 1
        with real(engine) as conn:
            yield conn
            if first and not committed:
                raise StorageUnavailable("database unavailable: connection cut before the commit")
        if first:
            raise StorageUnavailable("database unavailable: connection cut after the commit")

    monkeypatch.setattr(sender, "transaction", flaky)
    return begun


@pytest.mark.parametrize("committed", [True, False], ids=["commit-answer-lost", "commit-never-made"])
def test_a_sending_commit_that_fails_makes_no_call_and_leaves_the_batch_to_be_sent_once(
        env, simulator, monkeypatch, committed):
    """The connection is cut around the commit of `sending`: the worker cannot tell whether it happened,
    but it knows it made no call. The batch is `pending` afterwards either way (undone if the commit had
    happened), nothing reached the gateway, no credit stays reserved, and the next attempt sends every
    message once: none ends `unknown`."""
    ids, batch_id = _one_otp_batch(env)
    begun = _lost_commit(monkeypatch, committed=committed)
    with pytest.raises(StorageUnavailable):
        sender.send_batch(env.ctx, batch_id)
    # the failed `sending` commit, then the undo (which finds nothing to undo if the commit was never made)
    assert len(begun) == 2
    assert _batch_state(env.ctx, batch_id) == "pending"
    assert ledger(simulator) == []
    assert env.ctx.ledger.snapshot()["OTP"]["inflight"] == 0
    assert {env.d.get_status(i).state for i in ids} == {"queued"}

    out = sender.send_batch(env.ctx, batch_id)  # the task's retry
    assert out.outcome == "sent" and out.sent == 3, out
    assert sorted(e["text"] for e in ledger(simulator)) == sorted(otp_text(700 + i) for i in range(3))
    assert _states(env.ctx) == dict.fromkeys(ids, "sent")
    assert sender.send_batch(env.ctx, batch_id).outcome == "skipped"  # a redelivery sends nothing


def test_a_database_lost_before_a_retry_puts_the_unsent_batch_back_to_pending(env, simulator, monkeypatch):
    """The gateway refuses the first call with 429 (provably unsent); while the worker waits to retry, the
    database goes away, so it cannot check that its batch is still `sending`. It makes no further call and,
    once the database answers again, puts the batch back to `pending`: sent once later, never `unknown`."""
    ids, batch_id = _one_otp_batch(env)
    simulator.admin.set_faults(rate_429=1.0, retry_after_s=1.0, commands=["send-bulk-sms"])
    real = sender.reading
    down = threading.Event()

    @contextlib.contextmanager
    def failing(engine):
        if down.is_set():
            down.clear()  # one failed read: the database is back for the undo
            raise StorageUnavailable("database unavailable: connection refused")
        with real(engine) as conn:
            yield conn

    monkeypatch.setattr(sender, "reading", failing)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sender.send_batch(env.ctx, batch_id)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not any(c.get("fault") == "429" for c in calls(simulator)):
        assert time.monotonic() < deadline, "no 429 was answered"
        time.sleep(0.02)
    down.set()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert [type(e) for e in errors] == [StorageUnavailable]
    assert _batch_state(env.ctx, batch_id) == "pending"
    assert ledger(simulator) == []
    assert env.ctx.ledger.snapshot()["OTP"]["inflight"] == 0

    simulator.admin.clear_faults()
    assert sender.send_batch(env.ctx, batch_id).outcome == "sent"
    assert len(ledger(simulator)) == 3
    assert _states(env.ctx) == dict.fromkeys(ids, "sent")
