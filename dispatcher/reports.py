"""Delivery reports (pure): the gateway's status names, matching report entries to our messages, and the
polling schedule. No database, Redis or HTTP here; :mod:`dispatcher.sync` does the I/O.

The gateway documents four statuses (any casing is accepted)::

    Sent         message accepted, no report yet             -> stays `sent`
    Delivered    delivered to the handset                    -> `delivered`   (final)
    UnDelivered  not delivered (DND, absent subscriber...)   -> `undelivered` (final)
    Expired      "Message pending, the message is en route"  -> stays `sent` (the documentation's words;
                                                                   ``expired_is_final`` makes it final)

Anything else is stored verbatim in ``status_raw`` and counted; the message's state is left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from .gateway.responses import DeliveryEntry
from .matching import Ours, Theirs, pair
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
#: "Expired" for accounts whose gateway uses it as a final state (``Settings.expired_is_final``).
EXPIRED_FINAL = Mapped(State.EXPIRED, True)


def status_key(raw: str | None) -> str:
    """'UnDelivered', 'UNDELIVERED', ' un-delivered ' -> 'undelivered'."""
    return "".join(ch for ch in (raw or "").lower() if ch.isalpha())


@lru_cache(maxsize=1024)
def map_status(raw: str | None, expired_final: bool = False) -> Mapped:
    """The meaning of a gateway status name, in any casing; UNKNOWN_STATUS when not in the table."""
    key = status_key(raw)
    if expired_final and key == "expired":
        return EXPIRED_FINAL
    return STATUS_MAP.get(key, UNKNOWN_STATUS)


# --------------------------------------------------------------------------- matching


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
    credits: int = 0


@dataclass
class Matching:
    """Report entries paired with our messages; ``unmatched`` entries fit no message of the job, or fit
    several that differ (never guessed)."""

    pairs: list[tuple[Candidate, DeliveryEntry]] = field(default_factory=list)
    unmatched: list[DeliveryEntry] = field(default_factory=list)
    by_fallback: int = 0  #: pairs found by number (and text) rather than by gateway message id


def match(entries: Sequence[DeliveryEntry], messages: Sequence[Candidate]) -> Matching:
    """Pair entries with messages by gateway message id, else by number and text, else by number alone
    where that cannot cross two different messages (:func:`dispatcher.matching.pair`)."""
    p = pair([Ours(m.id, m.number, m.text, m.gateway_message_id) for m in messages],
             [Theirs(e.number, e.content, e.message_id) for e in entries], use_ids=True)
    return Matching(pairs=[(messages[i], entries[j]) for i, j in p.pairs],
                    unmatched=[entries[j] for j in sorted(p.unmatched + p.ambiguous)],
                    by_fallback=len(p.pairs) - p.by_id)


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


def plan(pairs: Iterable[tuple[Candidate, DeliveryEntry]], *, expired_final: bool = False) -> Plan:
    """Decide each matched message's write. A final state is never changed; a status we do not know is
    stored verbatim (and counted) without moving the message; unchanged rows are not written at all."""
    out = Plan()
    for m, entry in pairs:
        if m.state in FINAL:
            out.stale += 1
            continue
        mapped = map_status(entry.status, expired_final)
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

#: Default gaps between polls of a job: soon after sending, then less and less often; hourly after the last
#: (``Settings.sync_backoff_min`` and ``sync_poll_every_min``).
BACKOFF: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 30))
HOURLY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a job's reports are polled: ``backoff`` gaps after the first polls, then ``every``."""

    backoff: tuple[timedelta, ...] = BACKOFF
    every: timedelta = HOURLY

    @classmethod
    def of(cls, backoff_min: Sequence[float], every_min: float) -> Schedule:
        return cls(tuple(timedelta(minutes=m) for m in backoff_min), timedelta(minutes=every_min))

    def gap(self, poll_count: int) -> timedelta:
        """The wait after the ``poll_count``-th poll (1-based)."""
        if poll_count < 1:
            return timedelta(0)
        return self.backoff[poll_count - 1] if poll_count <= len(self.backoff) else self.every

    def offset(self, poll_count: int) -> timedelta:
        """When the next poll is due after ``poll_count`` polls, counted from the job's creation."""
        total = sum(self.backoff[:poll_count], timedelta(0))
        return total + self.every * max(0, poll_count - len(self.backoff))

    def next_poll_at(self, created_at: datetime, poll_count: int, now: datetime,
                     horizon: timedelta) -> datetime:
        """The next poll after ``poll_count`` polls: on the schedule counted from ``created_at`` (so runs a
        few seconds late do not push every later poll back); one gap from ``now`` when the schedule is
        already past (after an outage: no burst of catch-up polls); never past the horizon, where the last
        poll is."""
        due = created_at + self.offset(poll_count)
        if due <= now:
            due = now + self.gap(poll_count)
        return min(due, created_at + horizon)


DEFAULT_SCHEDULE = Schedule()


def gap(poll_count: int) -> timedelta:
    """The default schedule's wait after the ``poll_count``-th poll: 1, 2, 5, 10, 30 minutes, then an hour."""
    return DEFAULT_SCHEDULE.gap(poll_count)


def next_poll_at(created_at: datetime, poll_count: int, now: datetime, horizon: timedelta) -> datetime:
    """:meth:`Schedule.next_poll_at` of the default schedule."""
    return DEFAULT_SCHEDULE.next_poll_at(created_at, poll_count, now, horizon)
