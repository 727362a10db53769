"""Cost preview arithmetic (pure): credits, parts histogram, refusals, UCS-2 rows, smart-encoding savings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.errors import RowError
from dispatcher.estimate import Tally
from dispatcher.segments import GSM7_BASIC, first_ucs2, measure, smart_encode

GSM_TEXT = st.text(st.sampled_from(sorted(set(GSM7_BASIC) - {"\n", "\r"})), min_size=1, max_size=700)


def test_first_ucs2_names_the_character_and_its_position() -> None:
    """The first character outside GSM-7 (basic or extension) is reported 1-based; GSM-7 texts give None."""
    assert first_ucs2("Pay Rs 500 [now] €") is None
    assert first_ucs2("Pay ₹500 “now”") == (5, "₹")


@given(st.text(st.sampled_from("abc {}€"), max_size=50), st.sampled_from("₹“अ😀"), st.text(max_size=20))
def test_first_ucs2_is_the_first_non_gsm_character(prefix: str, char: str, rest: str) -> None:
    """After any GSM-7 prefix, the first non-GSM character is found at len(prefix) + 1."""
    assert first_ucs2(prefix + char + rest) == (len(prefix) + 1, char)


@given(st.lists(st.one_of(GSM_TEXT.map(lambda t: ("ok", t)), st.just(("bad", ""))), max_size=40),
       st.integers(min_value=0, max_value=10_000))
def test_totals_add_up(rows: list[tuple[str, str]], balance: int) -> None:
    """accepted + refused = rows; credits = sum of parts x messages; balance after = balance - credits."""
    tally = Tally("transactional", "Transactional", smart_encoding=False)
    for i, (kind, text) in enumerate(rows):
        if kind == "bad":
            tally.refuse(RowError(i, "to", "not a phone number: 12"))
        else:
            m = measure(text)
            tally.accept(i, text, m, m)
    est = tally.result(balance)
    assert est.accepted + est.refused_count == est.rows == len(rows)
    assert est.credits == sum(p * n for p, n in est.parts.items())
    assert est.balance_after == balance - est.credits
    assert sum(est.refused_by_reason.values()) == est.refused_count
    assert est.ucs2_count == 0 and est.smart_saving == 0


def test_ucs2_rows_and_smart_savings_are_reported() -> None:
    """A curly-quote text is UCS-2 at its quote and would save a credit with smart encoding; with smart
    encoding on, the saving is what it saved."""
    text = "“Sale” " + "x" * 100
    m = measure(text)
    off = Tally("promotional", "Promotional", smart_encoding=False)
    off.accept(0, text, m, m)
    est = off.result(None)
    assert (est.ucs2_count, est.ucs2[0].position, est.ucs2[0].code_point) == (1, 1, "U+201C")
    assert est.smart_saving == m.credits - 1 == 1 and est.balance_after is None
    on = Tally("promotional", "Promotional", smart_encoding=True)
    sent = smart_encode(text)
    on.accept(0, sent, measure(sent), m)
    assert on.result(5).smart_saving == 1 and on.result(5).ucs2_count == 0
