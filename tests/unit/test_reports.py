"""Delivery reports as pure functions: the status table (any casing, unknown names), both documented
delivery-status shapes through the client's own parser, matching entries to messages, and the polling
backoff schedule (no network, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher import reports
from dispatcher.gateway import DeliveryEntry
from dispatcher.gateway.client import interpret
from dispatcher.reports import Candidate, map_status, match, next_poll_at, plan
from dispatcher.states import State

STATUS = "sms-delivery-status"

# The documentation's two delivery-status examples (the first says "status": "error" but carries data).
LIST_SHAPE = {"status": "error", "job_id": "123456789", "code": "200", "data": [
    {"status_name": "delivered", "mobile_number": "9999999991", "content": "This is message",
     "message_id": "m1"},
    {"status_name": "delivered", "recipient": "9999999992", "content": "This is message",
     "message_id": "m2"}]}
SINGLE_SHAPE = {"status": "success", "message": None, "data": {
    "status": "success", "recipient": "9999999999", "sender_id": "SENDER", "content": "This is message",
    "delivery_status_id": "Delivered", "delivery_status_remark": ""}}


def parsed(doc: dict, job_id: str = "123456789") -> list[DeliveryEntry]:
    return interpret(STATUS, 200, json.dumps(doc), {}, job_id=job_id).entries


def cand(mid: str, number: str, text: str = "hello", gmid: str | None = None, state: str = "sent",
         raw: str | None = None, remark: str | None = None) -> Candidate:
    return Candidate(mid, number, text, gmid, state, raw, remark)


# --------------------------------------------------------------------------- the status table


@pytest.mark.parametrize(("raw", "state", "final"), [
    ("Delivered", State.DELIVERED, True), ("DELIVERED", State.DELIVERED, True),
    ("delivered", State.DELIVERED, True), ("UnDelivered", State.UNDELIVERED, True),
    ("UNDELIVERED", State.UNDELIVERED, True), (" un-delivered ", State.UNDELIVERED, True),
    ("Sent", State.SENT, False), ("sent", State.SENT, False),
    ("Expired", State.SENT, False), ("EXPIRED", State.SENT, False),
])
def test_documented_statuses_map_in_any_casing(raw: str, state: State, final: bool) -> None:
    """Each documented status maps to its state in any casing; Expired ("pending, en route") is not final."""
    mapped = map_status(raw)
    assert (mapped.state, mapped.final, mapped.known) == (state, final, True)


@pytest.mark.parametrize("raw", ["Rejected", "DND", "", None, "Pending"])
def test_unknown_status_names_are_not_final(raw: str | None) -> None:
    """A name outside the table maps to no state and is never final."""
    mapped = map_status(raw)
    assert mapped.state is None and not mapped.final and not mapped.known


def test_plan_keeps_unknown_names_verbatim_and_counts_them() -> None:
    """An unknown status is stored verbatim (status only, no transition) and counted by name."""
    m = cand("a", "919999999991")
    p = plan([(m, DeliveryEntry("9999999991", None, "Queued At Operator", "x", "hello"))])
    assert p.finals == {} and p.unknown_statuses == {"Queued At Operator": 1}
    assert [(c.id, c.to, c.status_raw, c.status_remark) for c in p.statuses] == [
        ("a", None, "Queued At Operator", "x")]


def test_plan_never_touches_final_rows_and_skips_unchanged_ones() -> None:
    """A late report for a final message is stale (not written); a repeated Sent writes nothing."""
    done = cand("a", "919999999991", state="delivered", raw="Delivered")
    same = cand("b", "919999999992", raw="Sent")
    moving = cand("c", "919999999993", raw="Expired", remark="Message pending")
    p = plan([(done, DeliveryEntry("9999999991", "1", "UnDelivered", "DND", None)),
              (same, DeliveryEntry("9999999992", "2", "SENT", None, None)),
              (moving, DeliveryEntry("9999999993", "3", "UnDelivered", "DND", None))])
    assert p.stale == 1
    assert [c.id for c in p.statuses] == ["b"]  # only the casing of the raw status changed: kept verbatim
    assert {to: [(c.id, c.status_raw, c.status_remark) for c in cs] for to, cs in p.finals.items()} == {
        State.UNDELIVERED: [("c", "UnDelivered", "DND")]}
    assert p.final_ids() == {"c"}


def test_plan_fills_a_missing_gateway_message_id_only() -> None:
    """A gateway message id is recorded where our row has none, never replacing one we have."""
    p = plan([(cand("a", "919999999991"), DeliveryEntry("9999999991", "g1", "Delivered", None, "hello")),
              (cand("b", "919999999992", gmid="g2"), DeliveryEntry("9999999992", "g2", "Delivered", None,
                                                                    "hello"))])
    ids = {c.id: c.gateway_message_id for c in p.finals[State.DELIVERED]}
    assert ids == {"a": "g1", "b": None}


# --------------------------------------------------------------------------- both documented shapes


def test_list_shape_entries_match_by_message_id() -> None:
    """The list shape ("status": "error" with data, mobile_number and recipient keys) matches by id."""
    entries = parsed(LIST_SHAPE)
    msgs = [cand("b", "919999999992", "This is message", "m2"), cand("a", "919999999991", "This is message",
                                                                       "m1")]
    m = match(entries, msgs)
    assert sorted((c.id, e.message_id) for c, e in m.pairs) == [("a", "m1"), ("b", "m2")]
    assert m.unmatched == [] and m.by_fallback == 0
    assert {c.id: map_status(e.status).state for c, e in m.pairs} == {"a": State.DELIVERED,
                                                                       "b": State.DELIVERED}


def test_single_shape_entry_matches_by_number_and_text() -> None:
    """The single-object shape has no message id: it matches by number (without 91) and text."""
    entries = parsed(SINGLE_SHAPE)
    assert [(e.number, e.status, e.remark) for e in entries] == [("9999999999", "Delivered", "")]
    msgs = [cand("x", "919999999999", "Other text"), cand("y", "919999999999", "This is message")]
    m = match(entries, msgs)
    assert [(c.id, e.status) for c, e in m.pairs] == [("y", "Delivered")] and m.by_fallback == 1
    p = plan(m.pairs)
    assert [(c.id, c.status_remark) for c in p.finals[State.DELIVERED]] == [("y", None)]


# --------------------------------------------------------------------------- matching


def test_unknown_ids_fall_back_to_number_and_text_and_leftovers_are_unmatched() -> None:
    """An id we never stored falls back to number+text, then number with a text the gateway may have
    rewritten (case, punctuation); an entry fitting nothing, or echoing a text that cannot be ours, is
    unmatched (never guessed)."""
    msgs = [cand("a", "919000000001", "one, two"), cand("b", "919000000002", "two"),
            cand("c", "919000000003", "three", gmid="g3"), cand("d", "919000000004", "four")]
    entries = [DeliveryEntry("9000000002", "zz", "Delivered", None, "two"),
               DeliveryEntry("919000000001", None, "Sent", None, "ONE TWO"),
               DeliveryEntry("9000000003", "g3", "UnDelivered", "DND", "three"),
               DeliveryEntry("9000000004", None, "Delivered", None, "another text entirely"),
               DeliveryEntry("9000000009", None, "Delivered", None, "stranger")]
    m = match(entries, msgs)
    assert sorted((c.id, e.status) for c, e in m.pairs) == [("a", "Sent"), ("b", "Delivered"),
                                                            ("c", "UnDelivered")]
    assert m.by_fallback == 2
    assert [e.number for e in m.unmatched] == ["9000000004", "9000000009"]


def test_a_message_takes_at_most_one_entry() -> None:
    """Two id-less entries for one number fill two messages to that number, a third is unmatched."""
    msgs = [cand("a", "919000000001", "hi"), cand("b", "919000000001", "hi")]
    entries = [DeliveryEntry("9000000001", None, "Delivered", None, "hi")] * 3
    m = match(entries, msgs)
    assert sorted(c.id for c, _ in m.pairs) == ["a", "b"] and len(m.unmatched) == 1


def test_a_repeated_id_does_not_take_a_second_message() -> None:
    """The same gateway id twice matches its message once; the repeat takes no other message to that
    number, even one with the same text."""
    msgs = [cand("a", "919000000001", "hi", gmid="g1"), cand("b", "919000000001", "hi")]
    entries = [DeliveryEntry("9000000001", "g1", "Delivered", None, "hi")] * 2
    m = match(entries, msgs)
    assert [c.id for c, _ in m.pairs] == ["a"] and not m.unmatched


# --------------------------------------------------------------------------- backoff


def test_gaps_are_1_2_5_10_30_minutes_then_hourly() -> None:
    """The wait after poll n: 1, 2, 5, 10, 30 minutes, then an hour for ever."""
    assert [reports.gap(n) for n in range(1, 9)] == [timedelta(minutes=m) for m in (1, 2, 5, 10, 30, 60,
                                                                                       60, 60)]


def test_schedule_is_counted_from_the_job_creation() -> None:
    """Polls on time follow created_at + 1, 3, 8, 18, 48, 108, 168 minutes, whatever the run's delay."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    horizon = timedelta(hours=72)
    due, got = t0, []
    for n in range(1, 8):
        due = next_poll_at(t0, n, due + timedelta(seconds=20), horizon)  # each run 20 s late
        got.append(int((due - t0).total_seconds() // 60))
    assert got == [1, 3, 8, 18, 48, 108, 168]


def test_a_run_far_behind_waits_one_gap_and_the_horizon_caps_the_schedule() -> None:
    """After an outage the next poll is one gap from now (no catch-up burst); never past the horizon."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    late = t0 + timedelta(hours=5)
    assert next_poll_at(t0, 3, late, timedelta(hours=72)) == late + timedelta(minutes=5)
    assert next_poll_at(t0, 80, t0 + timedelta(hours=71, minutes=30), timedelta(hours=72)) == \
        t0 + timedelta(hours=72)


def test_the_schedule_comes_from_settings() -> None:
    """SYNC_BACKOFF_MIN and SYNC_POLL_EVERY_MIN replace the defaults; a bad list is refused by name."""
    from pydantic import ValidationError

    from dispatcher.settings import Settings

    s = Settings(sync_backoff_min="0.5, 3", sync_poll_every_min=15)
    sched = reports.Schedule.of(s.sync_backoff_min, s.sync_poll_every_min)
    assert [sched.gap(n) for n in range(1, 5)] == [timedelta(seconds=30), timedelta(minutes=3),
                                                   timedelta(minutes=15), timedelta(minutes=15)]
    assert Settings().sync_backoff_min == (1, 2, 5, 10, 30)
    env = Settings(sync_backoff_min="2,4").to_env()
    assert env["SYNC_BACKOFF_MIN"] == "2,4"
    for bad in ("", "1,0", "1,-2", "x"):
        with pytest.raises(ValidationError, match="sync_backoff_min"):
            Settings(sync_backoff_min=bad)


@pytest.mark.parametrize("raw", ["Expired", "EXPIRED", "expired"])
def test_expired_is_pending_unless_the_account_says_final(raw: str) -> None:
    """Documented reading: Expired = pending, en route (stays sent); EXPIRED_IS_FINAL makes it final."""
    assert map_status(raw) == reports.Mapped(State.SENT, False)
    assert map_status(raw, True) == reports.Mapped(State.EXPIRED, True)
    p = plan([(cand("a", "919000000001", "hi"), DeliveryEntry("9000000001", "g", raw, None, "hi"))],
             expired_final=True)
    assert [c.id for c in p.finals[State.EXPIRED]] == ["a"]
    assert not plan([(cand("a", "919000000001", "hi"), DeliveryEntry("9000000001", "g", raw, None, "hi"))]
                    ).finals
