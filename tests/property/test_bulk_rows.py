"""The per-row extras of a bulk enqueue (dispatcher.bulkrows, pure): which keys are accepted, and that only
the first row of each key in a request passes, every later one being refused with the first row's index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.bulkrows import LONGEST_KEY, check_key, extras, repeated
from dispatcher.errors import ValidationError


@given(st.text(min_size=1, max_size=LONGEST_KEY).filter(
    lambda k: "\x00" not in k and not any("\ud800" <= c <= "\udfff" for c in k)))
def test_keys_of_1_to_200_clean_characters_are_accepted_as_given(key: str) -> None:
    """A key of 1-200 characters without NUL or lone surrogates comes back unchanged."""
    assert check_key(key) == key
    assert extras({"idempotency_key": key}) == (key, None)


@given(st.one_of(st.just(""), st.text(min_size=LONGEST_KEY + 1, max_size=LONGEST_KEY + 20),
                 st.text(max_size=10).map(lambda k: k + "\x00"), st.just("a\ud800"),
                 st.integers(), st.lists(st.text(), max_size=2)))
def test_other_keys_are_refused_naming_the_field(key: object) -> None:
    """Empty, too long, NUL, lone surrogate or not a string: ValidationError on idempotency_key."""
    with pytest.raises(ValidationError) as info:
        extras({"idempotency_key": key, "number": "1", "text": "t"})
    assert info.value.field == "idempotency_key"


@given(st.lists(st.sampled_from("abcde"), max_size=30))
def test_only_the_first_row_of_each_key_passes(keys: list[str]) -> None:
    """Row i passes iff no earlier row gave its key; a refusal names the first row that did."""
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        reason = repeated(seen, k, i)
        first = keys.index(k)
        if first == i:
            assert reason is None
        else:
            assert reason is not None and f"row {first} " in reason


def test_tuple_rows_have_no_extras_and_metadata_must_be_an_object() -> None:
    """(number, text) rows carry neither key nor metadata; metadata that is no mapping is refused."""
    assert extras(("9199", "hi")) == (None, None)
    assert extras({"metadata": {"a": 1}}) == (None, {"a": 1})
    with pytest.raises(ValidationError) as info:
        extras({"metadata": "x"})
    assert info.value.field == "metadata"
