"""DLT template matching (India): fixed text exact, each ``{#var#}`` value 0..30 characters (pure).

Matching is a small dynamic programme over text positions (the set of places each variable can end),
not a backtracking regex: a backtracking regex is exponential on templates such as
``{#var#} {#var#} {#var#} ...`` when the text does not match, and texts come from API callers.
It finds an assignment whenever one exists; with several, earlier variables take the shortest values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from os.path import commonprefix

from dispatcher.errors import TemplateMismatch

#: DLT allows at most this many characters in one variable's value.
VAR_MAX = 30
#: A variable: {#var#}, and the other DLT names such as {#numeric#}, {#url#}, {#alphanumeric#}.
VARIABLE = re.compile(r"\{#[A-Za-z0-9_]+#\}")


@lru_cache(maxsize=4096)
def _segments(template_text: str) -> tuple[str, ...]:
    """The template's fixed texts around its variables (one more than the variables)."""
    return tuple(VARIABLE.split(template_text))


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
    for i, (value, after) in enumerate(zip(values, fixed[1:], strict=True), 1):
        if not isinstance(value, str):
            raise TemplateMismatch(f"variable {i} must be text, got {type(value).__name__}")
        if len(value) > VAR_MAX:
            raise TemplateMismatch(_too_long(i, len(value)))
        out += (value, after)
    return "".join(out)


def match_template(template_text: str, text: str) -> list[str]:
    """Return the variable values that turn the template into `text`; TemplateMismatch says where not."""
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
        ends: dict[int, int] = {}
        size = len(after)
        if i == len(fixed) - 1:
            q = n - size
            for p in starts:
                if p <= q <= p + VAR_MAX and text.endswith(after):
                    ends.setdefault(n, p)
        else:
            for p in starts:
                limit = min(p + VAR_MAX, n - size) + size
                q = text.find(after, p, limit)
                while q != -1:
                    ends.setdefault(q + size, p)
                    q = text.find(after, q + 1, limit)
        if not ends:
            raise TemplateMismatch(_diagnose(text, after, starts, i, last=i == len(fixed) - 1))
        steps.append(ends)
        starts = sorted(ends)
    values: list[str] = []
    end = n
    for after, ends in zip(reversed(fixed[1:]), reversed(steps), strict=True):
        start = ends[end]
        values.append(text[start:end - len(after)])
        end = start
    values.reverse()
    return values


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


def _too_long(i: int, length: int) -> str:
    return f"variable {i} is {length} characters; DLT allows at most {VAR_MAX}"


def _quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)
