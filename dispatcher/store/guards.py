"""Named queries of the guards before a credit is spent: opt-outs (suppression list), the DLT link
whitelist and breakers. The caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, any_, delete, func, insert, select, update

from ..models import BATCH, BREAKER, LINK_WHITELIST, MESSAGE, OPT_OUT
from ..states import BatchState, HoldReason, State
from ._base import B, M, text_array

OO = OPT_OUT.c
K = BREAKER.c
WL = LINK_WHITELIST.c

#: Numbers per ``IN (...)`` on SQLite (which allows 32766 parameters); PostgreSQL takes one array.
IN_CHUNK = 900


@dataclass(frozen=True)
class OptOutRow:
    number: str
    channel: str
    created_at: datetime
    reason: str | None
    source: str | None


@dataclass(frozen=True)
class WhitelistRow:
    kind: str  #: url | cbn
    key: str  #: as compared
    entry: str  #: as given
    created_at: datetime
    source: str | None
    note: str | None


def _insert_new(conn: Connection, table: Any, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    return dialect_insert(table).on_conflict_do_nothing(index_elements=keys)


# --------------------------------------------------------------------------- opt-outs


def add_opt_outs(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert (number, channel, created_at, reason, source) rows; an existing opt-out keeps its first
    date and reason. Returns how many were new."""
    if not rows:
        return 0
    stmt = _insert_new(conn, OPT_OUT, ["number", "channel"])
    return len(conn.execute(stmt.returning(OO.number), list(rows)).all())


def remove_opt_outs(conn: Connection, number: str, channels: Sequence[str]) -> int:
    """Delete the number's opt-outs of ``channels``; returns how many there were."""
    res = conn.execute(delete(OPT_OUT).where(OO.number == number, OO.channel.in_(list(channels))))
    return res.rowcount or 0


def opted_out(conn: Connection, numbers: Sequence[str], channel: str) -> dict[str, datetime]:
    """number -> opt-out date, for those of ``numbers`` that opted out of ``channel``.

    On PostgreSQL this sets ``enable_seqscan = off`` for the rest of the caller's transaction (callers
    look up opt-outs in a transaction of their own): with thousands of numbers, or a freshly imported
    table without statistics, the planner otherwise scans the whole list (1,000,000 rows: 10-100 ms per
    5,000 numbers) instead of probing the primary key (2 us a number whatever the list's size)."""
    if not numbers:
        return {}
    unique = list(set(numbers))
    if len(unique) == 1:  # equality on the whole primary key: always an index probe, one round trip
        row = conn.execute(select(OO.created_at).where(OO.number == unique[0], OO.channel == channel)).first()
        return {unique[0]: row[0]} if row else {}
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        match = OO.number == any_(text_array("numbers", unique))
        rows = conn.execute(select(OO.number, OO.created_at).where(match, OO.channel == channel)).all()
        return {r[0]: r[1] for r in rows}
    out: dict[str, datetime] = {}
    for k in range(0, len(unique), IN_CHUNK):
        rows = conn.execute(select(OO.number, OO.created_at)
                            .where(OO.number.in_(unique[k:k + IN_CHUNK]), OO.channel == channel)).all()
        out.update({r[0]: r[1] for r in rows})
    return out


def opt_outs(conn: Connection, *, channel: str | None = None, number: str | None = None,
             after: tuple[str, str] | None = None, limit: int = 1000) -> list[OptOutRow]:
    """A page of opt-outs ordered by (number, channel), after the key ``after`` (keyset paging)."""
    q = select(OO.number, OO.channel, OO.created_at, OO.reason, OO.source)
    if channel is not None:
        q = q.where(OO.channel == channel)
    if number is not None:
        q = q.where(OO.number == number)
    if after is not None:
        q = q.where((OO.number > after[0]) | and_(OO.number == after[0], OO.channel > after[1]))
    return [OptOutRow(*r) for r in conn.execute(q.order_by(OO.number, OO.channel).limit(limit))]


def count_opt_outs(conn: Connection) -> dict[str, int]:
    """Opt-outs per channel."""
    return {r[0]: int(r[1]) for r in conn.execute(select(OO.channel, func.count()).group_by(OO.channel))}


# --------------------------------------------------------------------------- the link whitelist


def add_whitelist(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert (kind, key, entry, created_at, source, note) rows; an entry already listed keeps its first
    date and note. Returns how many were new."""
    if not rows:
        return 0
    stmt = _insert_new(conn, LINK_WHITELIST, ["kind", "key"])
    return len(conn.execute(stmt.returning(WL.key), list(rows)).all())


def remove_whitelist(conn: Connection, kind: str, key: str) -> int:
    """Delete one entry (by its compared key); returns 1 if it was listed."""
    return conn.execute(delete(LINK_WHITELIST).where(WL.kind == kind, WL.key == key)).rowcount or 0


def whitelist(conn: Connection, kind: str | None = None) -> list[WhitelistRow]:
    """Every entry (a whitelist is short: tens to hundreds), by kind and key."""
    q = select(WL.kind, WL.key, WL.entry, WL.created_at, WL.source, WL.note)
    if kind is not None:
        q = q.where(WL.kind == kind)
    return [WhitelistRow(*r) for r in conn.execute(q.order_by(WL.kind, WL.key)).all()]


# --------------------------------------------------------------------------- breakers


def get_breaker(conn: Connection, sender_id: str, template_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(BREAKER).where(K.sender_id == sender_id, K.template_id == template_id)).first()
    return dict(row._mapping) if row else None


def open_breaker(conn: Connection, sender_id: str, template_id: str, now: datetime, bad: int, total: int,
                 reason: str) -> bool:
    """Open the group's breaker; False when it is open already (another worker got there first)."""
    values = {"state": "open", "opened_at": now, "bad": bad, "total": total, "reason": reason[:500],
              "released_at": None, "released_by": None}
    res = conn.execute(update(BREAKER).where(K.sender_id == sender_id, K.template_id == template_id,
                                             K.state != "open").values(**values))
    if res.rowcount:
        return True
    if get_breaker(conn, sender_id, template_id) is not None:
        return False
    conn.execute(insert(BREAKER), [{"sender_id": sender_id, "template_id": template_id, **values}])
    return True


def release_breaker(conn: Connection, sender_id: str, template_id: str, now: datetime, by: str) -> bool:
    res = conn.execute(update(BREAKER).where(K.sender_id == sender_id, K.template_id == template_id,
                                             K.state == "open")
                       .values(state="released", released_at=now, released_by=by[:64]))
    return (res.rowcount or 0) == 1


def breakers(conn: Connection, *, open_only: bool = False) -> list[dict[str, Any]]:
    q = select(BREAKER).order_by(K.opened_at.desc())
    if open_only:
        q = q.where(K.state == "open")
    return [dict(r._mapping) for r in conn.execute(q)]


def hold_group(conn: Connection, sender_id: str, template_id: str, now: datetime, detail: str) -> int:
    """The group's queued messages -> held (breaker): the unclaimed ones, and the claimed ones of its
    batches still ``pending`` (each batch moved first, guarded, so a batch a sender has just moved to
    ``sending`` keeps its messages: they are in flight). Scans the message table: once per trip."""
    error = detail[:500]
    batches = [r[0] for r in conn.execute(
        update(BATCH).where(B.sender_id == sender_id, B.template_id == template_id,
                            B.state == BatchState.PENDING.value)
        .values(state=BatchState.HELD.value, done_at=now, error=error).returning(B.id))]
    values = {"state": State.HELD.value, "hold_reason": HoldReason.BREAKER.value, "last_error": error,
              "updated_at": now}
    res = conn.execute(update(MESSAGE).where(M.sender_id == sender_id, M.template_id == template_id,
                                             M.state == State.QUEUED.value, M.batch_id.is_(None))
                       .values(**values))
    held = res.rowcount or 0
    for i in range(0, len(batches), IN_CHUNK):
        res = conn.execute(update(MESSAGE).where(M.batch_id.in_(batches[i:i + IN_CHUNK]),
                                                 M.state == State.QUEUED.value).values(**values))
        held += res.rowcount or 0
    return held


def held_by_breaker(conn: Connection, sender_id: str, template_id: str, limit: int) -> list[str]:
    rows = conn.execute(select(M.id).where(M.state == State.HELD.value,
                                           M.hold_reason == HoldReason.BREAKER.value,
                                           M.sender_id == sender_id, M.template_id == template_id)
                        .order_by(M.id).limit(limit))
    return [r[0] for r in rows]


def undelivered_since(conn: Connection, since: datetime, until: datetime,
                      created_after: datetime) -> list[tuple[str, str, str | None]]:
    """(sender id, template id, remark) of messages that became undelivered in [since, until); the
    ``created_after`` bound lets the created_at index narrow the scan."""
    q = select(M.sender_id, M.template_id, M.status_remark).where(
        M.created_at >= created_after, M.state == State.UNDELIVERED.value, M.final_at >= since,
        M.final_at < until)
    return [(r[0], r[1], r[2]) for r in conn.execute(q)]
