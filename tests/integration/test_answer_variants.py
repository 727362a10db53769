"""The record stays true whatever reading of the gateway documentation answers: real workers and beat, the
simulator answering in each documented variant (MessageData reordered, numbers with and without 91 / +91,
recipients left out of the answer or silently not taken, entries listed twice, no echoed texts, code as a
string, numeric ids, the one-id C# answer), on SQLite and PostgreSQL.

For every variant: no message holds an id the gateway gave another message, every final state is the one
the gateway reports for that message, no message is `sent` that the gateway does not have (those end
`unknown`, with their reason), nothing stays `unconfirmed`, and the credits recorded as charged equal what
the simulator took, per package and per job.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher.channels import Channel
from dispatcher.db import transaction
from dispatcher.models import JOB, MESSAGE
from dispatcher.states import State
from dispatcher.sync import NOT_IN_REPORTS_REASON

from .pipeline_helpers import OTP, TXN, ledger, number, otp_text, txn_text

#: variant name -> (simulator variants, send shape)
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "shuffled-repeated-national": ({"order": "shuffled", "repeat_rate": 0.2, "number_format": "national",
                                    "report_number_format": "cc"}, "php"),
    "reversed-no-text-plus": ({"order": "reversed", "text_in_answer": False, "number_format": "plus",
                               "code": "str", "message_id_type": "int"}, "php"),
    "omitted": ({"omit_rate": 0.25, "order": "shuffled", "number_format": "mixed"}, "php"),
    "dropped": ({"drop_rate": 0.15, "order": "shuffled", "report_number_format": "plus"}, "php"),
    "everything": ({"order": "shuffled", "number_format": "mixed", "omit_rate": 0.15, "drop_rate": 0.1,
                    "repeat_rate": 0.1, "text_in_answer": False, "code": "absent"}, "php"),
    "one-id": ({}, "csharp"),
}
FAST_SYNC: dict[str, Any] = {
    "sync_interval_s": 0.5, "sync_backoff_min": "0.02", "sync_poll_every_min": 0.02, "unconfirmed_polls": 2,
    "batch_size": 40, "flush_interval_transactional_ms": 50,
}
FINAL_STATUS = {"delivered": "delivered", "undelivered": "undelivered"}


def workload() -> list[tuple[str, str, dict[str, Any]]]:
    """120 transactional messages to 30 numbers (each number 4 times: 3 texts, one of them twice) and 12
    OTPs, so one call carries the same number several times with different and identical texts."""
    rows = []
    for i in range(120):
        who = i % 30
        rows.append((number(who), txn_text(who * 10 + min(i // 30, 2)), TXN))
    rows += [(number(500 + i % 6), otp_text(i), OTP) for i in range(12)]
    return rows


def rows_of(stack: Any) -> list[Any]:
    with transaction(stack.ctx.engine) as conn:
        return list(conn.execute(select(MESSAGE.c.id, MESSAGE.c.number, MESSAGE.c.text, MESSAGE.c.state,
                                        MESSAGE.c.channel, MESSAGE.c.gateway_message_id,
                                        MESSAGE.c.credits_charged, MESSAGE.c.last_error,
                                        MESSAGE.c.gateway_job_id)).all())


def settled(stack: Any, expected_final: int) -> bool:
    c = stack.counts()
    if any(c.get(s, 0) for s in ("queued", "sending", "unconfirmed", "held")):
        return False
    return c.get("delivered", 0) + c.get("undelivered", 0) >= expected_final


@pytest.mark.integration
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_record_is_true_in_every_answer_variant(make_stack, variant: str) -> None:
    """Crossed ids 0, untaken messages never `sent`, final states and charged credits as the gateway's."""
    changes, shape = VARIANTS[variant]
    stack = make_stack(**FAST_SYNC)
    sim = stack.sim
    sim.admin.set_lifecycle(delivered_after_s=0.5, undelivered_after_s=1.0, undelivered_rate=0.35,
                            pending_rate=0.0)
    sim.admin.set_shapes(send_shape=shape)
    sim.admin.variants(**changes)
    before = sim.admin.spent()
    stack.start_worker(beat=True)
    work = workload()
    for num, text, params in work:
        stack.dispatcher.send_sms(num, text, **params)

    def taken() -> list[dict[str, Any]]:
        return ledger(sim)

    stack.wait_until(lambda: settled(stack, sum(1 for e in taken() if e["fate"] in FINAL_STATUS)), 120,
                     f"{variant}: every message settled")

    entries = taken()
    rows = rows_of(stack)
    assert len(rows) == len(work)
    key = lambda number_, text: (number_[-10:], text)  # noqa: E731
    by_gmid = {str(e["message_id"]): e for e in entries}

    crossed = [r.id for r in rows if r.gateway_message_id is not None
               and key(by_gmid[r.gateway_message_id]["number"], by_gmid[r.gateway_message_id]["text"])
               != key(r.number, r.text)]
    assert crossed == [], f"{variant}: {len(crossed)} message(s) hold another message's gateway id"

    ledger_class = Counter(key(e["number"], e["text"]) for e in entries)
    accepted = (State.SENT.value, State.DELIVERED.value, State.UNDELIVERED.value, State.EXPIRED.value)
    db_accepted = Counter(key(r.number, r.text) for r in rows if r.state in accepted)
    assert db_accepted == ledger_class, f"{variant}: messages recorded sent differ from what the gateway took"
    finals_db = Counter((key(r.number, r.text), r.state) for r in rows if r.state in FINAL_STATUS)
    finals_gw = Counter((key(e["number"], e["text"]), FINAL_STATUS[e["fate"]]) for e in entries
                        if e["fate"] in FINAL_STATUS)
    assert finals_db == finals_gw, f"{variant}: final states differ from the gateway's"

    unknown = [r for r in rows if r.state == State.UNKNOWN.value]
    assert len(unknown) == len(work) - len(entries), f"{variant}: untaken messages must end unknown"
    expected_reason = NOT_IN_REPORTS_REASON.format(polls=FAST_SYNC["unconfirmed_polls"])
    assert all(r.last_error == expected_reason for r in unknown)
    if changes.get("drop_rate"):
        assert unknown, f"{variant}: the simulator dropped nothing; the test proves nothing"

    spent = {p: n - before.get(p, 0) for p, n in sim.admin.spent().items()}
    charged: Counter[str] = Counter()
    for r in rows:
        charged[Channel(r.channel).package] += r.credits_charged or 0
    assert {p: charged.get(p, 0) for p in spent} == spent, f"{variant}: charged credits differ"
    with transaction(stack.ctx.engine) as conn:
        jobs = conn.execute(select(JOB.c.credits_reserved, JOB.c.credits_charged,
                                   JOB.c.credits_released)).all()
    assert sum(j.credits_charged for j in jobs) == sum(spent.values())
    assert all(j.credits_reserved == j.credits_charged + j.credits_released for j in jobs)


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unlisted_messages_are_visible_until_the_reports_settle_them(make_stack) -> None:
    """Recipients the gateway silently did not take: `unconfirmed` (status, report, metrics say so, credits
    still reserved), then `unknown` after UNCONFIRMED_POLLS reports without them, credits released and
    shown as unaccounted for; the listed ones are charged."""
    from prometheus_client import generate_latest

    from dispatcher.metrics import registry_for

    from .test_cli import cli, cli_json

    stack = make_stack(**FAST_SYNC)
    stack.sim.admin.variants(drop_rate=0.3)
    stack.start_worker(name="sender")  # no beat yet: nothing polls the reports
    ids = [stack.dispatcher.send_sms(number(i), txn_text(i), **TXN) for i in range(40)]
    stack.wait_until(lambda: stack.counts().get("queued", 0) + stack.counts().get("sending", 0) == 0, 60,
                     "the calls answered")
    taken = len(ledger(stack.sim))
    dropped = len(ids) - taken
    assert 0 < dropped < len(ids)
    assert stack.counts().get("unconfirmed", 0) == dropped

    unconfirmed = [i for i in ids if stack.dispatcher.get_status(i).state == "unconfirmed"]
    status = cli_json(stack, "status", unconfirmed[0])
    assert status["state"] == "unconfirmed" and "did not list this recipient" in status["last_error"]
    rep = cli_json(stack, "report", "--jobs", "5")
    assert rep["by_state"]["unconfirmed"] == dropped and rep["credits"]["unconfirmed"] == dropped
    assert rep["credits"]["charged"] == taken and rep["credits"]["reserved"] == len(ids)
    metrics = generate_latest(registry_for(stack.ctx)).decode()
    assert f"smspoint_unconfirmed_messages {float(dropped)}" in metrics
    assert f'smspoint_unconfirmed_total{{outcome="recorded"}} {float(dropped)}' in metrics
    assert stack.ctx.ledger.snapshot()["Transactional"]["inflight"] == dropped

    stack.start_worker(name="beat", beat=True)
    stack.wait_until(lambda: stack.counts().get("unknown", 0) == dropped, 60, "unconfirmed -> unknown")
    rep = cli_json(stack, "report", "--jobs", "5")
    assert rep["credits"] == {"reserved": len(ids), "charged": taken, "released": dropped,
                              "unknown": dropped, "unconfirmed": 0}
    assert sum(j["credits_pending"] for j in rep["jobs"]) == 0
    assert stack.sim.admin.spent()["Transactional"] == taken
    assert stack.ctx.ledger.snapshot()["Transactional"]["inflight"] == 0
    text = cli(stack, "report", "--jobs", "5")
    assert "credits unaccounted for" in text.stdout and "recent gateway jobs" in text.stdout
    metrics = generate_latest(registry_for(stack.ctx)).decode()
    assert f'smspoint_unconfirmed_total{{outcome="unknown"}} {float(dropped)}' in metrics
    assert "smspoint_unconfirmed_messages 0.0" in metrics


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_report_that_comes_after_unknown_still_settles_the_record(make_stack) -> None:
    """A message the answer left out and the first reports missed is `unknown`; a later report that lists
    it makes it `sent` and charged again (job credits and the gateway's spend agree)."""
    from dispatcher import sync
    from dispatcher.store import add_job_credits, move_messages

    stack = make_stack(**FAST_SYNC)
    stack.sim.admin.variants(omit_rate=1.0)
    stack.start_worker(name="sender")
    ids = [stack.dispatcher.send_sms(number(i), txn_text(i), **TXN) for i in range(10)]
    stack.wait_until(lambda: stack.counts().get("unconfirmed", 0) == 10, 60, "10 unconfirmed")
    now = stack.ctx.clock()
    job_id = stack.dispatcher.get_status(ids[0]).gateway_job_id
    with transaction(stack.ctx.engine) as conn:  # as if UNCONFIRMED_POLLS reports had missed four of them
        assert len(move_messages(conn, ids[:4], State.UNKNOWN, now)) == 4
        add_job_credits(conn, job_id, released=4)
    result = sync.run(stack.ctx)
    assert result.confirmed == 10, result
    rows = {r.id: r for r in rows_of(stack)}
    assert all(rows[i].state in ("sent", "delivered", "undelivered") and rows[i].credits_charged == 1
               for i in ids)
    with transaction(stack.ctx.engine) as conn:
        [job] = conn.execute(select(JOB.c.credits_reserved, JOB.c.credits_charged,
                                    JOB.c.credits_released)).all()
    assert tuple(job) == (10, 10, 0)
    assert stack.sim.admin.spent()["Transactional"] == 10
