"""The simulator's answer variants as pure logic (a SimState in memory, the send command called directly, no
HTTP): whatever the order, number format and rates, the answer lists only ledger messages, each listed
Number normalises to its recipient, listed + omitted = what the ledger holds for the job, and what was
dropped is neither in the ledger nor charged. Also the variants' validation and their parsing from text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.numbers import normalize
from dispatcher.simulator import SimConfig, SimState
from dispatcher.simulator.commands import run
from dispatcher.simulator.variants import (
    CODES,
    ID_TYPES,
    NUMBER_FORMATS,
    ORDERS,
    Variants,
    kept,
    message_data,
    parse,
    written,
)

SENDER, TEMPLATE = "SMSPNT", "1207161000000000002"
rates = st.sampled_from([0.0, 1.0]) | st.floats(0, 1)
variant_sets = st.fixed_dictionaries({
    "order": st.sampled_from(ORDERS), "number_format": st.sampled_from(NUMBER_FORMATS),
    "report_number_format": st.sampled_from(NUMBER_FORMATS), "omit_rate": rates, "drop_rate": rates,
    "repeat_rate": rates, "text_in_answer": st.booleans(), "code": st.sampled_from(CODES),
    "message_id_type": st.sampled_from(ID_TYPES)})
#: Recipients drawn from a small pool, so the same number often appears twice in one call.
numbers = st.integers(0, 30).map(lambda i: f"91995465{i:04d}")
recipient_lists = st.lists(st.tuples(numbers, st.integers(0, 999)), min_size=1, max_size=40)


def text(n: int) -> str:
    return f"Payment of Rs {n} received for account AC{n}. Thank you. - SMSPNT"


def send_bulk(state: SimState, rows: list[tuple[str, int]]) -> dict[str, Any]:
    recipient = json.dumps([{"number": n, "text": text(t)} for n, t in rows])
    params = {"recipient": recipient, "sender_id": SENDER, "template_id": TEMPLATE, "channel": 1,
              "is_unicode": 0}
    return run(state, "send-bulk-sms", params).body


@settings(max_examples=300, deadline=None)
@given(variants=variant_sets, rows=recipient_lists, seed=st.integers(0, 2**31 - 1))
def test_any_variant_answer_is_true_to_the_ledger(variants: dict[str, Any], rows: list[tuple[str, int]],
                                                  seed: int) -> None:
    """For any variants: only ledger messages are listed, each Number normalises to its recipient, listed +
    omitted = the job in the ledger, dropped ones are absent and uncharged, and the answer still says
    success."""
    state = SimState(SimConfig(seed=seed, variants=variants))
    before = dict(state.credits)
    body = send_bulk(state, rows)
    assert body["status"] == "success"
    data = body["data"]
    job_id = str(data["JobId"])
    ledger = {m.message_id: m for m in state.jobs[job_id]}
    assert state.ledger == state.jobs[job_id]
    listed = data["MessageData"]
    for entry in listed:
        m = ledger[str(entry["message_id"])]
        assert normalize(entry["Number"]) == m.number
        assert ("message" in entry) is variants["text_in_answer"]
        if variants["text_in_answer"]:
            assert entry["message"] == m.text
    listed_ids = [str(e["message_id"]) for e in listed]
    omitted = [mid for mid, m in ledger.items() if m.in_answer == 0]
    assert set(listed_ids) | set(omitted) == set(ledger) and not set(listed_ids) & set(omitted)
    assert len(listed) == sum(m.in_answer for m in ledger.values())
    assert all(listed_ids.count(mid) == m.in_answer for mid, m in ledger.items())
    # dropped: the recipients the request gave beyond what the ledger holds; never charged
    assert 1 <= len(ledger) <= len(rows)
    if variants["drop_rate"] == 0:
        assert [m.number for m in state.ledger] == [n for n, _ in rows]
    charged = sum(m.credits for m in ledger.values())
    assert state.spent["Transactional"] == charged == before["Transactional"] - state.credits["Transactional"]
    assert state.spent["OTP"] == state.spent["Promotional"] == 0


@settings(max_examples=150, deadline=None)
@given(variants=variant_sets, rows=recipient_lists, seed=st.integers(0, 2**31 - 1))
def test_each_variant_is_written_as_it_says(variants: dict[str, Any], rows: list[tuple[str, int]],
                                            seed: int) -> None:
    """Order, Number format, code and id types follow the variant exactly; the same seed gives the same
    answer again."""
    state = SimState(SimConfig(seed=seed, variants=variants))
    body = send_bulk(state, rows)
    again = send_bulk(SimState(SimConfig(seed=seed, variants=variants)), rows)
    assert body == again
    data = body["data"]
    id_type = int if variants["message_id_type"] == "int" else str
    assert isinstance(data["JobId"], id_type)
    assert all(isinstance(e["message_id"], id_type) for e in data["MessageData"])
    assert body.get("code", "absent") == {"int": 200, "str": "200", "absent": "absent"}[variants["code"]]
    ledger_order = [m.message_id for m in state.ledger]
    positions = [ledger_order.index(str(e["message_id"])) for e in data["MessageData"]]
    if variants["order"] == "request":
        assert positions == sorted(positions)
    elif variants["order"] == "reversed":
        assert positions == sorted(positions, reverse=True)
    fmt = variants["number_format"]
    for e in data["MessageData"]:
        number = e["Number"]
        if fmt == "cc":
            assert len(number) == 12 and number.startswith("91")
        elif fmt == "national":
            assert len(number) == 10 and number.isdigit()
        elif fmt == "plus":
            assert len(number) == 13 and number.startswith("+91")


def test_shuffled_order_follows_seed_and_job() -> None:
    """order=shuffled: a permutation of the request order, the same for the same seed and job id, another
    for the next job."""
    rows = [(f"9199546{i:05d}", i) for i in range(50)]

    def orders(seed: int) -> list[list[str]]:
        state = SimState(SimConfig(seed=seed, variants={"order": "shuffled"}))
        answers = [send_bulk(state, rows)["data"]["MessageData"] for _ in range(2)]
        return [[e["Number"] for e in answer] for answer in answers]

    first, second = orders(4)
    request = [n for n, _ in rows]
    assert sorted(first) == sorted(second) == sorted(request)
    assert first != request and second != first
    assert orders(4) == [first, second]


def test_same_number_twice_is_two_messages_with_two_ids() -> None:
    """One number twice in one call (same text, then another text) gives separate messages and ids."""
    state = SimState(SimConfig(seed=3))
    body = send_bulk(state, [("919954654365", 1), ("919954654365", 1), ("919954654365", 2)])
    ids = [e["message_id"] for e in body["data"]["MessageData"]]
    assert len(set(ids)) == 3
    n = "919954654365"
    assert [(m.message_id, m.number, m.text) for m in state.ledger] == [
        (ids[0], n, text(1)), (ids[1], n, text(1)), (ids[2], n, text(2))]
    assert state.spent["Transactional"] == 3


def test_rates_hit_about_their_share_and_are_reproducible() -> None:
    """With 2000 recipients, omit/drop/repeat rates of 0.2 hit about 20 % each (seeded: repeatable)."""
    variants = {"omit_rate": 0.2, "drop_rate": 0.2, "repeat_rate": 0.2}
    rows = [(f"9199546{i:05d}", i) for i in range(2000)]
    state = SimState(SimConfig(seed=9, variants=variants))
    listed = send_bulk(state, rows)["data"]["MessageData"]
    taken = len(state.ledger)
    omitted = sum(m.in_answer == 0 for m in state.ledger)
    repeated = sum(m.in_answer == 2 for m in state.ledger)
    assert 0.15 < 1 - taken / 2000 < 0.25
    assert 0.15 < omitted / taken < 0.25
    assert 0.15 < repeated / (taken - omitted) < 0.25
    assert len(listed) == taken - omitted + repeated
    other = SimState(SimConfig(seed=9, variants=variants))
    send_bulk(other, rows)
    assert [m.number for m in other.ledger] == [m.number for m in state.ledger]


def test_a_call_never_loses_every_recipient() -> None:
    """drop_rate 1 still takes one recipient per call (the first), so the answer's success is not empty."""
    state = SimState(SimConfig(seed=1, variants={"drop_rate": 1.0}))
    body = send_bulk(state, [("919954654301", 1), ("919954654302", 2), ("919954654303", 3)])
    assert [m.number for m in state.ledger] == ["919954654301"]
    assert [e["Number"] for e in body["data"]["MessageData"]] == ["919954654301"]
    assert kept(1.0, 1, "5", [0, 1, 2]) == [True, False, False]
    assert kept(0.0, 1, "5", [0, 1]) == [True, True]


def test_omit_rate_one_lists_nothing_but_charges_all() -> None:
    """omit_rate 1: MessageData is empty while every recipient is in the ledger and charged."""
    state = SimState(SimConfig(seed=1, variants={"omit_rate": 1.0}))
    body = send_bulk(state, [("919954654301", 1), ("919954654302", 2)])
    assert body["data"]["MessageData"] == [] and len(state.ledger) == 2
    assert state.spent["Transactional"] == 2


def test_written_number_formats() -> None:
    """cc, national and plus write 91XXXXXXXXXX as documented; mixed picks one of them by its choice."""
    n = "919954654365"
    assert [written(n, f) for f in ("cc", "national", "plus")] == [n, "9954654365", "+919954654365"]
    assert {written(n, "mixed", c) for c in range(3)} == {n, "9954654365", "+919954654365"}


def test_plain_variants_write_the_documented_entries() -> None:
    """With default variants MessageData is the documentation's Number/message_id/message in request order."""
    class M:
        def __init__(self, i: int) -> None:
            self.number, self.message_id, self.text = f"91995465430{i}", str(100 + i), f"t{i}"

    rows, counts = message_data(Variants(), 1, "7", [M(1), M(2)])
    assert rows == [{"Number": "919954654301", "message_id": "101", "message": "t1"},
                    {"Number": "919954654302", "message_id": "102", "message": "t2"}]
    assert counts == [1, 1]


@pytest.mark.parametrize(("changes", "named"), [
    ({"shade": "x"}, "shade"), ({"order": "sideways"}, "order"), ({"number_format": 91}, "number_format"),
    ({"omit_rate": 1.5}, "omit_rate"), ({"drop_rate": -0.1}, "drop_rate"),
    ({"repeat_rate": True}, "repeat_rate"),
    ({"omit_rate": float("nan")}, "omit_rate"), ({"text_in_answer": "no"}, "text_in_answer"),
    ({"code": 200}, "code"), ({"message_id_type": "float"}, "message_id_type"),
    ({"order": "reversed", "code": "number"}, "code"),
])
def test_bad_variant_values_name_the_key_and_change_nothing(changes: dict[str, Any], named: str) -> None:
    """An unknown key or a bad value raises ValueError naming the key; no other key of the update lands."""
    v = Variants()
    with pytest.raises(ValueError, match=named):
        v.update(changes)
    assert v == Variants()


def test_update_merges_and_clear_returns_to_defaults() -> None:
    """update merges into the current values; clear=True starts again from the defaults."""
    v = Variants()
    v.update({"order": "reversed"})
    v.update({"omit_rate": 0.5})
    assert (v.order, v.omit_rate) == ("reversed", 0.5)
    v.update({"code": "str"}, clear=True)
    assert v == Variants(code="str")


def test_parse_text_gives_typed_values() -> None:
    """``name=value,...`` (dashes allowed in names) parses to typed values; bad ones name their key."""
    assert parse("order=shuffled, omit-rate=0.1,text_in_answer=false,message_id_type=int") == {
        "order": "shuffled", "omit_rate": 0.1, "text_in_answer": False, "message_id_type": "int"}
    assert parse("") == {}
    for bad, named in (("drop_rate=lots", "drop_rate"), ("colour=red", "colour"), ("order", "order"),
                       ("repeat_rate=nan", "repeat_rate"), ("text_in_answer=maybe", "text_in_answer")):
        with pytest.raises(ValueError, match=named):
            parse(bad)
