"""Messages: enqueue (INSERT, the bulk COPY writer), idempotency keys, history, guarded transitions and
the queries of the repair and release passes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from ..models import EVENT, MESSAGE
from ..states import ALLOWED_FROM, FINAL, State, sources
from ._base import IN_CHUNK, M, fit, group_key, ids_match
from .rows import IdempotentMessage, MessageRow, row_of


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new message rows (dicts with Message column names) with a plain INSERT: single sends, where
    an idempotency-key conflict must surface as IntegrityError. Bulk enqueues use MessageWriter."""
    if rows:
        conn.execute(insert(MESSAGE), list(rows))


#: The columns a bulk enqueue sets per row; every other column has one value for the whole request.
VARYING = ("id", "number", "text", "parts", "credits", "is_unicode")


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]").search


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


class MessageWriter:
    """Streams the new rows of one bulk enqueue into the caller's transaction.

    Rows share every column except VARYING (``common`` holds the rest). On PostgreSQL one COPY spans the
    whole request: the shared columns are formatted once, and the server stores rows while the producer
    validates the next ones. On SQLite each ``write`` is one executemany. Leaving the block with an
    exception aborts the COPY; the caller's transaction then rolls everything back.
    """

    def __init__(self, conn: Connection, common: dict[str, Any]) -> None:
        self.conn = conn
        self.common = common
        self._pg = conn.dialect.name == "postgresql"
        self._stack = ExitStack()
        self._copy: Any = None
        self._suffix = ""

    def __enter__(self) -> MessageWriter:
        if self._pg:
            shared = [c for c in self.common if c not in VARYING]
            dbapi = self.conn.connection.driver_connection
            cur = self._stack.enter_context(dbapi.cursor())  # type: ignore[union-attr]
            self._copy = self._stack.enter_context(
                cur.copy(f"COPY message ({', '.join([*VARYING, *shared])}) FROM STDIN"))
            self._suffix = "".join("\t" + _copy_value(self.common[c]) for c in shared) + "\n"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)

    def write(self, ids: Sequence[str], rows: Sequence[tuple[str, str, int, int, bool]]) -> None:
        """New messages: ``ids[i]`` for ``rows[i]`` = (number, text, parts, credits, is_unicode)."""
        if not rows:
            return
        if self._pg:
            # ids are hex and numbers normalised digits: only texts can hold characters COPY escapes
            esc, sfx, special = _COPY_ESCAPES, self._suffix, _COPY_SPECIAL
            self._copy.write("".join([
                f"{mid}\t{number}\t{text.translate(esc) if special(text) else text}\t{parts:d}\t{credits:d}\t"
                f"{'t' if uni else 'f'}{sfx}"
                for mid, (number, text, parts, credits, uni) in zip(ids, rows, strict=True)]))
            return
        common = self.common
        self.conn.execute(insert(MESSAGE), [
            {**common, "id": mid, "number": number, "text": text, "parts": parts, "credits": credits,
             "is_unicode": uni} for mid, (number, text, parts, credits, uni) in zip(ids, rows, strict=True)])


def find_by_idempotency_key(conn: Connection, key: str) -> IdempotentMessage | None:
    row = conn.execute(select(M.id, M.number, M.text, M.channel, M.state)
                       .where(M.idempotency_key == key)).first()
    return row_of(IdempotentMessage, row._mapping) if row else None


def get_message(conn: Connection, message_id: str) -> MessageRow | None:
    row = conn.execute(select(MESSAGE).where(M.id == message_id)).first()
    return row_of(MessageRow, row._mapping) if row else None


def events_of(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(EVENT.c.at, EVENT.c.state, EVENT.c.detail)
                        .where(EVENT.c.message_id == message_id).order_by(EVENT.c.at, EVENT.c.id))
    return [dict(r._mapping) for r in rows]


def add_events(conn: Connection, message_ids: Iterable[str], state: State, at: datetime,
               detail: str | None = None) -> None:
    rows = [fit(EVENT, {"message_id": mid, "at": at, "state": state.value, "detail": detail})
            for mid in message_ids]
    if rows:
        conn.execute(insert(EVENT), rows)


def move_messages(conn: Connection, ids: Sequence[str], to: State, now: datetime, *, frm: State | None = None,
                  **values: Any) -> list[str]:
    """Guarded transition of the given messages (from any allowed source, or only ``frm``); returns the ids
    that moved."""
    if not ids:
        return []
    stamp: dict[str, Any] = {"final_at": now} if to in FINAL else {}
    res = conn.execute(update(MESSAGE).where(ids_match(conn, ids), M.state.in_(sources(to, frm)))
                       .values(state=to.value, updated_at=now, **stamp, **fit(MESSAGE, values))
                       .returning(M.id))
    return [r[0] for r in res]


def mark_sent(conn: Connection, rows: Sequence[dict[str, Any]], job_id: str | None, now: datetime) -> int:
    """sending -> sent for each (id, gateway_message_id, credits_charged) row, in one executemany."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _mark_sent_pg(conn, rows, job_id, now)
    stmt = (update(MESSAGE)
            .where(M.id == bindparam("b_id"), M.state == State.SENDING.value)
            .values(state=State.SENT.value, sent_at=now, updated_at=now, gateway_job_id=job_id,
                    gateway_message_id=bindparam("b_gmid"), credits_charged=bindparam("b_credits")))
    res = conn.execute(stmt, [{"b_id": r["id"], "b_gmid": r["gateway_message_id"],
                               "b_credits": r["credits_charged"]} for r in rows])
    return res.rowcount or 0


_MARK_SENT_PG = text(
    "UPDATE message AS m SET state = :sent, sent_at = :now, updated_at = :now, gateway_job_id = :job, "
    "gateway_message_id = v.gmid, credits_charged = v.cr "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:gmids AS varchar[]), CAST(:crs AS integer[])) "
    "AS v(id, gmid, cr) WHERE m.id = v.id AND m.state = :sending")


def _mark_sent_pg(conn: Connection, rows: Sequence[dict[str, Any]], job_id: str | None, now: datetime) -> int:
    """One UPDATE ... FROM unnest(arrays): three array parameters whatever the batch size (a VALUES list of
    2,000 rows costs more to compile than to run)."""
    res = conn.execute(_MARK_SENT_PG, {
        "sent": State.SENT.value, "sending": State.SENDING.value, "now": now, "job": job_id,
        "ids": [r["id"] for r in rows], "gmids": [r["gateway_message_id"] for r in rows],
        "crs": [r["credits_charged"] for r in rows]})
    return res.rowcount or 0


def unpushed_queued(conn: Connection, older_than: datetime | None, limit: int) -> list[tuple[str, str]]:
    """Queued, unclaimed messages last pushed before ``older_than`` (all of them when None)."""
    q = select(M.id, M.channel, M.sender_id, M.template_id, M.is_unicode).where(
        M.state == State.QUEUED.value, M.batch_id.is_(None))
    if older_than is not None:
        q = q.where(M.pushed_at < older_than)
    rows = conn.execute(q.order_by(M.id).limit(limit))
    return [(r.id, group_key(r.channel, r.sender_id, r.template_id, r.is_unicode)) for r in rows]


def mark_pushed(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(update(MESSAGE).where(ids_match(conn, ids)).values(pushed_at=now))


def stale_sending(conn: Connection, older_than: datetime, limit: int) -> list[str]:
    rows = conn.execute(select(M.id).where(M.state == State.SENDING.value, M.sending_at < older_than)
                        .limit(limit))
    return [r[0] for r in rows]


def due_scheduled(conn: Connection, now: datetime, limit: int) -> list[str]:
    rows = conn.execute(select(M.id).where(M.state == State.SCHEDULED.value, M.send_at <= now)
                        .order_by(M.send_at).limit(limit))
    return [r[0] for r in rows]


def held(conn: Connection, reason: str, limit: int, channel: str | None = None,
         before: datetime | None = None) -> list[tuple[str, int, str]]:
    """(id, credits, channel) of held messages for ``reason``, oldest first."""
    q = select(M.id, M.credits, M.channel).where(M.state == State.HELD.value, M.hold_reason == reason)
    if channel is not None:
        q = q.where(M.channel == channel)
    if before is not None:
        q = q.where(M.updated_at < before)
    return [(r.id, r.credits, r.channel) for r in conn.execute(q.order_by(M.id).limit(limit))]


def requeue(conn: Connection, ids: Sequence[str], frm: State, now: datetime) -> list[tuple[str, str]]:
    """held/scheduled/unknown -> queued (unclaimed); returns (id, group key) of the rows that moved."""
    if not ids:
        return []
    res = conn.execute(
        update(MESSAGE).where(ids_match(conn, ids), M.state == frm.value)
        .values(state=State.QUEUED.value, batch_id=None, hold_reason=None, pushed_at=now, updated_at=now)
        .returning(M.id, M.channel, M.sender_id, M.template_id, M.is_unicode))
    return [(r.id, group_key(r.channel, r.sender_id, r.template_id, r.is_unicode)) for r in res]


def counts_by_state(conn: Connection, since: datetime | None = None) -> dict[tuple[str, str], int]:
    q = select(M.state, M.channel, func.count()).group_by(M.state, M.channel)
    if since is not None:
        q = q.where(M.created_at >= since)
    return {(r[0], r[1]): r[2] for r in conn.execute(q)}


def confirm_messages(conn: Connection, ids: Sequence[str], frm: State, now: datetime) -> int:
    """unconfirmed (or, reported late, unknown) -> sent for messages of a job that a delivery report lists:
    the gateway has them and charged them. Returns the credits of the rows that moved."""
    if not ids:
        return 0
    if frm not in ALLOWED_FROM[State.SENT] or frm is State.SENDING:
        raise ValueError(f"confirm_messages moves unconfirmed or unknown messages, not {frm.value}")
    res = conn.execute(update(MESSAGE).where(ids_match(conn, ids), M.state == frm.value)
                       .values(state=State.SENT.value, credits_charged=M.credits, last_error=None,
                               updated_at=now).returning(M.credits))
    return sum(int(r[0]) for r in res)


def ids_by_idempotency_key(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    """The messages already enqueued under any of ``keys``, as key -> message id."""
    found: dict[str, str] = {}
    for k in range(0, len(keys), IN_CHUNK):
        chunk = list(keys[k:k + IN_CHUNK])
        rows = conn.execute(select(M.idempotency_key, M.id).where(M.idempotency_key.in_(chunk)))
        found.update({r[0]: r[1] for r in rows})
    return found
