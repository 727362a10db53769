"""Batches: claiming queued messages into a batch, the batch row's guarded transitions
(states.BATCH_ALLOWED_FROM) and what a sender loads of a batch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
    update,
)

from ..models import BATCH, MESSAGE
from ..states import FINAL, THROUGH_BATCH, BatchState, State, batch_sources, sources
from ._base import B, M, fit, ids_match
from .rows import BatchRow, PendingBatch, row_of


@dataclass(frozen=True)
class Outgoing:
    """A message as a worker needs it for a gateway call."""

    id: str
    number: str
    text: str
    credits: int
    parts: int


def claim_for_batch(conn: Connection, ids: Sequence[str], batch_id: str, now: datetime) -> list[str]:
    """Attach still-unclaimed queued messages to ``batch_id``; returns the ids actually claimed.

    The guard is written so that only the primary key can serve this statement: spelled
    ``batch_id IS NULL``, it matches the partial index of unclaimed queued messages, which a planner
    without fresh statistics picks, then tests every queued row against the 2,000 ids (a cost that
    grows with the backlog; seconds per claim at 100,000 queued)."""
    res = conn.execute(
        update(MESSAGE)
        .where(ids_match(conn, ids), M.state == State.QUEUED.value, func.coalesce(M.batch_id, "") == "")
        .values(batch_id=batch_id, updated_at=now)
        .returning(M.id))
    return list(res.scalars().all())  # one fetch, not one per row


def insert_batch(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(BATCH), [row])


def get_batch(conn: Connection, batch_id: str) -> BatchRow | None:
    row = conn.execute(select(BATCH).where(B.id == batch_id)).first()
    return row_of(BatchRow, row._mapping) if row else None


def move_batch(conn: Connection, batch_id: str, to: BatchState, now: datetime, *,
               frm: BatchState | None = None, **values: Any) -> bool:
    """Guarded batch state change (sources from ``states.BATCH_ALLOWED_FROM``, or only ``frm``); True when
    this caller made it."""
    stamp = "sending_at" if to is BatchState.SENDING else "done_at"
    res = conn.execute(update(BATCH).where(B.id == batch_id, B.state.in_(batch_sources(to, frm)))
                       .values(state=to.value, **{stamp: now}, **fit(BATCH, values)))
    return (res.rowcount or 0) == 1


def undo_sending(conn: Connection, batch_id: str, sending_at: datetime) -> bool:
    """``sending`` -> ``pending`` for a batch whose worker made no call after it committed ``sending``, but
    could not tell whether that commit happened (the database's answer was lost, or the database went away
    before a retry). Outside states.BATCH_ALLOWED_FROM on purpose: only the worker that wrote ``sending``
    may undo it, so the guard is the batch's own ``sending_at`` stamp as that worker wrote it; a batch that
    another worker took, or that the sweeper judged stale, is left alone. True when it moved."""
    res = conn.execute(update(BATCH).where(B.id == batch_id, B.state == BatchState.SENDING.value,
                                           B.sending_at == sending_at)
                       .values(state=BatchState.PENDING.value, sending_at=None, credits=0))
    return (res.rowcount or 0) == 1


def batch_messages(conn: Connection, batch_id: str, state: State) -> list[Outgoing]:
    rows = conn.execute(select(M.id, M.number, M.text, M.credits, M.parts)
                        .where(M.batch_id == batch_id, M.state == state.value).order_by(M.id)).all()
    return [Outgoing(*r) for r in rows]  # one fetchall: a row-by-row fetch cost 3 us a message


def batch_state(conn: Connection, batch_id: str) -> str | None:
    return conn.execute(select(B.state).where(B.id == batch_id)).scalar_one_or_none()


def move_batch_messages(conn: Connection, batch_id: str, to: State, now: datetime, *,
                        frm: State | None = None, **values: Any) -> list[str]:
    """Guarded transition of a batch's messages (those that may legally move to ``to``, or only those in
    ``frm``: ``frm=QUEUED`` for the claimed rows of a batch leaving ``sending``, see states.THROUGH_BATCH);
    returns the ids that moved."""
    stamp: dict[str, Any] = {"final_at": now} if to in FINAL else {}
    if frm is State.QUEUED and to in THROUGH_BATCH:  # what `sending` would have written, written now
        stamp = {"sending_at": select(B.sending_at).where(B.id == batch_id).scalar_subquery(),
                 "attempts": 1}
    res = conn.execute(update(MESSAGE).where(M.batch_id == batch_id, M.state.in_(sources(to, frm)))
                       .values(state=to.value, updated_at=now, **stamp, **fit(MESSAGE, values))
                       .returning(M.id))
    return [r[0] for r in res]


def reschedule_batch(conn: Connection, batch_id: str, send_at: datetime, now: datetime) -> int:
    """A batch's queued messages go back to `scheduled` (unclaimed) for ``send_at``."""
    res = conn.execute(update(MESSAGE).where(M.batch_id == batch_id, M.state == State.QUEUED.value)
                       .values(state=State.SCHEDULED.value, send_at=send_at, batch_id=None,
                               updated_at=now))
    return res.rowcount or 0


def pending_batches(conn: Connection, older_than: datetime | None, limit: int) -> list[PendingBatch]:
    q = select(B.id, B.lane, B.size, B.channel, B.sender_id, B.template_id, B.is_unicode).where(
        B.state == BatchState.PENDING.value)
    if older_than is not None:
        q = q.where(B.published_at < older_than)
    return [row_of(PendingBatch, r._mapping) for r in conn.execute(q.order_by(B.created_at).limit(limit))]


def stale_sending_batches(conn: Connection, older_than: datetime, limit: int) -> list[str]:
    """Batches in ``sending`` since before ``older_than``: their worker stopped between committing
    ``sending`` and recording the gateway's answer."""
    rows = conn.execute(select(B.id).where(B.state == BatchState.SENDING.value, B.sending_at < older_than)
                        .order_by(B.sending_at).limit(limit))
    return [r[0] for r in rows]


def sending_counts(conn: Connection, since: datetime | None = None) -> dict[str, int]:
    """Claimed messages of batches in ``sending`` (stored ``queued``, read as ``sending``), per channel."""
    q = (select(B.channel, func.count()).select_from(BATCH).join(MESSAGE, M.batch_id == B.id)
         .where(B.state == BatchState.SENDING.value, M.state == State.QUEUED.value).group_by(B.channel))
    if since is not None:
        q = q.where(M.created_at >= since)
    return {r[0]: int(r[1]) for r in conn.execute(q)}


def touch_batches(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(update(BATCH).where(B.id.in_(list(ids))).values(published_at=now))


def inflight_credits(conn: Connection) -> dict[str, int]:
    """Credits still reserved, per channel: batches between `sending` and the gateway's answer, and
    `unconfirmed` messages (the reports have not yet shown whether the gateway charged them)."""
    out: dict[str, int] = defaultdict(int)
    rows = conn.execute(select(B.channel, func.coalesce(func.sum(B.credits), 0))
                        .where(B.state == BatchState.SENDING.value).group_by(B.channel))
    for r in rows:
        out[r[0]] += int(r[1])
    rows = conn.execute(select(M.channel, func.coalesce(func.sum(M.credits), 0))
                        .where(M.state == State.UNCONFIRMED.value).group_by(M.channel))
    for r in rows:
        out[r[0]] += int(r[1])
    return dict(out)
