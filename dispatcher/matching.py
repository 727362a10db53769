"""Pairing the gateway's answers with our messages (pure): one rule for send answers and delivery reports.

The documentation promises nothing about the order or the completeness of ``MessageData`` or of a
report's ``data``, writes numbers with and without the country code, and allows the same number twice in
one call. So an entry is paired with one of our messages by, in this order:

1. its gateway message id (reports only: the send answer is where ids come from);
2. the number, normalised to its ten national digits, and the text (whitespace-insensitive);
3. the number alone, only when every still-unpaired message to that number that the entry's text can be
   (rewritten in case, punctuation or spacing, or truncated; any, when it echoes none) has the same text.

Position decides only among messages that are identical in number and text, which are interchangeable: no
message ever takes an id that belongs to a message with another number or text. An entry that fits
several different messages is *ambiguous* and paired with none; an entry that fits none is *unmatched*.

For a send answer, :func:`account` then says, for each message of the call, whether the answer proves the
gateway took it (``accepted``, with its id when one could be paired), refused it (``failed``, from the
``Rejected`` extension), or does neither (``unconfirmed``: the delivery reports decide).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .numbers import national_key


def text_key(text: str | None) -> str:
    """Texts compared as the gateway may echo them: runs of whitespace are one space, ends trimmed."""
    return " ".join((text or "").split())


class Mine(Protocol):
    """What pairing reads of one of our messages: :class:`Ours`, or a row that has these fields (the
    sender passes the batch's rows as they are, without a copy per recipient)."""

    @property
    def id(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def text(self) -> str: ...


class Entry(Protocol):
    """What pairing reads of one entry of an answer: :class:`Theirs`, or a parsed ``MessageData`` row."""

    @property
    def number(self) -> str | None: ...
    @property
    def text(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Ours:
    """One of our messages in a call or a job."""

    id: str
    number: str
    text: str
    gateway_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Theirs:
    """One entry of a gateway answer (``MessageData`` row, report row); absent fields are None."""

    number: str | None
    text: str | None
    message_id: str | None


@dataclass
class Pairing:
    """Indices into ``ours`` and ``theirs``: each message in at most one pair, each entry too."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    by_id: int = 0  #: pairs made by gateway message id
    ambiguous: list[int] = field(default_factory=list)  #: entries that fit several different messages
    unmatched: list[int] = field(default_factory=list)  #: entries that fit no message
    repeats: int = 0  #: entries dropped because an earlier entry had the same message id


def pair(ours: Sequence[Mine], theirs: Sequence[Entry], *, use_ids: bool = False) -> Pairing:
    """Pair entries with messages (see the module docstring for the rules); ``use_ids`` pairs first by the
    gateway message id our messages already hold (:class:`Ours`)."""
    if not use_ids:
        fast = _in_order(ours, theirs)
        if fast is not None:
            return fast
    return _pair_by_rules(ours, theirs, use_ids=use_ids)


def _in_order(ours: Sequence[Mine], theirs: Sequence[Entry]) -> Pairing | None:
    """The common answer: one entry per message, in our order, each with its message's number and text
    (as sent, or in another form the rules accept), no message id twice. The rules pair it position by
    position (among messages identical in number and text, order decides), so this checks that in one
    pass instead of building their indexes; None when any entry differs."""
    if len(ours) != len(theirs):
        return None
    seen: set[str] = set()
    for m, e in zip(ours, theirs, strict=True):
        if e.text is None or (e.text != m.text and text_key(e.text) != text_key(m.text)):
            return None
        if e.number != m.number and national_key(e.number) != national_key(m.number):
            return None
        if e.message_id:
            if e.message_id in seen:
                return None
            seen.add(e.message_id)
    return Pairing(pairs=[(i, i) for i in range(len(ours))])


def _pair_by_rules(ours: Sequence[Mine], theirs: Sequence[Entry], *, use_ids: bool = False) -> Pairing:
    out = Pairing()
    entries = _distinct(theirs, out)
    free = [True] * len(ours)
    rest = _pair_by_id(ours, theirs, entries, free, out) if use_ids else entries
    by_key: dict[tuple[str, str], deque[int]] = defaultdict(deque)
    by_number: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(ours):
        if free[i]:
            n = national_key(m.number)
            by_key[(n, text_key(m.text))].append(i)
            by_number[n].append(i)
    leftover: list[int] = []
    for j in rest:
        e = theirs[j]
        n = national_key(e.number)
        i = _take(by_key.get((n, text_key(e.text))), free) if n and e.text is not None else -1
        if i >= 0:
            out.pairs.append((i, j))
        else:
            leftover.append(j)
    for j in leftover:
        n = national_key(theirs[j].number)
        candidates = [i for i in by_number.get(n, ()) if free[i]] if n else []
        fitting = [i for i in candidates if _alike(theirs[j].text, ours[i].text)]
        if not candidates:
            out.unmatched.append(j)
        elif fitting and _interchangeable(ours, fitting):
            free[fitting[0]] = False
            out.pairs.append((fitting[0], j))
        else:
            out.ambiguous.append(j)
    return out


def _distinct(theirs: Sequence[Entry], out: Pairing) -> list[int]:
    """Indices of the entries, without those repeating an earlier entry's message id (counted)."""
    seen: set[str] = set()
    entries: list[int] = []
    for j, e in enumerate(theirs):
        if e.message_id:
            if e.message_id in seen:
                out.repeats += 1
                continue
            seen.add(e.message_id)
        entries.append(j)
    return entries


def _pair_by_id(ours: Sequence[Mine], theirs: Sequence[Entry], entries: list[int], free: list[bool],
                out: Pairing) -> list[int]:
    """Pair entries whose message id one of our messages already holds; returns the other entries."""
    by_gmid: dict[str, int] = {}
    for i, m in enumerate(ours):
        gmid = getattr(m, "gateway_message_id", None)
        if gmid:
            by_gmid.setdefault(gmid, i)
    rest: list[int] = []
    for j in entries:
        i = by_gmid.get(theirs[j].message_id or "", -1)
        if i >= 0 and free[i]:
            free[i] = False
            out.pairs.append((i, j))
            out.by_id += 1
        else:
            rest.append(j)
    return rest


def _take(queue: deque[int] | None, free: list[bool]) -> int:
    while queue:
        i = queue.popleft()
        if free[i]:
            free[i] = False
            return i
    return -1


def _alike(echoed: str | None, ours: str) -> bool:
    """Whether an echoed text can be ours as the gateway rewrote it (case, punctuation, spacing, a
    truncated tail); an absent text fits any."""
    if echoed is None:
        return True
    a, b = _letters(echoed), _letters(ours)
    return a == b or (min(len(a), len(b)) >= MIN_PREFIX and (a.startswith(b) or b.startswith(a)))


#: Letters and digits an echoed text must share with ours, from the start, to count as a truncated copy.
MIN_PREFIX = 20


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _interchangeable(ours: Sequence[Mine], idx: Sequence[int]) -> bool:
    """Whether the messages at ``idx`` all have the same text (same number assumed): any may take an id."""
    return len({text_key(ours[i].text) for i in idx}) == 1


# --------------------------------------------------------------------------- send answers


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient refused inside an accepted call (the ``Rejected`` extension)."""

    number: str
    reason: str


@dataclass
class Accounting:
    """What a send answer proves about each message of the call (ids are our message ids)."""

    accepted: list[str] = field(default_factory=list)  #: the gateway took these
    ids: dict[str, str] = field(default_factory=dict)  #: accepted message -> its gateway message id
    failed: dict[str, str] = field(default_factory=dict)  #: refused, with the gateway's reason
    unconfirmed: list[str] = field(default_factory=list)  #: the answer neither lists nor refuses them
    unmatched: int = 0  #: answer entries that fit no message of the call
    ambiguous: int = 0  #: answer entries that fit several different messages
    repeats: int = 0  #: answer entries listed twice


def account(ours: Sequence[Mine], listed: Sequence[Entry] | None,
            refused: Sequence[Refusal] = ()) -> Accounting:
    """Account for every message of a call from the gateway's answer.

    ``listed`` is the answer's ``MessageData`` (None for the documented answer that carries one id for the
    whole call, which accepts every recipient it does not refuse). A message is ``accepted`` when the
    answer lists it, or lists as many entries for its number as we sent to that number (the gateway does
    not invent recipients); ``failed`` when ``Rejected`` names its number and that decides which of our
    messages it means; ``unconfirmed`` otherwise.
    """
    out = Accounting()
    covered = [listed is None] * len(ours)
    by_number: dict[str, list[int]] | None = None
    if listed is not None:
        by_number = _cover_listed(ours, listed, covered, out)
    if refused:
        by_number = by_number if by_number is not None else _by_number(ours)
        refusals: dict[str, list[str]] = defaultdict(list)
        for r in refused:
            refusals[national_key(r.number)].append(r.reason)
        for n, reasons in refusals.items():
            _refuse(ours, [i for i in by_number.get(n, []) if listed is None or not covered[i]], reasons,
                    covered, out, whole_call=listed is None)
    if not out.failed and all(covered):  # the common answer: every message listed (or the one-id answer)
        out.accepted = [m.id for m in ours]
        return out
    for i, m in enumerate(ours):
        if m.id in out.failed:
            continue
        if covered[i]:
            out.accepted.append(m.id)
        else:
            out.unconfirmed.append(m.id)
            out.ids.pop(m.id, None)
    return out


def _by_number(ours: Sequence[Mine]) -> dict[str, list[int]]:
    """Our messages' indexes by national number."""
    by_number: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(ours):
        by_number[national_key(m.number)].append(i)
    return by_number


def _cover_listed(ours: Sequence[Mine], listed: Sequence[Entry], covered: list[bool],
                  out: Accounting) -> dict[str, list[int]] | None:
    """Mark the messages ``MessageData`` accounts for, and record the ids that could be paired. Returns
    our messages by number when it needed them (None when every message was paired)."""
    p = pair(ours, listed)
    out.unmatched, out.ambiguous, out.repeats = len(p.unmatched), len(p.ambiguous), p.repeats
    for i, j in p.pairs:
        covered[i] = True
        mid = listed[j].message_id
        if mid:
            out.ids[ours[i].id] = mid
    if len(p.pairs) == len(ours):
        return None
    by_number = _by_number(ours)
    per_number: dict[str, int] = defaultdict(int)
    for j in (*(j for _, j in p.pairs), *p.ambiguous):
        per_number[national_key(listed[j].number)] += 1
    for n, idx in by_number.items():
        if per_number.get(n, 0) >= len(idx):
            for i in idx:
                covered[i] = True
    return by_number


def _refuse(ours: Sequence[Mine], candidates: list[int], reasons: list[str], covered: list[bool],
            out: Accounting, *, whole_call: bool) -> None:
    """Fail the messages ``Rejected`` names for one number, when that is decidable: as many refusals as
    candidates, or candidates that are interchangeable. Otherwise none is failed and all stay open
    (unconfirmed). In the one-id answer, candidates not refused are accepted."""
    if not candidates:
        return
    for i in candidates:
        covered[i] = False
    if len(reasons) < len(candidates) and not _interchangeable(ours, candidates):
        return
    for i, reason in zip(candidates, reasons, strict=False):
        out.failed[ours[i].id] = reason
    if whole_call:
        for i in candidates[len(reasons):]:
            covered[i] = True
