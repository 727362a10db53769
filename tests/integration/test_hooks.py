"""Hooks on real parts: a signed webhook to a real local HTTP server and a Python callable, each called once
per message that reached a final state, retried with backoff when failing, never blocking the sync."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from dispatcher import hooks
from dispatcher.context import Context
from dispatcher.db import transaction
from dispatcher.models import JOB
from dispatcher.simulator import MAGIC_INVALID, MAGIC_UNDELIVERED

from .pipeline_helpers import TXN, number, txn_text
from .sync_helpers import make_rig

SECRET = "webhook-test-secret"
HOOK_LOG_ENV = "SMSPOINT_TEST_HOOK_LOG"
_log_lock = threading.Lock()


def record_hook(payload: dict[str, Any]) -> None:
    """The HOOK_CALLABLE of these tests: appends each payload to the file named by $SMSPOINT_TEST_HOOK_LOG."""
    with _log_lock, open(os.environ[HOOK_LOG_ENV], "a") as fh:
        fh.write(json.dumps(payload) + "\n")




@pytest.fixture
def hook_log(tmp_path, monkeypatch) -> Any:  # type: ignore[no-untyped-def]
    path = tmp_path / "hook-calls.jsonl"
    monkeypatch.setenv(HOOK_LOG_ENV, str(path))

    def calls() -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return calls


def test_webhook_gets_one_signed_body_per_message_even_when_runs_repeat(make_stack, receiver):
    """Each final message is POSTed once, signed with the secret, however often sync and hooks run again."""
    rig = make_rig(make_stack, webhook_url=receiver.url, webhook_secret=SECRET)
    ids = rig.send([(number(i), txn_text(i)) for i in range(3)] + [(MAGIC_UNDELIVERED, txn_text(9))])
    rig.advance(seconds=30)
    assert rig.sync().outboxed == 4
    with transaction(rig.ctx.engine) as conn:  # the sync is retried: the (closed) job is polled again
        conn.execute(update(JOB).values(open=True, next_poll_at=rig.clock.now))
    again = rig.sync()
    assert (again.calls, again.stale, again.outboxed) == (1, 4, 0)
    for _ in range(3):
        hooks.deliver_due(rig.ctx)
        rig.advance(minutes=5)
    assert sorted(h["x-smspoint-message-id"] for h, _ in receiver.posts) == sorted(ids)
    states = {mid: row["state"] for mid, row in rig.messages(ids).items()}
    for headers, body in receiver.posts:
        assert hooks.verify(SECRET, body, headers["x-smspoint-signature"])
        assert not hooks.verify("another-secret", body, headers["x-smspoint-signature"])
        assert headers["content-type"] == "application/json"
        doc = json.loads(body)
        assert doc["state"] == states[doc["message_id"]] and doc["event"] == "message.final"
        assert doc["number"] == rig.messages([doc["message_id"]])[doc["message_id"]]["number"]
        assert rig.sim.api_key.encode() not in body
    assert Counter(d["state"] for d in receiver.bodies()) == {"delivered": 3, "undelivered": 1}
    rows = rig.hook_rows()
    assert all(r["done"] and r["attempts"] == 1 and r["last_error"] is None for r in rows.values())


def test_failing_webhook_is_retried_with_backoff_and_does_not_block_the_sync(make_stack, receiver):
    """A webhook answering 500 twice is retried after 10 s and 20 s; the sync records every state anyway."""
    rig = make_rig(make_stack, webhook_url=receiver.url, webhook_secret=SECRET)
    ids = rig.send([(number(i), txn_text(i)) for i in range(2)])
    receiver.plan = {mid: [500, 500] for mid in ids}
    rig.advance(seconds=30)
    assert rig.sync().finals == {"delivered": 2}  # states are recorded before any hook is tried
    t = rig.clock.now
    assert hooks.deliver_due(rig.ctx).retried == 2
    rows = rig.hook_rows()
    assert {(r["attempts"], r["next_attempt_at"] - t, r["last_error"]) for r in rows.values()} == {
        (1, timedelta(seconds=10), "webhook: HTTP 500")}
    assert hooks.deliver_due(rig.ctx).retried == 0 and len(receiver.posts) == 2  # not due yet
    rig.advance(seconds=10)
    assert hooks.deliver_due(rig.ctx).retried == 2
    assert {r["next_attempt_at"] - rig.clock.now for r in rig.hook_rows().values()} == {timedelta(seconds=20)}
    rig.advance(seconds=20)
    assert hooks.deliver_due(rig.ctx).delivered == 2
    assert Counter(h["x-smspoint-message-id"] for h, _ in receiver.posts) == dict.fromkeys(ids, 3)
    assert {h["x-smspoint-attempt"] for h, _ in receiver.posts} == {"1", "2", "3"}
    per_message = {mid: {b for h, b in receiver.posts if h["x-smspoint-message-id"] == mid} for mid in ids}
    assert all(len(bodies) == 1 for bodies in per_message.values())  # the same body on every attempt
    assert all(r["done"] and r["last_error"] is None for r in rig.hook_rows().values())


def test_unreachable_webhook_never_stops_sync_and_is_given_up_after_max_attempts(make_stack, receiver,
                                                                                 monkeypatch):
    """With the receiver gone, syncs still finish jobs; hooks fail quietly and are given up after N tries."""
    monkeypatch.setattr(hooks, "MAX_ATTEMPTS", 3)
    url = receiver.url
    receiver.close()  # connection refused from now on
    rig = make_rig(make_stack, webhook_url=url, webhook_secret=SECRET)
    ids = rig.send([(number(i), txn_text(i)) for i in range(3)])
    rig.advance(seconds=30)
    for attempt in range(1, 4):
        assert rig.sync().calls == (1 if attempt == 1 else 0)
        result = hooks.deliver_due(rig.ctx)
        assert (result.retried, result.gave_up) == ((3, 0) if attempt < 3 else (0, 3))
        rig.advance(minutes=1)
    assert rig.states(ids) == ["delivered"] * 3 and not any(j["open"] for j in rig.jobs().values())
    rows = rig.hook_rows().values()
    assert all(r["done"] and r["attempts"] == 3 and r["last_error"].startswith("gave up: webhook: Connection")
               for r in rows)
    assert hooks.deliver_due(rig.ctx).retried == 0


def test_python_callable_hook_is_called_exactly_once_per_message(make_stack, hook_log):
    """The callable gets each final message once (sender failures too), even with two runs racing."""
    rig = make_rig(make_stack, hook_callable=f"{__name__}:record_hook")
    ids = rig.send([(number(i), txn_text(i)) for i in range(40)] + [(MAGIC_INVALID, txn_text(99))])
    rig.advance(seconds=30)
    assert rig.sync().outboxed == 41
    start = threading.Barrier(2)

    def run() -> None:
        ctx = Context(rig.ctx.settings, clock=rig.clock)
        start.wait()
        for _ in range(3):
            hooks.deliver_due(ctx, limit=7)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    hooks.deliver_due(rig.ctx)
    calls = hook_log()
    assert Counter(c["message_id"] for c in calls) == dict.fromkeys(ids, 1)
    by_id = {c["message_id"]: c for c in calls}
    assert by_id[ids[-1]]["state"] == "failed" and by_id[ids[-1]]["reason"]
    assert {by_id[mid]["state"] for mid in ids[:-1]} == {"delivered"}
    assert by_id[ids[0]]["number"] == number(0) and by_id[ids[0]]["channel"] == TXN["channel"]


def test_each_target_gets_a_message_once_when_only_one_of_them_fails(make_stack, receiver, hook_log):
    """With a callable and a webhook, a webhook retry does not call the callable a second time."""
    rig = make_rig(make_stack, hook_callable=f"{__name__}:record_hook", webhook_url=receiver.url,
                   webhook_secret=SECRET)
    (mid,) = rig.send([(number(1), txn_text(1))])
    receiver.plan = {mid: [503]}
    rig.advance(seconds=30)
    rig.sync()
    assert hooks.deliver_due(rig.ctx).retried == 1
    assert rig.hook_rows()[mid]["delivered_to"] == "callable"
    rig.advance(seconds=10)
    assert hooks.deliver_due(rig.ctx).delivered == 1
    assert [c["message_id"] for c in hook_log()] == [mid] and len(receiver.posts) == 2
    assert rig.hook_rows()[mid]["delivered_to"] == "callable,webhook"


def test_beat_runs_sync_and_hooks_in_a_real_worker(make_stack, receiver):
    """A real worker with beat: sends, syncs reports and POSTs one signed webhook per message."""
    stack = make_stack(webhook_url=receiver.url, webhook_secret=SECRET, sync_interval_s=1.0,
                       hooks_interval_s=1.0)
    stack.sim.admin.set_lifecycle(delivered_after_s=0, jitter=0, undelivered_rate=0, pending_rate=0)
    stack.start_worker(concurrency=2, beat=True)
    ids = list(stack.dispatcher.send_bulk(((number(i), txn_text(i)) for i in range(10)), **TXN))
    stack.wait_until(lambda: len(receiver.posts) >= 10, 60, "10 webhooks")
    stack.wait_until(lambda: stack.counts().get("delivered", 0) == 10, 30, "10 delivered")
    assert sorted(json.loads(b)["message_id"] for _, b in receiver.posts) == sorted(ids)
    assert all(hooks.verify(SECRET, b, h["x-smspoint-signature"]) for h, b in receiver.posts)
