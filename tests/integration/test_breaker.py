"""The breaker on real parts: the simulator starts rejecting one template mid-run, real workers send, and
the breaker stops the group's spend within the threshold while other groups go on."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from dispatcher import breaker
from dispatcher.cli import app
from dispatcher.db import transaction
from dispatcher.models import MESSAGE

from .pipeline_helpers import OTP, TXN, calls, ledger, number, otp_text, txn_text

TXN_GROUP = (TXN["sender_id"], TXN["template_id"])
DONE = ("sent", "delivered", "undelivered", "expired", "failed", "held")


def test_a_template_rejected_mid_run_is_stopped_within_the_threshold(make_stack):
    """30 messages go out; then every call of the template is rejected. With batches of 10 and a 50%
    breaker over 100 messages, at most 30 rejected plus the batches already in flight are failed; the
    other 170+ are held (breaker), OTPs keep flowing, and release after the fix sends the held ones."""
    stack = make_stack(batch_size=10, breaker_window=100, breaker_threshold=0.5, breaker_min_messages=10)
    stack.start_worker(concurrency=2)
    d = stack.dispatcher
    d.send_bulk([(number(i), txn_text(i)) for i in range(30)], **TXN)
    stack.wait_settled(30)
    stack.sim.admin.set_faults(reject_templates=[TXN["template_id"]])

    d.send_bulk([(number(100 + i), txn_text(100 + i)) for i in range(200)], **TXN)
    stack.wait_until(lambda: sum(stack.counts().get(s, 0) for s in DONE) >= 230 and
                     breaker.is_open(stack.ctx, TXN["sender_id"], TXN["template_id"]), 90,
                     "the breaker to open and every message to settle")
    counts = stack.counts()
    rejected = [c for c in calls(stack.sim) if c["command"] == "send-bulk-sms"
                and c["message"] == "Template Not Approved"]
    assert counts.get("failed", 0) <= 30 + 2 * 10, counts  # the threshold, plus one batch per worker process
    assert counts.get("failed", 0) >= 30 and counts.get("held", 0) >= 150, counts
    assert len(rejected) >= 3 and counts["failed"] <= 10 * len(rejected)  # failures were refused calls
    assert len(ledger(stack.sim)) == 30  # nothing of the template was accepted (charged) after the fault
    [row] = breaker.breakers(stack.ctx)
    assert (row["sender_id"], row["template_id"], row["state"]) == (*TXN_GROUP, "open")
    assert "bad of the last" in row["reason"]
    status = d.get_status(d.send_sms(number(500), txn_text(500), **TXN))  # later messages are held too
    stack.wait_until(lambda: d.get_status(status.id).state == "held", 30, "a later message to be held")
    assert d.get_status(status.id).hold_reason == "breaker"

    otp = d.send_sms(number(600), otp_text(600), **OTP)  # another group is not affected
    stack.wait_until(lambda: d.get_status(otp).state in ("sent", "delivered"), 30, "the OTP to go out")

    listed = CliRunner().invoke(app, ["breaker", "list", "--json"], env=stack.env)
    assert listed.exit_code == 0 and TXN["template_id"] in listed.stdout
    stack.sim.admin.clear_faults()
    held = stack.counts()["held"]
    res = CliRunner().invoke(app, ["breaker", "release", TXN["sender_id"], TXN["template_id"]], env=stack.env)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == f"released: {held} message(s) queued again"
    stack.wait_until(lambda: stack.counts().get("held", 0) == 0 and stack.counts().get("queued", 0) == 0, 60,
                     "the released messages to go out")
    again = CliRunner().invoke(app, ["breaker", "release", *TXN_GROUP], env=stack.env)
    assert again.exit_code == 1 and "no open breaker" in again.stderr


def test_undelivered_reports_with_dlt_remarks_open_the_breaker(make_stack):
    """The report scan counts undelivered messages whose remark names DLT trouble (not DND) per group;
    7 of 20 over a 30% threshold opens the breaker and holds the group's queued messages."""
    stack = make_stack(breaker_window=100, breaker_threshold=0.3, breaker_min_messages=10)
    ids = stack.dispatcher.send_bulk([(number(i), txn_text(i)) for i in range(20)], **TXN)
    breaker.record(stack.ctx, TXN["sender_id"], TXN["template_id"], 0, 20)  # as sent
    now = stack.ctx.clock()
    with transaction(stack.ctx.engine) as conn:
        for k, mid in enumerate(ids[:10]):
            remark = "DLT template mismatch" if k < 7 else "DND"
            conn.execute(MESSAGE.update().where(MESSAGE.c.id == mid).values(
                state="undelivered", status_remark=remark, final_at=now + timedelta(seconds=1)))
    stack.ctx.clock = lambda: now + timedelta(seconds=5)
    out = breaker.scan_reports(stack.ctx)
    assert out == {"undelivered": 10, "dlt": 7, "opened": 1}
    assert breaker.is_open(stack.ctx, TXN["sender_id"], TXN["template_id"])
    assert stack.counts() == {"undelivered": 10, "held": 10}
