"""Named queries over the tables. The caller owns the transaction (``with transaction(engine) as conn``).

Every state change is a guarded UPDATE (``WHERE state IN (allowed sources)``): it happens at most once,
whatever the number of workers racing on the same rows, and states only move forward.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from .models import BATCH, EVENT, JOB, MESSAGE, OUTBOX
from .states import ALLOWED_FROM, FINAL, BatchState, State, batch_sources, sources

M = MESSAGE.c
B = BATCH.c


def clip(column: Any, value: str | None) -> str | None:
    """``value`` cut to ``column``'s length: the one place texts (errors, details) are truncated."""
    length = getattr(column.type, "length", None)
    return value[:length] if value is not None and length and len(value) > length else value


def fit(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (column name -> value) with every text cut to its column's length."""
    return {k: clip(table.c[k], v) if isinstance(v, str) and k in table.c else v for k, v in values.items()}


@dataclass(frozen=True)
class Outgoing:
    """A message as a worker needs it for a gateway call."""

    id: str
    number: str
    text: str
    credits: int
    parts: int


# --------------------------------------------------------------------------- enqueue


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


def find_by_idempotency_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(M.id, M.number, M.text, M.channel, M.state)
                       .where(M.idempotency_key == key)).first()
    return dict(row._mapping) if row else None


def get_message(conn: Connection, message_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(MESSAGE).where(M.id == message_id)).first()
    return dict(row._mapping) if row else None


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


def group_key(channel: str, sender_id: str, template_id: str, is_unicode: bool) -> str:
    """The batching group: messages of different groups never share a gateway call."""
    return f"{channel}|{sender_id}|{template_id}|{int(bool(is_unicode))}"


def parse_group(key: str) -> tuple[str, str, str, bool]:
    """The inverse of group_key."""
    channel, sender_id, template_id, uni = key.split("|")
    return channel, sender_id, template_id, uni == "1"


# --------------------------------------------------------------------------- batching


def ids_match(conn: Connection, ids: Sequence[str]) -> Any:
    """``message.id`` is one of ``ids``: one array parameter on PostgreSQL (an IN list of 2,000 bound
    values costs more to compile than the statement costs to run), an IN list on SQLite."""
    if conn.dialect.name == "postgresql":
        return M.id == any_(bindparam("ids", list(ids), type_=ARRAY(String)))
    return M.id.in_(list(ids))


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
    return [r[0] for r in res]


def insert_batch(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(BATCH), [row])


def get_batch(conn: Connection, batch_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(BATCH).where(B.id == batch_id)).first()
    return dict(row._mapping) if row else None


def move_batch(conn: Connection, batch_id: str, to: BatchState, now: datetime, *,
               frm: BatchState | None = None, **values: Any) -> bool:
    """Guarded batch state change (sources from ``states.BATCH_ALLOWED_FROM``, or only ``frm``); True when
    this caller made it."""
    stamp = "sending_at" if to is BatchState.SENDING else "done_at"
    res = conn.execute(update(BATCH).where(B.id == batch_id, B.state.in_(batch_sources(to, frm)))
                       .values(state=to.value, **{stamp: now}, **fit(BATCH, values)))
    return (res.rowcount or 0) == 1


def batch_messages(conn: Connection, batch_id: str, state: State) -> list[Outgoing]:
    rows = conn.execute(select(M.id, M.number, M.text, M.credits, M.parts)
                        .where(M.batch_id == batch_id, M.state == state.value).order_by(M.id))
    return [Outgoing(r.id, r.number, r.text, r.credits, r.parts) for r in rows]


def count_batch_messages(conn: Connection, batch_id: str, state: State) -> int:
    return int(conn.execute(select(func.count()).select_from(MESSAGE)
                            .where(M.batch_id == batch_id, M.state == state.value)).scalar_one())


def move_batch_messages(conn: Connection, batch_id: str, to: State, now: datetime, **values: Any) -> int:
    """Guarded transition of all of a batch's messages that may legally move to ``to``."""
    stamp = {State.SENDING: {"sending_at": now}, State.SENT: {"sent_at": now}}.get(to, {})
    if to in FINAL:
        stamp = {"final_at": now}
    res = conn.execute(update(MESSAGE).where(M.batch_id == batch_id, M.state.in_(sources(to)))
                       .values(state=to.value, updated_at=now, **stamp, **fit(MESSAGE, values)))
    return res.rowcount or 0


def move_messages(conn: Connection, ids: Sequence[str], to: State, now: datetime, **values: Any) -> list[str]:
    """Guarded transition of the given messages; returns the ids that moved."""
    if not ids:
        return []
    stamp: dict[str, Any] = {"final_at": now} if to in FINAL else {}
    res = conn.execute(update(MESSAGE).where(ids_match(conn, ids), M.state.in_(sources(to)))
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


def reschedule_batch(conn: Connection, batch_id: str, send_at: datetime, now: datetime) -> int:
    """A batch's queued messages go back to `scheduled` (unclaimed) for ``send_at``."""
    res = conn.execute(update(MESSAGE).where(M.batch_id == batch_id, M.state == State.QUEUED.value)
                       .values(state=State.SCHEDULED.value, send_at=send_at, batch_id=None,
                               updated_at=now))
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


def insert_job(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(JOB), [row])


# --------------------------------------------------------------------------- repair and release


def pending_batches(conn: Connection, older_than: datetime | None, limit: int) -> list[dict[str, Any]]:
    q = select(B.id, B.lane, B.size, B.channel, B.sender_id, B.template_id, B.is_unicode).where(
        B.state == BatchState.PENDING.value)
    if older_than is not None:
        q = q.where(B.published_at < older_than)
    return [dict(r._mapping) for r in conn.execute(q.order_by(B.created_at).limit(limit))]


def touch_batches(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(update(BATCH).where(B.id.in_(list(ids))).values(published_at=now))


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


def batch_totals(conn: Connection, batch_id: str) -> int:
    """Credits the batch's messages will cost."""
    return int(conn.execute(select(func.coalesce(func.sum(M.credits), 0)).where(M.batch_id == batch_id))
               .scalar_one())


# ---- delivery reports
# Gateway jobs are leased row by row (lease_until / lease_owner), which works the same on SQLite and
# PostgreSQL: a second runner's guarded UPDATE finds the row taken (PostgreSQL re-checks the WHERE after
# the first runner commits) and moves on.

J = JOB.c
HO = OUTBOX.c


def due_jobs(conn: Connection, now: datetime, limit: int, exclude: Sequence[str] = ()) -> list[str]:
    """Open jobs whose next poll has come and that nobody holds, oldest due first."""
    q = (select(J.job_id).where(J.open.is_(True), J.next_poll_at <= now,
                                or_(J.lease_until.is_(None), J.lease_until < now)))
    if exclude:
        q = q.where(J.job_id.not_in(list(exclude)))
    return [r[0] for r in conn.execute(q.order_by(J.next_poll_at, J.job_id).limit(limit))]


def lease_job(conn: Connection, job_id: str, owner: str, now: datetime,
              until: datetime) -> dict[str, Any] | None:
    """Take a due, unheld job until ``until``; None when it is no longer due or another runner holds it."""
    row = conn.execute(
        update(JOB).where(J.job_id == job_id, J.open.is_(True), J.next_poll_at <= now,
                          or_(J.lease_until.is_(None), J.lease_until < now))
        .values(lease_until=until, lease_owner=owner)
        .returning(J.job_id, J.channel, J.created_at, J.poll_count, J.invalid_id_count)).first()
    return dict(row._mapping) if row else None


def finish_job(conn: Connection, job_id: str, owner: str, **values: Any) -> bool:
    """Write a leased job's bookkeeping and free the lease; False when the lease is no longer ours."""
    res = conn.execute(update(JOB).where(J.job_id == job_id, J.lease_owner == owner)
                       .values(lease_until=None, lease_owner=None, **values))
    return (res.rowcount or 0) == 1


def job_messages(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    """A job's messages as report matching needs them, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE
    already holds the write lock): the states read here are the states the guarded UPDATEs see."""
    q = (select(M.id, M.state, M.number, M.text, M.gateway_message_id, M.status_raw, M.status_remark,
                M.credits).where(M.gateway_job_id == job_id).order_by(M.id).with_for_update())
    return [dict(r._mapping) for r in conn.execute(q)]


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


def add_job_credits(conn: Connection, job_id: str, *, charged: int = 0, released: int = 0) -> None:
    """Add to a job's charged and released credits (its unconfirmed messages settled by the reports)."""
    if charged or released:
        conn.execute(update(JOB).where(J.job_id == job_id)
                     .values(credits_charged=J.credits_charged + charged,
                             credits_released=J.credits_released + released))


def job_credits(conn: Connection, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    """The most recent jobs' credits (reserved, charged, released, still pending), newest first."""
    q = select(J.job_id, J.channel, J.size, J.created_at, J.open, J.credits_reserved, J.credits_charged,
               J.credits_released)
    if since is not None:
        q = q.where(J.created_at >= since)
    rows = [dict(r._mapping) for r in conn.execute(q.order_by(J.created_at.desc(), J.job_id).limit(limit))]
    for r in rows:
        r["credits_pending"] = r["credits_reserved"] - r["credits_charged"] - r["credits_released"]
    return rows


def credit_totals(conn: Connection, since: datetime | None) -> dict[str, int]:
    """Credits over all jobs created since ``since`` (reserved, charged, released), and the credits of
    `unknown` and `unconfirmed` messages: what the gateway may or may not have charged."""
    q = select(func.coalesce(func.sum(J.credits_reserved), 0), func.coalesce(func.sum(J.credits_charged), 0),
               func.coalesce(func.sum(J.credits_released), 0))
    if since is not None:
        q = q.where(J.created_at >= since)
    reserved, charged, released = conn.execute(q).one()
    out = {"reserved": int(reserved), "charged": int(charged), "released": int(released)}
    for state in (State.UNKNOWN, State.UNCONFIRMED):
        mq = select(func.coalesce(func.sum(M.credits), 0)).where(M.state == state.value)
        if since is not None:
            mq = mq.where(M.created_at >= since)
        out[state.value] = int(conn.execute(mq).scalar_one())
    return out


def write_finals(conn: Connection, to: State, rows: Sequence[dict[str, Any]], now: datetime) -> int:
    """Guarded final transitions of rows of (b_id, b_raw, b_remark, b_gmid); returns the rows moved."""
    values = {"state": to.value, "final_at": now, "updated_at": now}
    return _write_reports(conn, rows, M.state.in_(sources(to)), or_(*(M.state == s for s in sources(to))),
                          values)


def write_statuses(conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> int:
    """Raw status and remark of messages not yet final (Sent, Expired, unknown names); returns rows hit."""
    not_final = [M.state != s.value for s in FINAL]
    return _write_reports(conn, rows, and_(*not_final), and_(*not_final), {"updated_at": now})


#: Ids per ``WHERE id IN (...)`` on SQLite (which allows 32766 parameters).
IN_CHUNK = 1000


def _write_reports(conn: Connection, rows: Sequence[dict[str, Any]], guard: Any, many_guard: Any,
                   values: dict[str, Any]) -> int:
    """Bulk report writes. Rows sharing a raw status and remark (nearly all of a job) are written by one
    ``UPDATE ... WHERE id IN (...)`` per group and chunk; rows that also fill in a gateway message id, by
    one executemany (``many_guard`` avoids IN lists, which executemany cannot expand)."""
    groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    singles = []
    for r in rows:
        if r["b_gmid"] is None:
            groups[(r["b_raw"], r["b_remark"])].append(r["b_id"])
        else:
            singles.append(r)
    written = 0
    pg = conn.dialect.name == "postgresql"
    for (raw, remark), ids in groups.items():
        for k in range(0, len(ids), len(ids) if pg else IN_CHUNK):
            chunk = ids[k:k + IN_CHUNK] if not pg else ids
            # PostgreSQL: one array parameter (= ANY), not thousands of placeholders to render and parse
            match = ids_match(conn, chunk)
            res = conn.execute(update(MESSAGE).where(match, guard)
                               .values(status_raw=raw, status_remark=remark, **values))
            written += res.rowcount or 0
    if singles:
        gmid = func.coalesce(M.gateway_message_id, bindparam("b_gmid"))
        stmt = (update(MESSAGE).where(M.id == bindparam("b_id"), many_guard)
                .values(status_raw=bindparam("b_raw"), status_remark=bindparam("b_remark"),
                        gateway_message_id=gmid, **values))
        written += conn.execute(stmt, singles).rowcount or 0
    return written


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


def claim_hooks(conn: Connection, now: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
    """Take up to ``limit`` due hook rows by moving their next attempt to ``until`` (a lease: no other run
    sees them as due before then); returns the rows taken."""
    due = (select(HO.message_id).where(HO.done.is_(False), HO.next_attempt_at <= now)
           .order_by(HO.next_attempt_at).limit(limit))
    res = conn.execute(update(OUTBOX).where(HO.message_id.in_(due.scalar_subquery()), HO.done.is_(False),
                                            HO.next_attempt_at <= now)
                       .values(next_attempt_at=until)
                       .returning(HO.message_id, HO.state, HO.attempts, HO.delivered_to, HO.last_error))
    return [dict(r._mapping) for r in res]


def hook_messages(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The message rows hook payloads are made from."""
    if not ids:
        return {}
    rows = conn.execute(select(MESSAGE).where(ids_match(conn, ids)))
    return {r.id: dict(r._mapping) for r in rows}


def write_hook_results(conn: Connection, rows: Sequence[dict[str, Any]], leased_until: datetime) -> int:
    """Record attempts (rows of b_id, b_done, b_attempts, b_next, b_error, b_to) of hook rows still leased
    to this run (``next_attempt_at == leased_until``), in one executemany."""
    if not rows:
        return 0
    stmt = (update(OUTBOX).where(HO.message_id == bindparam("b_id"), HO.done.is_(False),
                                 HO.next_attempt_at == leased_until)
            .values(done=bindparam("b_done"), attempts=bindparam("b_attempts"),
                    next_attempt_at=bindparam("b_next"), last_error=bindparam("b_error"),
                    delivered_to=bindparam("b_to")))
    rows = [{**r, "b_error": clip(HO.last_error, r["b_error"])} for r in rows]
    return conn.execute(stmt, rows).rowcount or 0


def hook_rows(conn: Connection, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Hook outbox rows (all, or the given messages'), for operators and tests."""
    q = select(OUTBOX).order_by(HO.created_at, HO.message_id)
    if ids is not None:
        q = q.where(HO.message_id.in_(list(ids)))
    return [dict(r._mapping) for r in conn.execute(q)]


# --------------------------------------------------------------------------- retention
# Deletes of finished rows only (the policy is dispatcher/retention.py; dispatcher/purge.py runs them in
# small transactions). Messages are scanned by primary key: ids start with their creation time in
# milliseconds (dispatcher/ids.py), so "created before the cutoff" is an id range on the primary key, and
# every guard (final state, final_at, delivered hook) is checked again by the DELETE itself.

EV = EVENT.c
#: Batch states in which a batch is finished (pending and sending batches are never purged).
BATCH_DONE = ("sent", "failed", "cancelled", "held", "unknown")
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


# --------------------------------------------------------------------------- idempotency keys (send-file)


def ids_by_idempotency_key(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    """The messages already enqueued under any of ``keys``, as key -> message id."""
    found: dict[str, str] = {}
    for k in range(0, len(keys), IN_CHUNK):
        chunk = list(keys[k:k + IN_CHUNK])
        rows = conn.execute(select(M.idempotency_key, M.id).where(M.idempotency_key.in_(chunk)))
        found.update({r[0]: r[1] for r in rows})
    return found
