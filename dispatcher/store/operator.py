"""What operators, the metrics exporter and the demo read (and the few things they change): sums, latency
percentiles, messages needing attention, and a database ping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal_column, select, text, update

from ..models import JOB
from ..states import State
from ._base import J, M, ids_match


def ping(conn: Connection) -> None:
    """One round trip (readiness checks, warming a connection pool)."""
    conn.execute(text("SELECT 1"))


def credits_charged(conn: Connection, since: datetime | None) -> int:
    """Credits charged over the messages created since ``since`` (all when None)."""
    q = select(func.coalesce(func.sum(M.credits_charged), 0))
    return int(conn.execute(q if since is None else q.where(M.created_at >= since)).scalar_one())


def _seconds(conn: Connection, end: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(M.created_at)) * literal_column("86400.0")
    return func.extract("epoch", end - M.created_at)


def latency(conn: Connection, end: str, state: State | None, since: datetime | None,
            quantiles: Sequence[tuple[str, float]] = (("p50", 0.50), ("p95", 0.95))
            ) -> dict[str, float | int | None]:
    """Quantiles of (``end`` column - created_at) in seconds, nearest rank, by ORDER BY + OFFSET (the same
    on both databases), with the count of messages measured."""
    column = M[end]
    dur = _seconds(conn, column).label("d")
    where = [column.is_not(None)]
    if state is not None:
        where.append(M.state == state.value)
    if since is not None:
        where.append(M.created_at >= since)
    n = int(conn.execute(select(func.count()).where(*where)).scalar_one())
    out: dict[str, float | int | None] = {"count": n, **{name: None for name, _ in quantiles}}
    for name, q in quantiles:
        if n:
            offset = min(n - 1, max(0, int(round(q * n + 0.5)) - 1))
            value = conn.execute(select(dur).where(*where).order_by(dur).offset(offset).limit(1)).scalar()
            out[name] = round(float(value), 3) if value is not None else None
    return out


@dataclass(frozen=True)
class AttentionRow:
    """A message an operator must look at (``unknown list``); the number is the stored one, mask it."""

    id: str
    channel: str
    number: str
    sender_id: str
    template_id: str
    updated_at: datetime | None
    batch_id: str | None
    gateway_job_id: str | None
    last_error: str | None


def count_in_state(conn: Connection, state: State) -> int:
    return int(conn.execute(select(func.count()).where(M.state == state.value)).scalar_one())


def in_state(conn: Connection, state: State, limit: int) -> list[AttentionRow]:
    """Messages in ``state``, least recently changed first."""
    q = (select(M.id, M.channel, M.number, M.sender_id, M.template_id, M.updated_at, M.batch_id,
                M.gateway_job_id, M.last_error)
         .where(M.state == state.value).order_by(M.updated_at, M.id).limit(limit))
    return [AttentionRow(*r) for r in conn.execute(q)]


def ids_in_state(conn: Connection, state: State, after: str, limit: int) -> list[str]:
    """Up to ``limit`` ids of messages in ``state`` after ``after``, in id order (paging)."""
    return list(conn.execute(select(M.id).where(M.state == state.value, M.id > after)
                             .order_by(M.id).limit(limit)).scalars())


def states_of(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """The state of each of ``ids`` that exists."""
    return {r.id: r.state for r in conn.execute(select(M.id, M.state).where(ids_match(conn, ids)))}


def held_by_reason(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(M.hold_reason, func.count()).where(M.state == State.HELD.value)
                        .group_by(M.hold_reason))
    return {str(r[0]): int(r[1]) for r in rows}


def hurry_jobs(conn: Connection, now: datetime, min_age_s: float) -> int:
    """Make open gateway jobs older than ``min_age_s`` due now (the demo's compressed report schedule)."""
    res = conn.execute(update(JOB).where(J.open.is_(True), J.next_poll_at > now,
                                         J.created_at < now - timedelta(seconds=min_age_s))
                       .values(next_poll_at=now))
    return res.rowcount or 0


