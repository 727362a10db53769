"""Retention policy (pure): which rows are old enough to purge, per table.

Only finished data is ever purged; anything still moving stays, however old:

* **messages** in a final state (delivered, undelivered, expired, failed) whose ``final_at`` is older than
  ``RETENTION_DAYS``, whose hook row (if any) is delivered, together with their events and hook row;
* **batches** that are no longer pending or sending, finished before ``RETENTION_DAYS_BATCHES``, none of
  whose messages is still not final; **gateway jobs** closed before that too;
* **hook rows** already delivered, created before ``RETENTION_DAYS_HOOKS``.

A retention of 0 days keeps that table for ever. The SQL lives in ``store`` (its retention section); the
runner that deletes in small transactions is ``dispatcher.purge``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import ValidationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Table(StrEnum):
    """What a purge deletes, in the order it deletes it (messages first: batches wait for theirs)."""

    MESSAGES = "messages"
    BATCHES = "batches"
    JOBS = "jobs"
    HOOKS = "hooks"


#: Rows that go with a purged message (counted separately in results and metrics).
DEPENDENT = ("events", "message_hooks")


def parse_duration(text: str) -> timedelta | None:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` as a timedelta; None when ``text`` is not such a duration."""
    m = _DURATION.match(text)
    if not m:
        return None
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_age(text: str, field: str = "older_than") -> timedelta:
    """A positive duration such as ``30d``; ValidationError naming ``field`` otherwise."""
    age = parse_duration(text)
    if age is None:
        raise ValidationError(field, f"{text!r} is not a duration such as 30d, 12h or 2w")
    if age <= timedelta(0):
        raise ValidationError(field, f"{text!r} must be longer than 0")
    return age


@dataclass(frozen=True)
class Cutoffs:
    """Per table, the instant before which finished rows are purged (None: that table is kept)."""

    messages: datetime | None
    batches: datetime | None
    jobs: datetime | None
    hooks: datetime | None

    def of(self, table: Table) -> datetime | None:
        cutoff: datetime | None = getattr(self, table.value)
        return cutoff

    @property
    def active(self) -> list[Table]:
        """The tables this policy purges, in purge order."""
        return [t for t in Table if self.of(t) is not None]


def _before(now: datetime, days: float) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)


def cutoffs(now: datetime, messages_days: float, batches_days: float, hooks_days: float,
            older_than: timedelta | None = None) -> Cutoffs:
    """The cutoffs at ``now``: from the retention settings (days; 0 keeps), or ``older_than`` for every
    table when an operator gives one."""
    if older_than is not None:
        if older_than <= timedelta(0):
            raise ValidationError("older_than", "must be longer than 0")
        at = now - older_than
        return Cutoffs(at, at, at, at)
    batches = _before(now, batches_days)
    return Cutoffs(_before(now, messages_days), batches, batches, _before(now, hooks_days))


def chunks_done(deleted: int, chunk: int) -> bool:
    """Whether a table is exhausted: a chunk that came back short means nothing older is left."""
    return deleted < chunk
