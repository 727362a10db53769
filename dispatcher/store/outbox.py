"""The hook outbox: one row per message reaching a final state, leased and written back by the hooks task."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    select,
    update,
)

from ..models import MESSAGE, OUTBOX
from ..states import State
from ._base import HO, M, clip, ids_match
from .rows import HookAttempt, HookRow, MessageRow, row_of


def insert_outbox(conn: Connection, items: Sequence[tuple[str, str]], now: datetime) -> int:
    """One hook row per (message id, final state); a message that already has one keeps it."""
    if not items:
        return 0
    rows = [{"message_id": mid, "state": state, "created_at": now, "next_attempt_at": now, "attempts": 0,
             "done": False} for mid, state in items]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(OUTBOX).on_conflict_do_nothing(index_elements=["message_id"])
    return len(conn.execute(stmt.returning(HO.message_id), rows).all())  # rowcount is -1 on executemany


def failed_without_outbox(conn: Connection, since: datetime, limit: int) -> list[str]:
    """Messages failed (by the sender) since ``since`` that have no hook row yet."""
    q = (select(M.id).where(M.state == State.FAILED.value, M.final_at >= since,
                            ~select(HO.message_id).where(HO.message_id == M.id).exists())
         .order_by(M.final_at).limit(limit))
    return [r[0] for r in conn.execute(q)]


def claim_hooks(conn: Connection, now: datetime, until: datetime, limit: int) -> list[HookRow]:
    """Take up to ``limit`` due hook rows by moving their next attempt to ``until`` (a lease: no other run
    sees them as due before then); returns the rows taken."""
    due = (select(HO.message_id).where(HO.done.is_(False), HO.next_attempt_at <= now)
           .order_by(HO.next_attempt_at).limit(limit))
    res = conn.execute(update(OUTBOX).where(HO.message_id.in_(due.scalar_subquery()), HO.done.is_(False),
                                            HO.next_attempt_at <= now)
                       .values(next_attempt_at=until)
                       .returning(HO.message_id, HO.state, HO.attempts, HO.delivered_to, HO.last_error))
    return [row_of(HookRow, r._mapping) for r in res]


def hook_messages(conn: Connection, ids: Sequence[str]) -> dict[str, MessageRow]:
    """The message rows hook payloads are made from."""
    if not ids:
        return {}
    rows = conn.execute(select(MESSAGE).where(ids_match(conn, ids)))
    return {r.id: row_of(MessageRow, r._mapping) for r in rows}


def write_hook_results(conn: Connection, results: Sequence[HookAttempt], leased_until: datetime) -> int:
    """Record delivery attempts of hook rows still leased to this run (``next_attempt_at ==
    leased_until``), in one executemany."""
    if not results:
        return 0
    stmt = (update(OUTBOX).where(HO.message_id == bindparam("b_id"), HO.done.is_(False),
                                 HO.next_attempt_at == leased_until)
            .values(done=bindparam("b_done"), attempts=bindparam("b_attempts"),
                    next_attempt_at=bindparam("b_next"), last_error=bindparam("b_error"),
                    delivered_to=bindparam("b_to")))
    rows = [{"b_id": r.message_id, "b_done": r.done, "b_attempts": r.attempts, "b_next": r.next_attempt_at,
             "b_error": clip(HO.last_error, r.last_error), "b_to": r.delivered_to} for r in results]
    return conn.execute(stmt, rows).rowcount or 0


def hook_rows(conn: Connection, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Hook outbox rows (all, or the given messages'), for operators and tests."""
    q = select(OUTBOX).order_by(HO.created_at, HO.message_id)
    if ids is not None:
        q = q.where(HO.message_id.in_(list(ids)))
    return [dict(r._mapping) for r in conn.execute(q)]
