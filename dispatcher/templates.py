"""DLT template matching (India): fixed text exact, each ``{#var#}`` value 0..30 characters (pure).

Typed variables (``{#numeric#}``, ``{#alphanumeric#}``, ``{#url#}``, ``{#urlott#}``, ``{#cbn#}``,
``{#email#}``) also take only values of their type (KINDS); any other name is an untyped ``{#var#}``.

Matching is a small dynamic programme over text positions (the set of places each variable can end),
not a backtracking regex: a backtracking regex is exponential on templates such as
``{#var#} {#var#} {#var#} ...`` when the text does not match, and texts come from API callers.
It finds an assignment whenever one exists; with several, earlier variables take the shortest values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from os.path import commonprefix

from dispatcher.errors import TemplateMismatch

#: DLT allows at most this many characters in one variable's value.
VAR_MAX = 30
#: A variable: {#var#}, and the other DLT names such as {#numeric#}, {#url#}, {#alphanumeric#}.
VARIABLE = re.compile(r"\{#([A-Za-z0-9_]+)#\}")

_URL = r"(?:https?://)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?::[0-9]{1,5})?(?:[/?#]\S*)?"
#: Typed variables: name -> (what a value must be, the rule in words). Values are also at most VAR_MAX.
KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "numeric": (re.compile(r"[0-9]+(?:[.,][0-9]+)*"), "digits (with , or . between them)"),
    "alphanumeric": (re.compile(r"[^\W_]+"), "letters and digits only"),
    "url": (re.compile(_URL, re.I), "a URL such as https://example.in/path"),
    "urlott": (re.compile(_URL, re.I), "a URL such as https://example.in/path"),
    "cbn": (re.compile(r"\+?[0-9](?:[0-9 -]*[0-9])?"), "a call-back number (3-15 digits, + - and spaces)"),
    "email": (re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}"), "an e-mail address"),
}
#: Kinds whose values must be on the account's whitelist (dispatcher.links).
URL_KINDS = frozenset({"url", "urlott"})
CBN_KINDS = frozenset({"cbn"})


@dataclass(frozen=True, slots=True)
class Slot:
    """One variable's value in a matched text: its number (1-based), kind, and place in the text."""

    index: int
    kind: str  #: "var" for untyped variables
    start: int  #: 0-based offset of the value in the text
    value: str


def kind_error(kind: str, value: str) -> str | None:
    """Why ``value`` is not of ``kind`` (the rule in words), or None when it is (or the kind is untyped)."""
    rule = KINDS.get(kind)
    if rule is None:
        return None
    if kind == "cbn" and not 3 <= sum(c.isdigit() for c in value) <= 15:
        return rule[1]
    return None if rule[0].fullmatch(value) else rule[1]


@lru_cache(maxsize=4096)
def _segments(template_text: str) -> tuple[str, ...]:
    """The template's fixed texts around its variables (one more than the variables)."""
    return tuple(VARIABLE.split(template_text)[::2])


@lru_cache(maxsize=4096)
def variable_kinds(template_text: str) -> tuple[str, ...]:
    """Each variable's kind, in order: a KINDS name, or "var" for untyped variables."""
    return tuple(k if k in KINDS else "var" for k in (m.lower() for m in VARIABLE.findall(template_text)))


def variable_count(template_text: str) -> int:
    """How many variables the template has."""
    return len(_segments(template_text)) - 1


def render_template(template_text: str, values: Sequence[str]) -> str:
    """Fill the variables in order; TemplateMismatch on a wrong count or a value over 30 characters."""
    fixed = _segments(template_text)
    if isinstance(values, str):
        raise TemplateMismatch("values must be a sequence of strings, not one string")
    if len(values) != len(fixed) - 1:
        raise TemplateMismatch(f"template has {len(fixed) - 1} variables, got {len(values)} values")
    out = [fixed[0]]
    at = len(fixed[0])
    for i, (value, after, kind) in enumerate(zip(values, fixed[1:], variable_kinds(template_text),
                                                 strict=True), 1):
        if not isinstance(value, str):
            raise TemplateMismatch(f"variable {i} must be text, got {type(value).__name__}")
        if len(value) > VAR_MAX:
            raise TemplateMismatch(_too_long(i, len(value)))
        rule = kind_error(kind, value)
        if rule is not None:
            raise TemplateMismatch(_wrong_kind(Slot(i, kind, at, value), rule))
        out += (value, after)
        at += len(value) + len(after)
    return "".join(out)


def match_template(template_text: str, text: str) -> list[str]:
    """Return the variable values that turn the template into `text`; TemplateMismatch says where not."""
    return [slot.value for slot in match_slots(template_text, text)]


def match_slots(template_text: str, text: str) -> list[Slot]:
    """The variables' values (with kind and position) that turn the template into `text`.

    Every value is at most 30 characters and of its variable's kind. When no such assignment exists,
    TemplateMismatch says where: the fixed text that differs, or the first value that is too long or
    not of its kind (in the assignment found without the kinds)."""
    kinds = variable_kinds(template_text)
    if all(k == "var" for k in kinds):
        return _spans(template_text, text, kinds, typed=False)
    try:
        return _spans(template_text, text, kinds, typed=True)
    except TemplateMismatch:
        slots = _spans(template_text, text, kinds, typed=False)  # raises the fixed-text / length reason
        for slot in slots:
            rule = kind_error(slot.kind, slot.value)
            if rule is not None:
                raise TemplateMismatch(_wrong_kind(slot, rule)) from None
        raise


def _spans(template_text: str, text: str, kinds: tuple[str, ...], *, typed: bool) -> list[Slot]:
    fixed = _segments(template_text)
    head, n = fixed[0], len(text)
    if not text.startswith(head):
        raise TemplateMismatch(_differs(head, text, 0, len(commonprefix([head, text[:len(head)]]))))
    if len(fixed) == 1:
        if n > len(head):
            raise TemplateMismatch(_continues(text, len(head)))
        return []
    steps: list[dict[int, int]] = []  # per variable: position after its fixed text -> where it started
    starts = [len(head)]
    for i, after in enumerate(fixed[1:], 1):
        ends = _ends(text, after, starts, kinds[i - 1] if typed else "var", last=i == len(fixed) - 1)
        if not ends:
            raise TemplateMismatch(_diagnose(text, after, starts, i, last=i == len(fixed) - 1))
        steps.append(ends)
        starts = sorted(ends)
    slots: list[Slot] = []
    end = n
    for i, (after, ends) in enumerate(zip(reversed(fixed[1:]), reversed(steps), strict=True)):
        start = ends[end]
        number = len(steps) - i
        slots.append(Slot(number, kinds[number - 1], start, text[start:end - len(after)]))
        end = start
    slots.reverse()
    return slots


def _ends(text: str, after: str, starts: list[int], kind: str, *, last: bool) -> dict[int, int]:
    """Where a variable (of ``kind``) and the fixed text after it can end, for each of its ``starts``:
    end -> the earliest start that reaches it."""
    ends: dict[int, int] = {}
    n, size = len(text), len(after)
    if last:
        q = n - size
        for p in starts:
            if p <= q <= p + VAR_MAX and text.endswith(after) and not kind_error(kind, text[p:q]):
                ends.setdefault(n, p)
        return ends
    for p in starts:
        limit = min(p + VAR_MAX, n - size) + size
        q = text.find(after, p, limit)
        while q != -1:
            if not kind_error(kind, text[p:q]):
                ends.setdefault(q + size, p)
            q = text.find(after, q + 1, limit)
    return ends


def _diagnose(text: str, after: str, starts: list[int], i: int, *, last: bool) -> str:
    """Why variable `i` and the fixed text after it cannot follow any of `starts`."""
    n = len(text)
    lengths = []
    for p in starts:
        q = (n - len(after) if text.endswith(after) else -1) if last else text.find(after, p)
        if q >= p:
            lengths.append(q - p)
    if lengths:
        return _too_long(i, min(lengths))
    best_c, best_q = -1, starts[0]
    for p in starts:
        for q in range(p, min(p + VAR_MAX, n) + 1):
            c = len(commonprefix([after, text[q:q + len(after)]]))
            if c > best_c:
                best_c, best_q = c, q
    if last and best_c == len(after):
        return _continues(text, best_q + best_c)
    if best_c == 0:
        return (f"fixed text {_quote(after[:20])} not found within {VAR_MAX} characters after "
                f"variable {i} (which starts at character {starts[0] + 1})")
    return _differs(after, text, best_q, best_c)


def _differs(fixed: str, text: str, q: int, c: int) -> str:
    """'fixed text differs at character N: expected "word", got "wrod"' for a mismatch at text[q + c]."""
    lo = c
    while lo > 0 and not fixed[lo - 1].isspace() and c - lo < 10:
        lo -= 1
    expected = _word(fixed, lo, c)
    got = _word(text, q + lo, q + c)
    tail = " (end of text)" if q + c >= len(text) else ""
    return (f"fixed text differs at character {q + c + 1}: expected {_quote(expected)}, "
            f"got {_quote(got)}{tail}")


def _word(s: str, lo: int, c: int) -> str:
    """s[lo:] up to the first whitespace after position c (at most 20 characters)."""
    hi = c + 1
    while hi < len(s) and not s[hi].isspace() and hi - lo < 20:
        hi += 1
    return s[lo:hi]


def _continues(text: str, end: int) -> str:
    return f"text continues after the template ends, at character {end + 1}: {_quote(text[end:end + 20])}"


def _wrong_kind(slot: Slot, rule: str) -> str:
    """'variable 2 {#numeric#} at character 14: "12a" is not digits (...)'."""
    return (f"variable {slot.index} {{#{slot.kind}#}} at character {slot.start + 1}: {_quote(slot.value)} "
            f"is not {rule}")


def _too_long(i: int, length: int) -> str:
    return f"variable {i} is {length} characters; DLT allows at most {VAR_MAX}"


def _quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)
