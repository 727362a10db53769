"""Gateway jobs: leasing due jobs for the report sync, their messages as matching needs them, bulk report
writes and each job's credits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from ..models import JOB, MESSAGE
from ..states import FINAL, State, sources
from ._base import IN_CHUNK, J, M, ids_match
from .rows import JobMessage, LeasedJob, ReportWrite, row_of


def insert_job(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(JOB), [row])


def due_jobs(conn: Connection, now: datetime, limit: int, exclude: Sequence[str] = ()) -> list[str]:
    """Open jobs whose next poll has come and that nobody holds, oldest due first."""
    q = (select(J.job_id).where(J.open.is_(True), J.next_poll_at <= now,
                                or_(J.lease_until.is_(None), J.lease_until < now)))
    if exclude:
        q = q.where(J.job_id.not_in(list(exclude)))
    return [r[0] for r in conn.execute(q.order_by(J.next_poll_at, J.job_id).limit(limit))]


def lease_job(conn: Connection, job_id: str, owner: str, now: datetime,
              until: datetime) -> LeasedJob | None:
    """Take a due, unheld job until ``until``; None when it is no longer due or another runner holds it."""
    row = conn.execute(
        update(JOB).where(J.job_id == job_id, J.open.is_(True), J.next_poll_at <= now,
                          or_(J.lease_until.is_(None), J.lease_until < now))
        .values(lease_until=until, lease_owner=owner)
        .returning(J.job_id, J.channel, J.created_at, J.poll_count, J.invalid_id_count)).first()
    return row_of(LeasedJob, row._mapping) if row else None


def finish_job(conn: Connection, job_id: str, owner: str, **values: Any) -> bool:
    """Write a leased job's bookkeeping and free the lease; False when the lease is no longer ours."""
    res = conn.execute(update(JOB).where(J.job_id == job_id, J.lease_owner == owner)
                       .values(lease_until=None, lease_owner=None, **values))
    return (res.rowcount or 0) == 1


def job_messages(conn: Connection, job_id: str) -> list[JobMessage]:
    """A job's messages as report matching needs them, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE
    already holds the write lock): the states read here are the states the guarded UPDATEs see."""
    q = (select(M.id, M.state, M.number, M.text, M.gateway_message_id, M.status_raw, M.status_remark,
                M.credits).where(M.gateway_job_id == job_id).order_by(M.id).with_for_update())
    return [row_of(JobMessage, r._mapping) for r in conn.execute(q)]


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


def write_finals(conn: Connection, to: State, rows: Sequence[ReportWrite], now: datetime) -> int:
    """Guarded final transitions, with each message's raw status and remark; returns the rows moved."""
    values = {"state": to.value, "final_at": now, "updated_at": now}
    return _write_reports(conn, rows, M.state.in_(sources(to)), or_(*(M.state == s for s in sources(to))),
                          values)


def write_statuses(conn: Connection, rows: Sequence[ReportWrite], now: datetime) -> int:
    """Raw status and remark of messages not yet final (Sent, Expired, unknown names); returns rows hit."""
    not_final = [M.state != s.value for s in FINAL]
    return _write_reports(conn, rows, and_(*not_final), and_(*not_final), {"updated_at": now})


def _write_reports(conn: Connection, rows: Sequence[ReportWrite], guard: Any, many_guard: Any,
                   values: dict[str, Any]) -> int:
    """Bulk report writes. Rows sharing a raw status and remark (nearly all of a job) are written by one
    ``UPDATE ... WHERE id IN (...)`` per group and chunk; rows that also fill in a gateway message id, by
    one executemany (``many_guard`` avoids IN lists, which executemany cannot expand)."""
    groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    singles = []
    for r in rows:
        if r.gateway_message_id is None:
            groups[(r.status_raw, r.status_remark)].append(r.id)
        else:
            singles.append({"b_id": r.id, "b_raw": r.status_raw, "b_remark": r.status_remark,
                            "b_gmid": r.gateway_message_id})
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
