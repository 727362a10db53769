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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import BATCH, EVENT, MESSAGE
from ..states import ALLOWED_FROM, FINAL, State, effective, sources
from ._base import IN_CHUNK, B, M, fit, group_key, ids_match
from .batches import sending_counts
from .rows import IdempotentMessage, MessageRow, row_of


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[int, IdempotentMessage]:
    """Insert new message rows (dicts with every Message column a new row sets; rows may differ in any
    column). Rows without an idempotency key go in one plain INSERT. Rows with a key are inserted with ON
    CONFLICT DO NOTHING on the key's unique index, in key order (two transactions with overlapping keys
    wait on each other without deadlocking), so a key another transaction holds, or an earlier row of
    ``rows`` took, skips the row instead of failing the transaction. Returns {i: the message holding the
    key of rows[i]} for the keyed rows that were not written. Bulk enqueues use MessageWriter."""
    plain = [r for r in rows if r["idempotency_key"] is None]
    if plain:
        conn.execute(insert(MESSAGE), plain)
    if len(plain) == len(rows):
        return {}
    # stable: of two rows with one key, the earlier one is written
    keyed = sorted((i for i, r in enumerate(rows) if r["idempotency_key"] is not None),
                   key=lambda i: rows[i]["idempotency_key"])
    keys = [str(rows[i]["idempotency_key"]) for i in keyed]
    if conn.dialect.name == "postgresql":
        stmt: Any = pg_insert(MESSAGE).on_conflict_do_nothing(
            index_elements=[M.idempotency_key], index_where=M.idempotency_key.isnot(None))
    else:
        stmt = sqlite_insert(MESSAGE).on_conflict_do_nothing(index_elements=[M.idempotency_key])
    conn.execute(stmt, [rows[i] for i in keyed])
    holders = by_idempotency_keys(conn, keys)
    return {i: holders[k] for i, k in zip(keyed, keys, strict=True) if holders[k].id != rows[i]["id"]}


#: The columns a bulk enqueue sets per row; every other column has one value for the whole request.
VARYING = ("id", "number", "text", "parts", "credits", "is_unicode", "meta")

#: One new row of a bulk enqueue: (number, text, parts, credits, is_unicode, meta JSON, idempotency key).
NewRow = tuple[str, str, int, int, bool, str | None, str | None]


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

    Rows share every column except VARYING (``common`` holds the rest). Rows without an idempotency key
    go, on PostgreSQL, into one COPY that spans the request (opened at the first such row, closed while
    keyed rows are written): the shared columns are formatted once, and the server stores rows while the
    producer validates the next ones. On SQLite each ``write`` is one executemany. Rows with a key are
    inserted with ON CONFLICT DO NOTHING on the key's unique index, so a key another request holds (even
    one committed a moment ago by a concurrent request) skips the row instead of failing the transaction;
    ``write`` returns those rows with the message that holds their key. Leaving the block with an
    exception aborts the COPY; the caller's transaction then rolls everything back.
    """

    def __init__(self, conn: Connection, common: dict[str, Any]) -> None:
        self.conn = conn
        self.common = common
        self._pg = conn.dialect.name == "postgresql"
        self._stack = ExitStack()
        self._copy: Any = None
        self._suffix = ""
        self._columns = ""
        if self._pg:
            shared = [c for c in common if c not in VARYING]
            self._columns = ", ".join([*VARYING, *shared])
            self._suffix = "".join("\t" + _copy_value(common[c]) for c in shared) + "\n"

    def __enter__(self) -> MessageWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)

    def _open_copy(self) -> Any:
        if self._copy is None:
            dbapi = self.conn.connection.driver_connection
            cur = self._stack.enter_context(dbapi.cursor())  # type: ignore[union-attr]
            self._copy = self._stack.enter_context(cur.copy(f"COPY message ({self._columns}) FROM STDIN"))
        return self._copy

    def _close_copy(self) -> None:
        """Ends the COPY (its rows stay in the transaction) so the connection can run other statements."""
        if self._copy is not None:
            self._copy = None
            self._stack.close()

    def write(self, ids: Sequence[str], rows: Sequence[NewRow]) -> dict[int, IdempotentMessage]:
        """New messages: ``ids[i]`` for ``rows[i]``. Returns {i: the message holding the key of row i} for the
        keyed rows that were not written because their key was taken."""
        plain = [i for i, r in enumerate(rows) if r[6] is None]
        if len(plain) < len(rows):
            self._write_plain([ids[i] for i in plain], [rows[i] for i in plain])
            return self._write_keyed(ids, rows)
        self._write_plain(ids, rows)
        return {}

    def _write_plain(self, ids: Sequence[str], rows: Sequence[NewRow]) -> None:
        if not rows:
            return
        if self._pg:
            # ids are hex and numbers normalised digits: only texts and metadata can hold characters COPY
            # escapes
            esc, sfx, special, null = _COPY_ESCAPES, self._suffix, _COPY_SPECIAL, "\\N"
            self._open_copy().write("".join([
                f"{mid}\t{number}\t{text.translate(esc) if special(text) else text}\t{parts:d}\t{credits:d}\t"
                f"{'t' if uni else 'f'}\t{null if meta is None else meta.translate(esc)}{sfx}"
                for mid, (number, text, parts, credits, uni, meta, _) in zip(ids, rows, strict=True)]))
            return
        self.conn.execute(insert(MESSAGE), self._dicts(ids, rows))

    def _dicts(self, ids: Sequence[str], rows: Sequence[NewRow]) -> list[dict[str, Any]]:
        common = self.common
        return [{**common, "id": mid, "number": number, "text": text, "parts": parts, "credits": credits,
                 "is_unicode": uni, "meta": meta, "idempotency_key": key}
                for mid, (number, text, parts, credits, uni, meta, key) in zip(ids, rows, strict=True)]

    def _write_keyed(self, ids: Sequence[str], rows: Sequence[NewRow]) -> dict[int, IdempotentMessage]:
        keyed = [i for i, r in enumerate(rows) if r[6] is not None]
        if self._pg:
            self._close_copy()
        taken = insert_messages(self.conn, self._dicts([ids[i] for i in keyed], [rows[i] for i in keyed]))
        return {keyed[j]: held for j, held in taken.items()}


def get_message(conn: Connection, message_id: str) -> MessageRow | None:
    """The message as a reader sees it: a claimed row of a ``sending`` batch is ``sending`` since the
    batch went so (states.effective)."""
    row = conn.execute(select(MESSAGE, B.state.label("batch_state"), B.sending_at.label("batch_sending_at"))
                       .outerjoin(BATCH, B.id == M.batch_id).where(M.id == message_id)).first()
    if row is None:
        return None
    m = dict(row._mapping)
    state = effective(m["state"], m.pop("batch_state"))
    batch_sending_at = m.pop("batch_sending_at")
    if state != m["state"]:
        m.update(state=state, sending_at=batch_sending_at, attempts=1)
    return row_of(MessageRow, m)


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
    return list(res.scalars().all())  # one fetch, not one per row


def mark_sent(conn: Connection, rows: Sequence[dict[str, Any]], job_id: str | None, now: datetime, *,
              batch_id: str, sending_at: datetime | None, frm: State = State.QUEUED) -> int:
    """``frm`` -> sent for each (id, gateway_message_id, credits_charged) row of ``batch_id``, in one
    statement; ``sending_at`` (the batch's) is written to the rows here, with the answer: the claimed rows
    were not rewritten when their batch went ``sending`` (states.THROUGH_BATCH)."""
    if not rows:
        return 0
    sources(State.SENT, frm)  # refuses an impossible source before any SQL
    if conn.dialect.name == "postgresql":
        res = conn.execute(_MARK_SENT_PG, {
            "sent": State.SENT.value, "frm": frm.value, "now": now, "job": job_id, "batch": batch_id,
            "sending_at": sending_at, **_sent_arrays(rows)})
        return res.rowcount or 0
    stmt = (update(MESSAGE)
            .where(M.id == bindparam("b_id"), M.state == frm.value, M.batch_id == batch_id)
            .values(state=State.SENT.value, sending_at=sending_at, sent_at=now, updated_at=now, attempts=1,
                    gateway_job_id=job_id, gateway_message_id=bindparam("b_gmid"),
                    credits_charged=bindparam("b_credits")))
    res = conn.execute(stmt, [{"b_id": r["id"], "b_gmid": r["gateway_message_id"],
                               "b_credits": r["credits_charged"]} for r in rows])
    return res.rowcount or 0


def _sent_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """mark_sent's three arrays as PostgreSQL array literals (one text parameter each, cast by the server):
    cheaper to build and to read than psycopg's per-element list dumping (_base.text_array). Message ids
    and a gateway message id can be anything: every element is quoted (``NULL`` unquoted is None)."""
    def quoted(value: Any) -> str:
        if value is None:
            return "NULL"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def array(values: list[Any]) -> str:
        if values and all(type(v) is str for v in values):  # common: strings without " or \, joined at once
            joined = '","'.join(values)
            if '"' not in joined and "\\" not in joined:
                return '{"' + joined + '"}'
        return "{" + ",".join([quoted(v) for v in values]) + "}"

    return {"ids": array([r["id"] for r in rows]),
            "gmids": array([r["gateway_message_id"] for r in rows]),
            "crs": "{" + ",".join(["NULL" if r["credits_charged"] is None else str(int(r["credits_charged"]))
                                   for r in rows]) + "}"}


#: One UPDATE ... FROM unnest(arrays): three array parameters whatever the batch size (a VALUES list of
#: 2,000 rows costs more to compile than to run), each one array literal in a text parameter.
_MARK_SENT_PG = text(
    "UPDATE message AS m SET state = :sent, sending_at = :sending_at, sent_at = :now, updated_at = :now, "
    "attempts = 1, gateway_job_id = :job, gateway_message_id = v.gmid, credits_charged = v.cr "
    "FROM unnest(CAST(:ids AS text[]), CAST(:gmids AS text[]), CAST(:crs AS integer[])) "
    "AS v(id, gmid, cr) WHERE m.id = v.id AND m.state = :frm AND m.batch_id = :batch")


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
    """(state, channel) -> messages, as readers see states: the claimed rows of ``sending`` batches
    (stored ``queued``) are counted as ``sending``."""
    q = select(M.state, M.channel, func.count()).group_by(M.state, M.channel)
    if since is not None:
        q = q.where(M.created_at >= since)
    out = {(r[0], r[1]): r[2] for r in conn.execute(q)}
    for channel, n in sending_counts(conn, since).items():
        queued = out.pop((State.QUEUED.value, channel), 0) - n
        if queued > 0:
            out[(State.QUEUED.value, channel)] = queued
        out[(State.SENDING.value, channel)] = out.get((State.SENDING.value, channel), 0) + n
    return out


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


def by_idempotency_keys(conn: Connection, keys: Sequence[str]) -> dict[str, IdempotentMessage]:
    """The messages enqueued under any of ``keys``, as key -> message."""
    found: dict[str, IdempotentMessage] = {}
    for k in range(0, len(keys), IN_CHUNK):
        chunk = list(keys[k:k + IN_CHUNK])
        rows = conn.execute(select(M.idempotency_key, M.id, M.number, M.text, M.channel, M.state)
                            .where(M.idempotency_key.in_(chunk)))
        found.update({r[0]: row_of(IdempotentMessage, r._mapping) for r in rows})
    return found
