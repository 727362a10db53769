"""Retention against a real database (SQLite file and PostgreSQL) and Redis: only finished rows past their
retention go, in small transactions, with their events and hook rows; a dry run counts exactly what a purge
then deletes; `smsdispatch purge` and beat's purge task do it; the exporter counts what was purged."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, insert, select

from bench.retention import seed_finished
from dispatcher import metrics, purge
from dispatcher.db import transaction
from dispatcher.ids import new_ids
from dispatcher.models import BATCH, EVENT, JOB, MESSAGE, OUTBOX
from dispatcher.states import State

from .pipeline_helpers import TXN, number, txn_text
from .test_cli import cli, run_process

OLD = timedelta(days=40)
RECENT = timedelta(days=1)


def message(mid: str, state: State, created: datetime, final: datetime | None, batch: str | None = None,
            job: str | None = None) -> dict[str, Any]:
    return {"id": mid, "state": state.value, "channel": TXN["channel"], "sender_id": TXN["sender_id"],
            "template_id": TXN["template_id"], "number": number(1), "text": txn_text(1),
            "created_at": created, "final_at": final, "updated_at": final or created, "batch_id": batch,
            "gateway_job_id": job}


def seed(stack: Any) -> dict[str, str]:
    """One row of every kind the policy must tell apart; returns their ids by name."""
    now = stack.ctx.clock()
    old, recent = now - OLD, now - RECENT
    names = ["delivered_old", "failed_old_hook_pending", "sent_old", "unknown_old", "queued_old",
             "held_old", "delivered_recently", "delivered_new"]
    made = {name: new_ids(1, recent if name == "delivered_new" else old)[0] for name in names}
    batch_done, batch_moving, batch_pending = new_ids(3, old)
    rows = [message(made["delivered_old"], State.DELIVERED, old, old, batch_done, "job-closed"),
            message(made["failed_old_hook_pending"], State.FAILED, old, old, batch_done),
            message(made["sent_old"], State.SENT, old, None, batch_moving, "job-open"),
            message(made["unknown_old"], State.UNKNOWN, old, None),
            message(made["queued_old"], State.QUEUED, old, None),
            message(made["held_old"], State.HELD, old, None),
            message(made["delivered_recently"], State.DELIVERED, old, recent),
            message(made["delivered_new"], State.DELIVERED, recent, recent)]
    batch = {"lane": "transactional", "channel": "transactional", "sender_id": TXN["sender_id"],
             "template_id": TXN["template_id"], "created_at": old, "done_at": old}
    job = {"channel": "transactional", "created_at": old, "next_poll_at": old}
    hook = {"created_at": old, "next_attempt_at": old, "attempts": 1}
    with transaction(stack.ctx.engine) as conn:
        conn.execute(insert(MESSAGE), rows)
        events = [(made["delivered_old"], "held"), (made["delivered_old"], "queued"),
                  (made["unknown_old"], "unknown")]
        conn.execute(insert(EVENT), [{"message_id": m, "at": old, "state": s, "detail": "x"}
                                     for m, s in events])
        conn.execute(insert(BATCH), [{**batch, "id": batch_done, "state": "sent"},
                                     {**batch, "id": batch_moving, "state": "sent"},
                                     {**batch, "id": batch_pending, "state": "pending", "done_at": None}])
        conn.execute(insert(JOB), [{**job, "job_id": "job-closed", "open": False, "closed_at": old},
                                   {**job, "job_id": "job-open", "open": True, "closed_at": None}])
        conn.execute(insert(OUTBOX), [
            {**hook, "message_id": made["delivered_old"], "state": "delivered", "done": True},
            {**hook, "message_id": made["failed_old_hook_pending"], "state": "failed", "done": False},
            {**hook, "message_id": made["delivered_recently"], "state": "delivered", "done": True}])
    made.update(batch_done=batch_done, batch_moving=batch_moving, batch_pending=batch_pending)
    return made


def rows(stack: Any) -> dict[str, set[str]]:
    with transaction(stack.ctx.engine) as conn:
        return {"messages": set(conn.execute(select(MESSAGE.c.id)).scalars()),
                "events": set(conn.execute(select(EVENT.c.message_id)).scalars()),
                "batches": set(conn.execute(select(BATCH.c.id)).scalars()),
                "jobs": set(conn.execute(select(JOB.c.job_id)).scalars()),
                "hooks": set(conn.execute(select(OUTBOX.c.message_id)).scalars())}


EXPECTED = {"messages": 1, "events": 2, "message_hooks": 1, "batches": 1, "jobs": 1, "hooks": 1}


def test_only_finished_rows_past_retention_are_purged(make_stack):
    """Old final messages go with their events and hook; nothing moving, recent, or with a hook still to
    deliver does; finished batches, closed jobs and delivered hooks go; a dry run counts exactly that."""
    stack = make_stack(retention_chunk_rows=2, retention_rows_per_s=1e9)  # many small transactions
    made = seed(stack)
    before = rows(stack)

    dry = purge.purge(stack.ctx, dry_run=True)
    assert dry.deleted == EXPECTED and rows(stack) == before

    done = purge.purge(stack.ctx)
    assert done.complete and done.deleted == EXPECTED
    after = rows(stack)
    assert before["messages"] - after["messages"] == {made["delivered_old"]}
    assert after["events"] == {made["unknown_old"]}
    assert before["batches"] - after["batches"] == {made["batch_done"]}
    assert after["jobs"] == {"job-open"}
    # the hook of the recently delivered message is old and delivered: purged on its own retention (7 d)
    assert after["hooks"] == {made["failed_old_hook_pending"]}
    assert purge.purge(stack.ctx).total == 0


def test_a_purge_stops_at_its_time_budget_and_the_next_run_goes_on(make_stack):
    """A run deletes whole chunks and stops between them once its budget is spent (complete False); the
    next run deletes the rest."""
    stack = make_stack(retention_chunk_rows=100, retention_rows_per_s=10.0)
    seed_finished(stack.ctx.engine, 1000, stack.ctx.clock() - OLD)
    first = purge.purge(stack.ctx, budget_s=0.5, sleep=lambda _: time.sleep(0.6))  # over budget after one
    assert not first.complete and first.deleted["messages"] == 100
    rest = purge.purge(stack.ctx, budget_s=None, sleep=lambda _: None)  # the rate limit paces by sleeping
    assert rest.complete and rest.deleted["messages"] == 900
    with transaction(stack.ctx.engine) as conn:
        assert conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one() == 0


def test_purge_command_dry_run_then_purge_and_metrics(make_stack):
    """`smsdispatch purge --dry-run --json` counts, `purge --older-than 30d` deletes, the exporter counts."""
    stack = make_stack()
    made = seed(stack)
    dry = cli(stack, "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["deleted"] == EXPECTED
    assert rows(stack)["messages"] == set(made[k] for k in made if not k.startswith("batch_"))

    table = cli(stack, "purge", "--older-than", "30d")
    assert table.exit_code == 0, table.stderr
    assert "deleted in" in table.stdout and made["delivered_old"] not in rows(stack)["messages"]
    text = generate_latest(metrics.registry_for(stack.ctx)).decode()
    assert 'smspoint_purged_rows_total{table="messages"} 1.0' in text
    assert 'smspoint_purged_rows_total{table="events"} 2.0' in text
    assert "smspoint_purge_last_run_timestamp_seconds 0.0" not in text

    bad = run_process(stack.env, "purge", "--older-than", "thirty")
    assert bad.returncode == 1 and "older-than: 'thirty' is not a duration" in bad.stderr


def test_a_purge_waits_for_the_one_running(make_stack):
    """While another purge holds the lease, `purge` deletes nothing and says so in one line."""
    stack = make_stack()
    seed(stack)
    lease = purge.lease(stack.ctx)
    assert lease.acquire()
    try:
        result = run_process(stack.env, "purge")
        assert result.returncode == 1 and "another purge is running" in result.stderr
        assert len(rows(stack)["messages"]) == 8
    finally:
        lease.release()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_beat_purges_while_the_pipeline_sends(make_stack):
    """A worker with beat runs purge_expired on its schedule: old delivered rows vanish while new messages
    are sent, and none of the new ones is touched."""
    stack = make_stack(retention_interval_s=1.0, retention_chunk_rows=500)
    seed_finished(stack.ctx.engine, 3000, stack.ctx.clock() - OLD)
    stack.start_worker(beat=True)
    sent = [stack.dispatcher.send_sms(number(100 + i), txn_text(100 + i), **TXN) for i in range(50)]
    stack.wait_settled(50)

    def old_rows() -> int:
        with transaction(stack.ctx.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(MESSAGE)
                                    .where(MESSAGE.c.created_at < stack.ctx.clock() - timedelta(days=30)))
                       .scalar_one())

    stack.wait_until(lambda: old_rows() == 0, 60, "beat's purge to delete the old rows")
    assert {stack.dispatcher.get_status(m).id for m in sent} == set(sent)
