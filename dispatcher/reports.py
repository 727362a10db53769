"""Delivery reports (pure): the gateway's status names, matching report entries to our messages, and the
polling schedule. No database, Redis or HTTP here; :mod:`dispatcher.sync` does the I/O.

The gateway documents four statuses (any casing is accepted)::

    Sent         message accepted, no report yet             -> stays `sent`
    Delivered    delivered to the handset                    -> `delivered`   (final)
    UnDelivered  not delivered (DND, absent subscriber...)   -> `undelivered` (final)
    Expired      "Message pending, the message is en route"  -> stays `sent` (the documentation's words)

Anything else is stored verbatim in ``status_raw`` and counted; the message's state is left alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from .gateway import DeliveryEntry
from .states import FINAL, State, can_move


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one gateway status means for a message."""

    state: State | None  #: the state the message moves to; None for a status we do not know
    final: bool

    @property
    def known(self) -> bool:
        return self.state is not None


#: The one status table: gateway status name (lower case, letters only) -> meaning.
STATUS_MAP: dict[str, Mapped] = {
    "sent": Mapped(State.SENT, False),
    "delivered": Mapped(State.DELIVERED, True),
    "undelivered": Mapped(State.UNDELIVERED, True),
    "expired": Mapped(State.SENT, False),  # "Message pending, the message is en route"
}
UNKNOWN_STATUS = Mapped(None, False)


def status_key(raw: str | None) -> str:
    """'UnDelivered', 'UNDELIVERED', ' un-delivered ' -> 'undelivered'."""
    return "".join(ch for ch in (raw or "").lower() if ch.isalpha())


@lru_cache(maxsize=1024)
def map_status(raw: str | None) -> Mapped:
    """The meaning of a gateway status name, in any casing; UNKNOWN_STATUS when not in the table."""
    return STATUS_MAP.get(status_key(raw), UNKNOWN_STATUS)


# --------------------------------------------------------------------------- matching


def number_key(number: str | None) -> str:
    """The last 10 digits: reports drop the '91' our rows carry ('919954654365' ~ '9954654365')."""
    digits = "".join(ch for ch in str(number or "") if ch.isdigit())
    return digits[-10:]


def _text_key(text: str | None) -> str:
    return " ".join((text or "").split())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of our messages in a job, as matching needs it."""

    id: str
    number: str
    text: str
    gateway_message_id: str | None
    state: str = State.SENT.value
    status_raw: str | None = None
    status_remark: str | None = None


@dataclass
class Matching:
    """Report entries paired with our messages; ``unmatched`` entries fit no message of the job."""

    pairs: list[tuple[Candidate, DeliveryEntry]] = field(default_factory=list)
    unmatched: list[DeliveryEntry] = field(default_factory=list)
    by_fallback: int = 0  #: pairs found by number (and text) rather than by gateway message id


def match(entries: Iterable[DeliveryEntry], messages: Sequence[Candidate]) -> Matching:
    """Pair entries with messages: by gateway message id, else by number and text, else by number alone.

    Each message takes at most one entry (the first that fits); an entry whose id we do not know (e.g. the
    send answer carried no per-recipient ids) falls back to number and text.
    """
    out = Matching()
    by_id = {m.gateway_message_id: m for m in messages if m.gateway_message_id}
    taken: set[str] = set()
    rest: list[DeliveryEntry] = []
    for entry in entries:
        m = by_id.get(entry.message_id or "")
        if m is not None and m.id not in taken:
            taken.add(m.id)
            out.pairs.append((m, entry))
        else:
            rest.append(entry)
    if not rest:
        return out
    by_number_text: dict[tuple[str, str], deque[Candidate]] = defaultdict(deque)
    by_number: dict[str, deque[Candidate]] = defaultdict(deque)
    for m in messages:
        if m.id not in taken:
            by_number_text[(number_key(m.number), _text_key(m.text))].append(m)
            by_number[number_key(m.number)].append(m)
    for entry in rest:
        key = number_key(entry.number)
        found = _pop_free(by_number_text.get((key, _text_key(entry.content))), taken)
        found = found or _pop_free(by_number.get(key), taken)
        if found is None:
            out.unmatched.append(entry)
            continue
        taken.add(found.id)
        out.pairs.append((found, entry))
        out.by_fallback += 1
    return out


def _pop_free(queue: deque[Candidate] | None, taken: set[str]) -> Candidate | None:
    while queue:
        m = queue.popleft()
        if m.id not in taken:
            return m
    return None


# --------------------------------------------------------------------------- what to write


@dataclass(frozen=True, slots=True)
class Change:
    """One message row to write: a final transition (``to``) or only the raw status and remark."""

    id: str
    to: State | None
    status_raw: str
    status_remark: str | None
    gateway_message_id: str | None  #: filled in only where our row has none


@dataclass
class Plan:
    """The writes a job's report calls for, grouped for bulk UPDATEs."""

    finals: dict[State, list[Change]] = field(default_factory=dict)
    statuses: list[Change] = field(default_factory=list)
    unknown_statuses: Counter[str] = field(default_factory=Counter)
    stale: int = 0  #: reports for messages already final (late or repeated): never written

    def final_ids(self) -> set[str]:
        return {c.id for changes in self.finals.values() for c in changes}


def plan(pairs: Iterable[tuple[Candidate, DeliveryEntry]]) -> Plan:
    """Decide each matched message's write. A final state is never changed; a status we do not know is
    stored verbatim (and counted) without moving the message; unchanged rows are not written at all."""
    out = Plan()
    for m, entry in pairs:
        if m.state in FINAL:
            out.stale += 1
            continue
        mapped = map_status(entry.status)
        if not mapped.known:
            out.unknown_statuses[entry.status] += 1
        raw = entry.status.strip()[:64]
        remark = (entry.remark.strip()[:255] or None) if entry.remark is not None else m.status_remark
        gmid = entry.message_id if not m.gateway_message_id and entry.message_id else None
        if mapped.final and mapped.state is not None and can_move(State(m.state), mapped.state):
            out.finals.setdefault(mapped.state, []).append(Change(m.id, mapped.state, raw, remark, gmid))
        elif raw != m.status_raw or remark != m.status_remark or gmid:
            out.statuses.append(Change(m.id, None, raw, remark, gmid))
    return out


# --------------------------------------------------------------------------- the polling schedule

#: Gaps between polls of a job: soon after sending, then less and less often; hourly after the last.
BACKOFF: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 30))
HOURLY = timedelta(hours=1)


def gap(poll_count: int) -> timedelta:
    """The wait after the ``poll_count``-th poll (1-based): 1, 2, 5, 10, 30 minutes, then an hour."""
    if poll_count < 1:
        return timedelta(0)
    return BACKOFF[poll_count - 1] if poll_count <= len(BACKOFF) else HOURLY


def offset(poll_count: int) -> timedelta:
    """When the next poll is due after ``poll_count`` polls, counted from the job's creation."""
    total = sum(BACKOFF[:poll_count], timedelta(0))
    return total + HOURLY * max(0, poll_count - len(BACKOFF))


def next_poll_at(created_at: datetime, poll_count: int, now: datetime, horizon: timedelta) -> datetime:
    """The next poll after ``poll_count`` polls: on the schedule counted from ``created_at`` (so runs a few
    seconds late do not push every later poll back); one gap from ``now`` when the schedule is already
    past (after an outage: no burst of catch-up polls); never past the horizon, where the last poll is."""
    due = created_at + offset(poll_count)
    if due <= now:
        due = now + gap(poll_count)
    return min(due, created_at + horizon)
