"""The delivery-report sync on real parts (SQLite file and PostgreSQL, Redis, the simulator over loopback
HTTP, and once a real Celery worker): final states, the backoff schedule and the horizon with an injected
clock, overlapping runs, Invalid Message ID, gateway outages and id-less send answers."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from dispatcher import store, sync
from dispatcher.context import Context
from dispatcher.db import transaction
from dispatcher.models import JOB, MESSAGE
from dispatcher.publish import CeleryPublisher
from dispatcher.simulator import (
    MAGIC_DELIVERED,
    MAGIC_DND,
    MAGIC_INVALID,
    MAGIC_NEVER_FINAL,
    MAGIC_UNDELIVERED,
)
from workers.queues import QUEUE_SYNC, TASK_SYNC

from .pipeline_helpers import TXN, ledger, number, txn_text
from .sync_helpers import Rig, make_rig


def test_mixed_outcomes_end_in_their_final_states(make_stack):
    """Random and magic numbers end delivered / undelivered / failed / expired, each with its raw status."""
    rig = make_rig(make_stack, batch_size=4)
    magic = [MAGIC_DELIVERED, MAGIC_UNDELIVERED, MAGIC_DND, MAGIC_NEVER_FINAL, MAGIC_INVALID]
    rows = [(number(i), txn_text(i)) for i in range(6)]
    rows += [(n, txn_text(100 + i)) for i, n in enumerate(magic)]
    ids = rig.send(rows)
    assert rig.states(ids).count("sent") == 10 and rig.states(ids)[-1] == "failed"

    first = rig.sync()  # right after sending: every report still says Sent
    assert first.calls == len(rig.jobs()) == 3 and first.finals == {}
    assert {m["status_raw"].lower() for m in rig.messages(ids[:10]).values()} == {"sent"}

    rig.advance(seconds=61)
    second = rig.sync()
    assert second.calls == 3 and second.finals == {"delivered": 7, "undelivered": 2}
    assert rig.states(ids) == ["delivered"] * 7 + ["undelivered"] * 2 + ["sent", "failed"]
    never = rig.messages([ids[9]])[ids[9]]
    assert never["status_raw"].lower() == "expired" and never["final_at"] is None  # pending: not final
    open_jobs = [j for j in rig.jobs().values() if j["open"]]
    assert [j["job_id"] for j in open_jobs] == [never["gateway_job_id"]]

    rig.advance(hours=72)
    last = rig.sync()
    assert last.calls == 1 and last.finals == {"expired": 1} and last.closed == 1
    final = rig.messages(ids)
    assert [final[i]["state"] for i in ids] == ["delivered"] * 7 + ["undelivered"] * 2 + ["expired", "failed"]
    assert final[ids[9]]["last_error"] == sync.HORIZON_REASON
    by_number = {e["number"]: e for e in ledger(rig.sim)}
    for mid in ids[:9]:
        row = final[mid]
        assert row["status_raw"].lower() == by_number[row["number"]]["status"].lower()
        assert row["final_at"] == rig.clock.now - timedelta(hours=72)
    assert not any(j["open"] for j in rig.jobs().values())
    assert rig.sync().calls == 0  # closed jobs are never polled again


def test_pending_jobs_follow_the_backoff_schedule_and_expire_at_the_horizon(make_stack):
    """A never-final job is polled at +0, 1, 3, 8, 18, 48, 108 minutes, then hourly, and expires at 72 h."""
    rig = make_rig(make_stack)
    (mid,) = rig.send([(MAGIC_NEVER_FINAL, txn_text(1))])
    t0 = rig.clock.now
    polled_at = []
    for _ in range(3 * 60 + 1):  # every minute for three hours, as a frequent beat would
        if rig.sync().calls:
            polled_at.append(round((rig.clock.now - t0).total_seconds() / 60))
        rig.clock.now += timedelta(minutes=1)
    assert polled_at == [0, 1, 3, 8, 18, 48, 108, 168]
    job = next(iter(rig.jobs().values()))
    assert job["poll_count"] == 8 and job["open"]
    assert job["next_poll_at"] == t0 + timedelta(minutes=228)
    assert sum(rig.status_calls().values()) == 8  # what the gateway saw matches

    rig.clock.now = t0 + timedelta(hours=71, minutes=59)
    rig.sync()  # the last scheduled poll before the horizon is capped at the horizon itself
    assert next(iter(rig.jobs().values()))["next_poll_at"] == t0 + timedelta(hours=72)
    rig.clock.now = t0 + timedelta(hours=72)
    result = rig.sync()
    assert result.calls == 1 and result.finals == {"expired": 1}
    row = rig.messages([mid])[mid]
    assert (row["state"], row["last_error"]) == ("expired", "no final delivery report")
    assert not next(iter(rig.jobs().values()))["open"]


def test_overlapping_runs_never_poll_a_job_twice(make_stack):
    """Four threads running the sync at once poll each of 30 jobs exactly once between them."""
    rig = make_rig(make_stack, batch_size=2, lifecycle={"delivered_after_s": 0, "jitter": 0,
                                                         "undelivered_rate": 0, "pending_rate": 0})
    ids = rig.send([(number(i), txn_text(i)) for i in range(60)])
    assert len(rig.jobs()) == 30
    rig.sim.admin.set_faults(latency_ms=20, commands=["sms-delivery-status"])
    results: list[sync.SyncResult] = []
    start = threading.Barrier(4)

    def runner() -> None:
        ctx = Context(rig.ctx.settings, clock=rig.clock)  # its own client, as another process would have
        start.wait()
        results.append(sync.run(ctx))

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.calls for r in results) == 30 and sum(r.jobs for r in results) == 30
    assert sum(1 for r in results if r.calls) > 1  # the work really was shared
    counts = rig.status_calls()
    assert set(counts) == set(rig.jobs()) and set(counts.values()) == {1}
    assert set(rig.states(ids)) == {"delivered"}
    assert sum(r.finals.get("delivered", 0) for r in results) == 60


def test_invalid_job_id_is_retried_then_its_messages_are_given_up(make_stack):
    """A job the gateway forgot answers Invalid Message ID: retried twice, then expired with a reason."""
    rig = make_rig(make_stack)
    ids = rig.send([(number(i), txn_text(i)) for i in range(3)])
    (job_id,) = rig.jobs()
    rig.sim.admin.reset()  # the gateway no longer knows the job
    for attempt in (1, 2):
        result = rig.sync()
        assert (result.calls, result.invalid_ids, result.finals) == (1, 1, {})
        job = rig.jobs()[job_id]
        assert job["invalid_id_count"] == attempt and job["open"] and job["lease_owner"] is None
        assert set(rig.states(ids)) == {"sent"}
        rig.advance(hours=1)
    result = rig.sync()
    assert result.invalid_ids == 1 and result.finals == {"expired": 3} and result.closed == 1
    rows = rig.messages(ids)
    assert {(r["state"], r["last_error"]) for r in rows.values()} == {("expired", sync.INVALID_ID_REASON)}
    history = rig.stack.dispatcher.get_status(ids[0]).history
    assert [h["detail"] for h in history if h["state"] == "expired"] == [sync.INVALID_ID_REASON]


def test_gateway_outage_defers_jobs_without_counting_a_poll(make_stack):
    """503s on delivery-status stop the run after three jobs; those jobs keep their poll count and retry."""
    rig = make_rig(make_stack, batch_size=1)
    rig.send([(number(i), txn_text(i)) for i in range(5)])
    rig.sim.admin.set_faults(rate_5xx=1.0, commands=["sms-delivery-status"])
    result = rig.sync()
    assert (result.calls, result.jobs, result.errors, result.stopped) == (3, 0, 3, "gateway unavailable")
    jobs = rig.jobs().values()
    assert all(j["poll_count"] == 0 and j["lease_owner"] is None for j in jobs)
    assert sorted(j["next_poll_at"] - rig.clock.now for j in jobs)[-3:] == [sync.UNAVAILABLE_RETRY] * 3
    deferred = {j["job_id"] for j in jobs if j["next_poll_at"] > rig.clock.now}
    rig.sim.admin.clear_faults()
    rig.advance(seconds=61)
    before = rig.status_calls()
    assert rig.sync(max_calls=2).jobs == 2  # the budget; oldest due first: the two never tried
    assert set(rig.status_calls() - before) == set(rig.jobs()) - deferred
    assert rig.sync().jobs == 3
    assert set(rig.states(list(rig.messages()))) == {"delivered"}


def test_reports_match_by_number_and_text_when_the_send_gave_no_ids(make_stack):
    """With the C# bulk answer (job id only) reports match by number and text and fill in the message ids."""
    rig = make_rig(make_stack)
    rig.sim.admin.set_shapes(send_shape="csharp")
    ids = rig.send([(number(i), txn_text(i)) for i in range(4)] + [(number(0), txn_text(99))])
    assert all(r["gateway_message_id"] is None for r in rig.messages(ids).values())
    rig.advance(seconds=30)
    assert rig.sync().finals == {"delivered": 5}
    by_text = {e["text"]: e["message_id"] for e in ledger(rig.sim)}
    assert {r["gateway_message_id"] for r in rig.messages(ids).values()} == set(by_text.values())
    assert all(by_text[r["text"]] == r["gateway_message_id"] for r in rig.messages(ids).values())


def test_report_entries_matching_nothing_are_counted_not_dropped(make_stack):
    """An entry for a number we have no row for is counted as unmatched; the rest of the job is recorded."""
    rig = make_rig(make_stack)
    ids = rig.send([(number(i), txn_text(i)) for i in range(3)])
    with transaction(rig.ctx.engine) as conn:  # our copy of one row disagrees with the gateway
        conn.execute(update(MESSAGE).where(MESSAGE.c.id == ids[0])
                     .values(number="919999999999", gateway_message_id="not-the-gateway-id"))
    rig.advance(seconds=30)
    result = rig.sync()
    assert (result.unmatched, result.finals, result.closed) == (1, {"delivered": 2}, 0)
    assert rig.states(ids) == ["sent", "delivered", "delivered"]


def test_sync_task_runs_in_a_real_worker(make_stack):
    """Messages sent by a real worker are synced by two TASK_SYNC tasks at once: each job polled once."""
    stack = make_stack(batch_size=3)
    stack.sim.admin.set_lifecycle(delivered_after_s=0, jitter=0, undelivered_rate=0, pending_rate=0)
    stack.start_worker(concurrency=2)
    ids = list(stack.dispatcher.send_bulk(((number(i), txn_text(i)) for i in range(12)), **TXN))
    stack.wait_settled(len(ids))
    stack.sim.admin.set_faults(latency_ms=50, commands=["sms-delivery-status"])
    publisher = CeleryPublisher.for_broker(stack.settings.celery_broker,
                                           stack.settings.broker_transport_options())
    for _ in range(2):
        publisher.app.send_task(TASK_SYNC, queue=QUEUE_SYNC, ignore_result=True)
    stack.wait_until(lambda: stack.counts().get("delivered", 0) == 12, 60, "12 delivered")
    rig = Rig(stack, stack.ctx, None)  # type: ignore[arg-type]  # read-only helpers over the same stack
    counts = rig.status_calls()
    assert len(counts) == 4 and set(counts.values()) == {1}
    assert not any(j["open"] for j in rig.jobs().values())


def test_a_dead_runners_lease_expires_and_a_lost_lease_writes_nothing(make_stack):
    """A job leased by a runner that died waits for the lease to expire; a runner whose lease was taken
    over while it waited for the gateway writes nothing, and the new holder records the report."""
    rig = make_rig(make_stack)
    ids = rig.send([(number(i), txn_text(i)) for i in range(2)])
    (job_id,) = rig.jobs()
    lease = timedelta(seconds=sync.lease_seconds(rig.ctx))
    with transaction(rig.ctx.engine) as conn:
        assert store.lease_job(conn, job_id, "dead-runner", rig.clock.now, rig.clock.now + lease)
    assert rig.sync().calls == 0  # held by the dead runner
    rig.advance(seconds=lease.total_seconds() + 1)

    real = rig.ctx.client.delivery_status

    def slow_call(jid: str):  # the lease expires during the call and another runner takes the job
        report = real(jid)
        with transaction(rig.ctx.engine) as conn:
            conn.execute(update(JOB).where(JOB.c.job_id == jid).values(lease_owner="new-holder"))
        return report

    rig.ctx.client.delivery_status = slow_call  # type: ignore[method-assign,assignment]
    result = rig.sync()
    assert (result.calls, result.jobs, result.lost_leases, result.finals) == (1, 0, 1, {})
    assert rig.states(ids) == ["sent", "sent"] and rig.jobs()[job_id]["poll_count"] == 0
    rig.ctx.client.delivery_status = real  # type: ignore[method-assign]
    rig.advance(seconds=lease.total_seconds() + 1)  # the new holder died too: its lease expires
    assert rig.sync().finals == {"delivered": 2}
    assert not rig.jobs()[job_id]["open"]
