"""Pairing gateway answers with our messages (dispatcher.matching), over every answer the documentation
allows: MessageData in any order, entries left out or listed twice, numbers with and without 91 / +91,
texts echoed or not (or rewritten in case and punctuation), recipients refused or silently not taken.

Messages with the same number and text are interchangeable (nothing in any answer can tell them apart), so
"never crossed" means: an id only ever goes to a message with the same number and text as the message the
gateway gave it to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.gateway import DeliveryEntry
from dispatcher.matching import Ours, Refusal, Theirs, account, pair, text_key
from dispatcher.numbers import national_key
from dispatcher.reports import Candidate, match

NATIONAL = ["9954654365", "9000000001", "8123456789"]
TEXTS = ["Your OTP is 1234", "your otp is 1234.", "Order 12 shipped", "Order 12 shipped today - SMSPNT"]
FORMATS = [lambda n: "91" + n, lambda n: n, lambda n: "+91" + n, lambda n: "+91 " + n[:5] + " " + n[5:],
           lambda n: int("91" + n)]


@dataclass
class Call:
    """One gateway call as the gateway saw it, and its answer."""

    ours: list[Ours]
    owner: dict[str, int]  #: gateway id -> index of the message it was given to
    taken: list[int]
    refused: list[int]
    listed: list[Theirs]
    refusals: list[Refusal]


def klass(m: Ours) -> tuple[str, str]:
    return national_key(m.number), text_key(m.text)


@st.composite
def calls(draw: st.DrawFn, *, full: bool = False) -> Call:
    n = draw(st.integers(1, 12))
    ours = [Ours(f"m{i}", "91" + draw(st.sampled_from(NATIONAL)), draw(st.sampled_from(TEXTS)))
            for i in range(n)]
    fate = [draw(st.sampled_from(["listed"] if full else ["listed", "listed", "omitted", "dropped",
                                                          "refused"]))
            for _ in range(n)]
    taken = [i for i in range(n) if fate[i] in ("listed", "omitted")]
    owner = {f"g{i}": i for i in taken}
    echo = draw(st.sampled_from(["always", "never", "mixed"]))
    listed: list[Theirs] = []
    for i in (i for i in range(n) if fate[i] == "listed"):
        fmt = draw(st.sampled_from(FORMATS))
        with_text = echo == "always" or (echo == "mixed" and draw(st.booleans()))
        text = ours[i].text if not with_text or not draw(st.booleans()) else ours[i].text.upper()
        listed.append(Theirs(str(fmt(national_key(ours[i].number))), text if with_text else None, f"g{i}"))
        if not full and draw(st.integers(0, 4)) == 0:
            listed.append(listed[-1])  # the same entry twice
    listed = draw(st.permutations(listed))
    refused = [i for i in range(n) if fate[i] == "refused"]
    refusals = [Refusal(str(draw(st.sampled_from(FORMATS))(national_key(ours[i].number))), f"bad {i}")
                for i in refused]
    return Call(ours, owner, taken, refused, list(listed), refusals)


def assert_true_record(call: Call, acc_ids: dict[str, str], accepted: list[str], failed: dict[str, str],
                       unconfirmed: list[str]) -> None:
    by_id = {m.id: m for m in call.ours}
    assert sorted([*accepted, *failed, *unconfirmed]) == sorted(by_id), "each message in exactly one bucket"
    assert len(set(acc_ids.values())) == len(acc_ids), "an id given twice"
    for mid, gid in acc_ids.items():
        assert mid in accepted
        assert klass(by_id[mid]) == klass(call.ours[call.owner[gid]]), f"{mid} holds another's id {gid}"
    taken = Counter(klass(call.ours[i]) for i in call.taken)
    refused = Counter(klass(call.ours[i]) for i in call.refused)
    for k, count in Counter(klass(by_id[m]) for m in accepted).items():
        assert count <= taken[k], f"{count} accepted of {k}, the gateway took {taken[k]}"
    for k, count in Counter(klass(by_id[m]) for m in failed).items():
        assert count <= refused[k], f"{count} failed of {k}, the gateway refused {refused[k]}"


@settings(max_examples=400, deadline=None)
@given(calls())
def test_a_send_answer_never_crosses_ids_nor_calls_untaken_messages_sent(call: Call) -> None:
    """Any order, omission, repetition, number format or text echo: ids stay with their messages, and no
    more messages are accepted (or failed) than the gateway took (or refused)."""
    acc = account(call.ours, call.listed, call.refusals)
    assert_true_record(call, acc.ids, acc.accepted, acc.failed, acc.unconfirmed)


@settings(max_examples=200, deadline=None)
@given(calls(full=True))
def test_a_complete_answer_accounts_for_every_message(call: Call) -> None:
    """When the answer lists every recipient (in any order and number format), all are accepted, and
    every one gets an id when the answer echoes the texts as sent."""
    acc = account(call.ours, call.listed)
    assert sorted(acc.accepted) == sorted(m.id for m in call.ours) and not acc.unconfirmed
    assert_true_record(call, acc.ids, acc.accepted, acc.failed, acc.unconfirmed)
    if all(e.text == call.ours[call.owner[e.message_id]].text for e in call.listed if e.message_id):
        assert len(acc.ids) == len(call.ours)


@settings(max_examples=200, deadline=None)
@given(calls())
def test_the_one_id_answer_accepts_all_but_the_refused(call: Call) -> None:
    """The documented answer with one id for the whole call lists nobody: every message not refused is
    accepted, refused ones fail only where the refusal decides which message it means."""
    acc = account(call.ours, None, call.refusals)
    assert not acc.ids
    refused_numbers = {national_key(call.ours[i].number) for i in call.refused}
    for m in call.ours:
        if national_key(m.number) not in refused_numbers:
            assert m.id in acc.accepted
    by_id = {m.id: m for m in call.ours}
    refused = Counter(klass(call.ours[i]) for i in call.refused)
    for k, count in Counter(klass(by_id[m]) for m in acc.failed).items():
        assert count <= refused[k]


@settings(max_examples=300, deadline=None)
@given(calls(), st.data())
def test_reports_never_pair_an_entry_with_another_message(call: Call, data: st.DataObject) -> None:
    """A report (any order, some ids known from the send answer, numbers in any format, content echoed or
    rewritten) pairs each entry only with its own message or one identical to it."""
    known = {i: gid for gid, i in call.owner.items() if data.draw(st.booleans())}
    candidates = [Candidate(m.id, m.number, m.text, known.get(i)) for i, m in enumerate(call.ours)]
    def entry(gid: str, m: Ours) -> DeliveryEntry:
        number = str(data.draw(st.sampled_from(FORMATS))(national_key(m.number)))
        content = data.draw(st.sampled_from([m.text, m.text.upper(), None]))
        return DeliveryEntry(number, gid if data.draw(st.booleans()) else None, "Delivered", None, content)

    rows = [(i, entry(gid, call.ours[i])) for gid, i in call.owner.items()]
    rows = data.draw(st.permutations(rows))
    result = match([e for _, e in rows], candidates)
    owner_of = {id(e): i for i, e in rows}
    by_id = {m.id: m for m in call.ours}
    assert len({c.id for c, _ in result.pairs}) == len(result.pairs), "a message paired twice"
    for cand, got in result.pairs:
        owner = call.ours[owner_of[id(got)]]
        assert klass(by_id[cand.id]) == klass(owner), f"{cand.id} took another's entry"


def test_duplicate_numbers_in_reordered_answers_keep_their_own_ids() -> None:
    """The case seen in production: one number twice in a call, MessageData reversed; the texts decide."""
    ours = [Ours("a", "919954654365", "Order 1 shipped"), Ours("b", "919954654365", "Order 2 shipped")]
    listed = [Theirs("9954654365", "Order 2 shipped", "g2"), Theirs("9954654365", "Order 1 shipped", "g1")]
    acc = account(ours, listed)
    assert acc.ids == {"a": "g1", "b": "g2"} and sorted(acc.accepted) == ["a", "b"]


def test_without_echoed_texts_two_different_messages_to_one_number_get_no_guessed_id() -> None:
    """No text in the answer and two different texts to one number: both accepted, neither given an id
    (the delivery reports' content pairs them later)."""
    ours = [Ours("a", "919954654365", "Order 1 shipped"), Ours("b", "919954654365", "Order 2 shipped")]
    listed = [Theirs("9954654365", None, "g2"), Theirs("919954654365", None, "g1")]
    acc = account(ours, listed)
    assert acc.ids == {} and sorted(acc.accepted) == ["a", "b"] and acc.ambiguous == 2


def test_a_recipient_missing_from_a_success_answer_is_unconfirmed() -> None:
    """A success answer listing 2 of 3 recipients: the third is neither sent nor failed."""
    ours = [Ours("a", "919000000001", "x"), Ours("b", "919000000002", "y"), Ours("c", "919000000003", "z")]
    listed = [Theirs("+919000000002", "y", "g2"), Theirs("9000000001", "x", "g1")]
    acc = account(ours, listed)
    assert acc.accepted == ["a", "b"] and acc.unconfirmed == ["c"] and acc.ids == {"a": "g1", "b": "g2"}


def test_pairing_counts_repeats_and_strangers() -> None:
    """An entry listed twice is counted once; an entry for a number we did not send to is unmatched."""
    ours = [Ours("a", "919000000001", "x")]
    p = pair(ours, [Theirs("9000000001", "x", "g1"), Theirs("9000000001", "x", "g1"),
                    Theirs("9000000009", "x", "g9")])
    assert p.pairs == [(0, 0)] and p.repeats == 1 and p.unmatched == [2]


def _same(a, b) -> bool:
    return (sorted(a.pairs), sorted(a.ambiguous), sorted(a.unmatched), a.repeats, a.by_id) == \
        (sorted(b.pairs), sorted(b.ambiguous), sorted(b.unmatched), b.repeats, b.by_id)


@given(calls())
def test_the_in_order_shortcut_never_changes_a_pairing(call: Call) -> None:
    """Whatever the answer (reordered, partial, repeated, texts absent or rewritten), pair() gives what the
    rules alone give."""
    from dispatcher.matching import _pair_by_rules

    assert _same(pair(call.ours, call.listed), _pair_by_rules(call.ours, call.listed))


@given(calls(full=True), st.data())
def test_an_answer_in_our_order_is_paired_position_by_position(call: Call, data: st.DataObject) -> None:
    """The common answer (every recipient, in our order, numbers in any documented form, texts with other
    spacing) takes the shortcut, and the shortcut agrees with the rules."""
    from dispatcher.matching import _in_order, _pair_by_rules

    listed = [Theirs(data.draw(st.sampled_from(FORMATS))(national_key(m.number)),
                     data.draw(st.sampled_from([m.text, f"  {m.text} ", m.text.replace(" ", "  ")])), f"g{i}")
              for i, m in enumerate(call.ours)]
    fast = _in_order(call.ours, listed)
    assert fast is not None and fast.pairs == [(i, i) for i in range(len(call.ours))]
    assert _same(fast, _pair_by_rules(call.ours, listed))
    assert _in_order(call.ours, listed[:-1]) is None  # one missing: the rules decide
