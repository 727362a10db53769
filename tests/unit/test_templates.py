"""DLT templates: matching texts to {#var#} templates, rendering them, and saying where a text diverges."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import TemplateMismatch, ValidationError
from dispatcher.templates import VAR_MAX, match_template, render_template, variable_count

ORDER = "Dear {#var#}, your order {#var#} is shipped"


def test_match_returns_the_values() -> None:
    """A matching text gives its variable values in order."""
    assert match_template(ORDER, "Dear Ravi, your order 123 is shipped") == ["Ravi", "123"]


def test_other_variable_names_are_variables() -> None:
    """{#numeric#}, {#url#}, {#alphanumeric#} and friends are variables too."""
    template = "OTP {#numeric#} for {#alphanumeric#}, see {#url#} ({#cbn#})"
    assert variable_count(template) == 4
    text = "OTP 482913 for AB12, see https://x.in/a (1800)"
    assert match_template(template, text) == ["482913", "AB12", "https://x.in/a", "1800"]


def test_not_variables_are_fixed_text() -> None:
    """Braces that are not {#name#} are fixed text and must appear literally."""
    template = "Use {code} or {# #} then {#var#}"
    assert variable_count(template) == 1
    assert match_template(template, "Use {code} or {# #} then 42") == ["42"]


def test_multi_word_values_find_an_assignment() -> None:
    """'Hi {#var#} {#var#}' matches multi-word values; the earlier variable takes the shortest value."""
    assert match_template("Hi {#var#} {#var#}", "Hi Ravi Kumar Sharma") == ["Ravi", "Kumar Sharma"]
    values = match_template("Hi {#var#} {#var#}", "Hi " + "a " * 20 + "b")
    assert all(len(v) <= VAR_MAX for v in values)
    assert render_template("Hi {#var#} {#var#}", values) == "Hi " + "a " * 20 + "b"


def test_a_later_split_is_found_when_the_shortest_fails() -> None:
    """When the first space would leave the second value over 30 characters, a later split is used."""
    text = "Hi a " + "b " * 14 + "c" * 10
    values = match_template("Hi {#var#} {#var#}", text)
    assert all(len(v) <= VAR_MAX for v in values)
    assert render_template("Hi {#var#} {#var#}", values) == text


def test_adjacent_variables_split_within_limits() -> None:
    """Two adjacent variables can hold up to 60 characters between them, each at most 30."""
    assert match_template("{#var#}{#var#}", "x" * 45) == ["x" * 15, "x" * 30]
    with pytest.raises(TemplateMismatch, match="variable 2 is 31 characters"):
        match_template("{#var#}{#var#}", "x" * 61)


def test_empty_and_thirty_character_values() -> None:
    """A value may be empty or exactly 30 characters."""
    assert match_template("Code {#var#}.", "Code .") == [""]
    assert match_template("Code {#var#}.", "Code " + "9" * 30 + ".") == ["9" * 30]


def test_values_may_contain_newlines() -> None:
    """Any character (a newline too) can be part of a value."""
    assert match_template("A {#var#} B", "A x\ny B") == ["x\ny"]


def test_template_without_variables() -> None:
    """A template without variables matches only itself."""
    assert variable_count("Thank you") == 0
    assert match_template("Thank you", "Thank you") == []
    with pytest.raises(TemplateMismatch, match='continues after the template ends, at character 10: "!"'):
        match_template("Thank you", "Thank you!")


@pytest.mark.parametrize(("text", "reason"), [
    ("Dear Ravi, your ordr 123 is shipped",
     'fixed text differs at character 20: expected "order", got "ordr"'),
    ("Der Ravi, your order 1 is shipped", 'fixed text differs at character 3: expected "Dear", got "Der"'),
    ("dear Ravi, your order 1 is shipped", 'fixed text differs at character 1: expected "Dear", got "dear"'),
    ("Dear Ravi, your order 1 is shipp",
     'fixed text differs at character 33: expected "shipped", got "shipp" (end of text)'),
    ("Dear Ravi, your order 1 is shipped today",
     'text continues after the template ends, at character 35: " today"'),
    ("Dear Ravi your order 123 is shipped",
     'fixed text ", your order " not found within 30 characters after variable 1'),
    ("Dear " + "x" * 41 + ", your order 1 is shipped", "variable 1 is 41 characters; DLT allows at most 30"),
    ("Dear Ravi, your order " + "1" * 31 + " is shipped",
     "variable 2 is 31 characters; DLT allows at most 30"),
    ("Dear Ravi,  your order 1 is shipped",
     'fixed text differs at character 12: expected "your", got " your"'),
])
def test_mismatch_reasons_say_where(text: str, reason: str) -> None:
    """Each mismatch names the character (1-based) and what was expected, or the variable that is too long."""
    with pytest.raises(TemplateMismatch) as info:
        match_template(ORDER, text)
    assert info.value.reason.startswith(reason), info.value.reason
    assert isinstance(info.value, ValidationError) and info.value.field == "text"


def test_last_variable_too_long() -> None:
    """A final variable over 30 characters is reported by its length."""
    with pytest.raises(TemplateMismatch, match="variable 1 is 31 characters; DLT allows at most 30$"):
        match_template("Code {#numeric#}", "Code " + "1" * 31)


def test_pathological_template_is_fast() -> None:
    """Eight space-separated variables against a non-matching text fail in well under a second."""
    template = " ".join(["{#var#}"] * 8) + "."
    text = " ".join(["a"] * 60) + "!"
    started = time.perf_counter()
    with pytest.raises(TemplateMismatch):
        match_template(template, text)
    assert time.perf_counter() - started < 1.0


def test_render_fills_in_order() -> None:
    """render_template puts the values in the variables in order."""
    assert render_template(ORDER, ["Ravi", "123"]) == "Dear Ravi, your order 123 is shipped"
    assert render_template("No vars", []) == "No vars"


@pytest.mark.parametrize(("values", "reason"), [
    (["Ravi"], "template has 2 variables, got 1 values"),
    (["Ravi", "1", "2"], "template has 2 variables, got 3 values"),
    (["Ravi", "x" * 31], "variable 2 is 31 characters; DLT allows at most 30"),
    (["Ravi", 123], "variable 2 must be text, got int"),
    ("ab", "values must be a sequence of strings"),
])
def test_render_refuses_bad_values(values: object, reason: str) -> None:
    """Wrong count, over-long values, non-strings and a bare string are refused."""
    with pytest.raises(TemplateMismatch, match=reason):
        render_template(ORDER, values)  # type: ignore[arg-type]


VALUE = st.text(st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=VAR_MAX)
FIXED = st.text(st.characters(exclude_characters="{}#", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(FIXED, VALUE), max_size=6), FIXED)
def test_render_then_match_round_trips(pieces: list[tuple[str, str]], tail: str) -> None:
    """render then match finds values (each <= 30) that render back to the same text."""
    template = "".join(fixed + "{#var#}" for fixed, _ in pieces) + tail
    values = [value for _, value in pieces]
    text = render_template(template, values)
    found = match_template(template, text)
    assert len(found) == variable_count(template) == len(values)
    assert all(len(v) <= VAR_MAX for v in found)
    assert render_template(template, found) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("abc XYZ019", max_size=VAR_MAX), min_size=1, max_size=5))
def test_distinct_separators_recover_exact_values(values: list[str]) -> None:
    """With separators that cannot occur in the values, match returns exactly the rendered values."""
    template = "Start|" + "|".join(f"<{i}>{{#var#}}" for i in range(len(values))) + "|end"
    assert match_template(template, render_template(template, values)) == values


@settings(max_examples=200, deadline=None)
@given(st.text("ab {}#", max_size=40), st.text("ab ", max_size=80))
def test_match_either_succeeds_correctly_or_raises(template: str, text: str) -> None:
    """On arbitrary input, match returns values that render back to the text or raises TemplateMismatch."""
    try:
        values = match_template(template, text)
    except TemplateMismatch as exc:
        assert exc.reason
        return
    assert render_template(template, values) == text
