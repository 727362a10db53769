"""Named queries over the tables. The caller owns the transaction (``with transaction(engine) as conn``).

Every state change is a guarded UPDATE (``WHERE state IN (allowed sources)``): it happens at most once,
whatever the number of workers racing on the same rows, and states only move forward.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from .models import BATCH, EVENT, JOB, MESSAGE
from .states import FINAL, State, sources

M = MESSAGE.c
B = BATCH.c


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
    """Insert new message rows (dicts with Message column names)."""
    if rows:
        conn.execute(insert(MESSAGE), list(rows))


def find_by_idempotency_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(M.id, M.number, M.text, M.channel).where(M.idempotency_key == key)).first()
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
    rows = [{"message_id": mid, "at": at, "state": state.value, "detail": detail} for mid in message_ids]
    if rows:
        conn.execute(insert(EVENT), rows)


def publish_staged(conn: Connection, bulk_id: str, now: datetime) -> int:
    """Staged rows of a fully valid bulk request become queued (or stay scheduled)."""
    res = conn.execute(update(MESSAGE).where(M.bulk_id == bulk_id, M.state == State.STAGED.value)
                       .values(state=State.QUEUED.value, pushed_at=now, updated_at=now))
    return res.rowcount or 0


def staged_groups(conn: Connection, bulk_id: str, after: str, limit: int) -> list[tuple[str, str]]:
    """(id, group key) of a bulk request's queued rows in id order, for pushing into lanes."""
    rows = conn.execute(
        select(M.id, M.channel, M.sender_id, M.template_id, M.is_unicode)
        .where(M.bulk_id == bulk_id, M.state == State.QUEUED.value, M.id > after)
        .order_by(M.id).limit(limit))
    return [(r.id, group_key(r.channel, r.sender_id, r.template_id, r.is_unicode)) for r in rows]


def delete_staged(conn: Connection, bulk_id: str) -> int:
    res = conn.execute(MESSAGE.delete().where(M.bulk_id == bulk_id, M.state == State.STAGED.value))
    return res.rowcount or 0


def group_key(channel: str, sender_id: str, template_id: str, is_unicode: bool) -> str:
    """The batching group: messages of different groups never share a gateway call."""
    return f"{channel}|{sender_id}|{template_id}|{int(bool(is_unicode))}"


def parse_group(key: str) -> tuple[str, str, str, bool]:
    """The inverse of group_key."""
    channel, sender_id, template_id, uni = key.split("|")
    return channel, sender_id, template_id, uni == "1"


# --------------------------------------------------------------------------- batching


def claim_for_batch(conn: Connection, ids: Sequence[str], batch_id: str, now: datetime) -> list[str]:
    """Attach still-unclaimed queued messages to ``batch_id``; returns the ids actually claimed."""
    res = conn.execute(
        update(MESSAGE)
        .where(M.id.in_(list(ids)), M.state == State.QUEUED.value, M.batch_id.is_(None))
        .values(batch_id=batch_id, updated_at=now)
        .returning(M.id))
    return [r[0] for r in res]


def insert_batch(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(BATCH), [row])


def get_batch(conn: Connection, batch_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(BATCH).where(B.id == batch_id)).first()
    return dict(row._mapping) if row else None


def move_batch(conn: Connection, batch_id: str, frm: Sequence[str], to: str, now: datetime,
               **values: Any) -> bool:
    """Guarded batch state change; True when this caller made it."""
    stamp = {"sending": "sending_at"}.get(to, "done_at")
    res = conn.execute(update(BATCH).where(B.id == batch_id, B.state.in_(list(frm)))
                       .values(state=to, **{stamp: now}, **values))
    return (res.rowcount or 0) == 1


def batch_messages(conn: Connection, batch_id: str, state: State) -> list[Outgoing]:
    rows = conn.execute(select(M.id, M.number, M.text, M.credits, M.parts)
                        .where(M.batch_id == batch_id, M.state == state.value).order_by(M.id))
    return [Outgoing(r.id, r.number, r.text, r.credits, r.parts) for r in rows]


def move_batch_messages(conn: Connection, batch_id: str, to: State, now: datetime, **values: Any) -> int:
    """Guarded transition of all of a batch's messages that may legally move to ``to``."""
    stamp = {State.SENDING: {"sending_at": now}, State.SENT: {"sent_at": now}}.get(to, {})
    if to in FINAL:
        stamp = {"final_at": now}
    res = conn.execute(update(MESSAGE).where(M.batch_id == batch_id, M.state.in_(sources(to)))
                       .values(state=to.value, updated_at=now, **stamp, **values))
    return res.rowcount or 0


def move_messages(conn: Connection, ids: Sequence[str], to: State, now: datetime, **values: Any) -> list[str]:
    """Guarded transition of the given messages; returns the ids that moved."""
    if not ids:
        return []
    stamp: dict[str, Any] = {"final_at": now} if to in FINAL else {}
    res = conn.execute(update(MESSAGE).where(M.id.in_(list(ids)), M.state.in_(sources(to)))
                       .values(state=to.value, updated_at=now, **stamp, **values).returning(M.id))
    return [r[0] for r in res]


def mark_sent(conn: Connection, rows: Sequence[dict[str, Any]], job_id: str | None, now: datetime) -> int:
    """sending -> sent for each (id, gateway_message_id, credits_charged) row, in one executemany."""
    if not rows:
        return 0
    stmt = (update(MESSAGE)
            .where(M.id == bindparam("b_id"), M.state == State.SENDING.value)
            .values(state=State.SENT.value, sent_at=now, updated_at=now, gateway_job_id=job_id,
                    gateway_message_id=bindparam("b_gmid"), credits_charged=bindparam("b_credits")))
    res = conn.execute(stmt, [{"b_id": r["id"], "b_gmid": r["gateway_message_id"],
                               "b_credits": r["credits_charged"]} for r in rows])
    return res.rowcount or 0


def insert_job(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(JOB), [row])


# --------------------------------------------------------------------------- repair and release


def pending_batches(conn: Connection, older_than: datetime | None, limit: int) -> list[dict[str, Any]]:
    q = select(B.id, B.lane, B.size, B.channel, B.sender_id, B.template_id, B.is_unicode).where(
        B.state == "pending")
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
        conn.execute(update(MESSAGE).where(M.id.in_(list(ids))).values(pushed_at=now))


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
        update(MESSAGE).where(M.id.in_(list(ids)), M.state == frm.value)
        .values(state=State.QUEUED.value, batch_id=None, hold_reason=None, pushed_at=now, updated_at=now)
        .returning(M.id, M.channel, M.sender_id, M.template_id, M.is_unicode))
    return [(r.id, group_key(r.channel, r.sender_id, r.template_id, r.is_unicode)) for r in res]


def delete_abandoned_staged(conn: Connection, older_than: datetime) -> int:
    res = conn.execute(MESSAGE.delete().where(M.state == State.STAGED.value, M.created_at < older_than))
    return res.rowcount or 0


def counts_by_state(conn: Connection, since: datetime | None = None) -> dict[tuple[str, str], int]:
    q = select(M.state, M.channel, func.count()).group_by(M.state, M.channel)
    if since is not None:
        q = q.where(M.created_at >= since)
    return {(r[0], r[1]): r[2] for r in conn.execute(q)}


def batch_totals(conn: Connection, batch_id: str) -> int:
    """Credits the batch's messages will cost."""
    return int(conn.execute(select(func.coalesce(func.sum(M.credits), 0)).where(M.batch_id == batch_id))
               .scalar_one())
