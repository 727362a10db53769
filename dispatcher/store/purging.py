"""Retention deletes of finished rows only (the policy is dispatcher/retention.py; dispatcher/purge.py runs
them in small transactions). Messages are scanned by primary key: ids start with their creation time in
milliseconds (dispatcher/ids.py), so "created before the cutoff" is an id range on the primary key, and every
guard (final state, final_at, delivered hook) is checked again by the DELETE itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    func,
    select,
)

from ..models import BATCH, EVENT, JOB, MESSAGE, OUTBOX
from ..states import FINAL, BatchState
from ._base import EV, HO, B, J, M, ids_match

#: Batch states in which a batch is finished (pending and sending batches are never purged).
BATCH_DONE = tuple(s.value for s in (BatchState.SENT, BatchState.FAILED, BatchState.CANCELLED,
                                     BatchState.HELD, BatchState.UNKNOWN))


_FINAL_VALUES = sorted(s.value for s in FINAL)


def _purgeable_message(cutoff: datetime) -> Any:
    """Final since before ``cutoff``, and no hook still to deliver."""
    undelivered_hook = select(HO.message_id).where(HO.message_id == M.id, HO.done.is_(False)).exists()
    return and_(M.state.in_(_FINAL_VALUES), M.final_at < cutoff, ~undelivered_hook)


def _purgeable_batch(cutoff: datetime) -> Any:
    """Finished before ``cutoff``, and none of its messages still moving."""
    moving = select(M.id).where(M.batch_id == B.id, M.state.not_in(_FINAL_VALUES)).exists()
    return and_(B.state.in_(BATCH_DONE), B.done_at < cutoff, ~moving)


def _purgeable_job(cutoff: datetime) -> Any:
    return and_(J.open.is_(False), J.closed_at < cutoff)


def _purgeable_hook(cutoff: datetime) -> Any:
    return and_(HO.done.is_(True), HO.created_at < cutoff)


def message_page(conn: Connection, after: str, below: str, limit: int) -> list[str]:
    """Up to ``limit`` message ids in (``after``, ``below``), in id order (a primary-key range scan)."""
    q = select(M.id).where(M.id > after, M.id < below).order_by(M.id).limit(limit)
    return list(conn.execute(q).scalars())


def delete_final_messages(conn: Connection, ids: Sequence[str], cutoff: datetime) -> dict[str, int]:
    """Delete those of ``ids`` that are final since before ``cutoff`` with no hook still to deliver, with
    their events and hook rows; returns the rows deleted per table (messages, events, message_hooks)."""
    gone: list[str] = []
    if ids:
        gone = list(conn.execute(MESSAGE.delete().where(ids_match(conn, ids), _purgeable_message(cutoff))
                                 .returning(M.id)).scalars())
    events = hooks = 0
    if gone:
        events = conn.execute(EVENT.delete().where(EV.message_id.in_(gone))).rowcount or 0
        hooks = conn.execute(OUTBOX.delete().where(HO.message_id.in_(gone))).rowcount or 0
    return {"messages": len(gone), "events": events, "message_hooks": hooks}


def _delete_page(conn: Connection, table: Any, key: Any, where: Any, order: Any, limit: int) -> int:
    """Delete the first ``limit`` rows (by ``order``) meeting ``where``, re-checking it in the DELETE."""
    ids = list(conn.execute(select(key).where(where).order_by(order).limit(limit)).scalars())
    if not ids:
        return 0
    return conn.execute(table.delete().where(key.in_(ids), where)).rowcount or 0


def delete_done_batches(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` batches finished before ``cutoff`` none of whose messages is still moving."""
    return _delete_page(conn, BATCH, B.id, _purgeable_batch(cutoff), B.done_at, limit)


def delete_closed_jobs(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` gateway jobs closed before ``cutoff`` (open jobs are still polled)."""
    return _delete_page(conn, JOB, J.job_id, _purgeable_job(cutoff), J.closed_at, limit)


def delete_delivered_hooks(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` hook rows delivered (done) and created before ``cutoff``."""
    return _delete_page(conn, OUTBOX, HO.message_id, _purgeable_hook(cutoff), HO.created_at, limit)


def count_purgeable(conn: Connection, below: str, cutoffs: dict[str, datetime | None]) -> dict[str, int]:
    """What a purge with these cutoffs (per table; None keeps it) would delete now (a dry run); ``below``
    is the message id bound of the message cutoff."""
    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    out: dict[str, int] = {}
    doomed = None
    if (at := cutoffs.get("messages")) is not None:
        doomed = select(M.id).where(M.id < below, _purgeable_message(at))
        out["messages"] = count(MESSAGE, M.id < below, _purgeable_message(at))
        out["events"] = count(EVENT, EV.message_id.in_(doomed))
        out["message_hooks"] = count(OUTBOX, HO.message_id.in_(doomed))
    if (at := cutoffs.get("batches")) is not None:
        out["batches"] = count(BATCH, _purgeable_batch(at))
    if (at := cutoffs.get("jobs")) is not None:
        out["jobs"] = count(JOB, _purgeable_job(at))
    if (at := cutoffs.get("hooks")) is not None:
        # hook rows of purged messages go with them (counted as message_hooks above)
        out["hooks"] = count(OUTBOX, _purgeable_hook(at),
                             *([HO.message_id.not_in(doomed)] if doomed is not None else []))
    return out
