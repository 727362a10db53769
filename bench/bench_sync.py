"""Benchmark (not a test): one delivery-report sync run over N messages in J gateway jobs.

The simulator accepts the messages (J bulk sends), the database gets the matching `sent` rows and open jobs
(set-up, not timed), then one ``dispatcher.sync.run`` polls every job once and writes every report. Printed
per database: gateway calls, rows updated, seconds (with the share spent waiting for the gateway) and rows
updated per second.

    python -m bench.bench_sync                          # 100,000 messages in 50 jobs, SQLite and PostgreSQL
    python -m bench.bench_sync --db sqlite --outbox     # also write hook outbox rows for final messages
    python -m bench.bench_sync --smoke                  # 2,000 messages in 4 jobs (for a test)

PostgreSQL: a scratch database is created through ``--pg-url`` (default $SMSPOINT_TEST_PG_URL) and dropped.
Redis (the shared rate limiter) at ``--redis-url`` under a throwaway key prefix.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import insert

from dispatcher import sync
from dispatcher.channels import Channel
from dispatcher.context import Context
from dispatcher.db import dispose_all, transaction, upgrade
from dispatcher.gateway import Recipient, SmsPointClient
from dispatcher.models import JOB, MESSAGE
from dispatcher.settings import Settings
from dispatcher.simulator import SimulatorProcess, start_background

PG_ADMIN_URL = os.environ.get("SMSPOINT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SMSPOINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
SENDER, TEMPLATE = "SMSPNT", "1207161000000000002"
#: Fates: 93 % delivered, 5 % undelivered, 2 % still pending (Expired) at the poll.
LIFECYCLE = {"delivered_after_s": 0, "undelivered_after_s": 0, "pending_after_s": 0, "jitter": 0,
             "undelivered_rate": 0.05, "pending_rate": 0.02}


def _noop(payload: dict[str, Any]) -> None:
    """A hook target, only so that ``--outbox`` turns hook rows on."""


@dataclass
class Outcome:
    db: str
    messages: int
    jobs: int
    calls: int
    rows: int
    seconds: float
    gateway_s: float
    finals: dict[str, int]

    def line(self) -> str:
        return (f"{self.db:<11} {self.messages:>9,} {self.jobs:>5} {self.calls:>14} {self.rows:>13,} "
                f"{self.seconds:>8.2f} {self.gateway_s:>10.2f} {self.rows / max(self.seconds, 1e-9):>11,.0f}")


HEADER = (f"{'database':<11} {'messages':>9} {'jobs':>5} {'gateway calls':>14} {'rows updated':>13} "
          f"{'seconds':>8} {'gateway s':>10} {'rows/s':>11}")


def send_all(sim: SimulatorProcess, messages: int, jobs: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Have the simulator accept ``messages`` in ``jobs`` bulk sends; (job id, rows) for the database."""
    client = SmsPointClient(sim.base_url, sim.api_key, read_timeout=120)
    per_job, extra = divmod(messages, jobs)
    out, i = [], 0
    now = datetime.now(UTC)
    for j in range(jobs):
        size = per_job + (1 if j < extra else 0)
        recips = [Recipient(f"91995{(i + k) % 10_000_000:07d}",
                            f"Payment of Rs {i + k} received for account AC{i + k}. Thank you. - SMSPNT")
                  for k in range(size)]
        res = client.send_bulk(recips, sender_id=SENDER, template_id=TEMPLATE, channel=Channel.TRANSACTIONAL,
                               is_unicode=False)
        rows = [{"id": uuid.uuid4().hex, "state": "sent", "channel": "transactional", "sender_id": SENDER,
                 "template_id": TEMPLATE, "is_unicode": False, "number": m.number, "text": m.text, "parts": 1,
                 "credits": 1, "attempts": 1, "created_at": now, "sent_at": now, "updated_at": now,
                 "gateway_job_id": res.job_id, "gateway_message_id": m.message_id, "credits_charged": 1}
                for m in res.messages]
        assert res.job_id, "the simulator always answers with a job id"
        out.append((res.job_id, rows))
        i += size
    client.close()
    return out


def load(url: str, sent: list[tuple[str, list[dict[str, Any]]]]) -> None:
    upgrade(url)
    ctx = Context(Settings(database_url=url))
    now = datetime.now(UTC)
    with transaction(ctx.engine) as conn:
        for job_id, rows in sent:
            for k in range(0, len(rows), 5000):
                conn.execute(insert(MESSAGE), rows[k:k + 5000])
            conn.execute(insert(JOB), [{"job_id": job_id, "channel": "transactional", "size": len(rows),
                                        "created_at": now, "open": True, "next_poll_at": now}])


@contextmanager
def database(kind: str, pg_admin: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    import psycopg

    name = f"smspt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        dispose_all()
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_one(kind: str, args: argparse.Namespace, sim: SimulatorProcess) -> Outcome:
    sim.admin.reset()
    sim.admin.set_lifecycle(**LIFECYCLE)
    sent = send_all(sim, args.messages, args.jobs)
    prefix = f"smspt-bench-{uuid.uuid4().hex[:8]}"
    with database(kind, args.pg_url) as url:
        load(url, sent)
        settings = Settings(database_url=url, redis_url=args.redis_url, redis_prefix=prefix,
                            smspoint_base_url=sim.base_url, smspoint_api_key=SecretStr(sim.api_key),
                            read_timeout=120, rate_limit_calls_per_s=1000.0,
                            hook_callable=f"{__name__}:_noop" if args.outbox else None)
        ctx = Context(settings)
        waited = [0.0]
        real = ctx.client.delivery_status

        def timed(job_id: str) -> Any:
            t = time.perf_counter()
            try:
                return real(job_id)
            finally:
                waited[0] += time.perf_counter() - t

        ctx.client.delivery_status = timed  # type: ignore[method-assign]
        calls_before = _status_calls(sim)
        started = time.perf_counter()
        result = sync.run(ctx, max_calls=args.jobs)
        seconds = time.perf_counter() - started
        calls = _status_calls(sim) - calls_before
        assert calls == result.calls, (calls, result.calls)
        for key in ctx.redis.scan_iter(match=f"{prefix}*"):
            ctx.redis.delete(key)
        ctx.redis.close()
        ctx.client.close()
        dispose_all()
    return Outcome(kind, args.messages, args.jobs, calls, result.rows_updated, seconds, waited[0],
                   result.finals)


def _status_calls(sim: SimulatorProcess) -> int:
    return sum(1 for c in sim.admin.calls() if c["command"] == "sms-delivery-status")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_sync", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL for a scratch database")
    p.add_argument("--redis-url", default=REDIS_URL)
    p.add_argument("--outbox", action="store_true", help="hooks on: also write one outbox row per final")
    p.add_argument("--smoke", action="store_true", help="tiny run (2,000 messages, 4 jobs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.messages, args.jobs = 2000, 4
    if not 1 <= args.jobs or args.messages > 2000 * args.jobs or args.messages < args.jobs:
        p.error("need jobs <= messages <= 2000 * jobs (the gateway takes 2000 recipients per call)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every database synced every message (prints a table)."""
    args = parse(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    outcomes = []
    with start_background(seed=1, quiet=True) as sim:
        for kind in kinds:
            outcomes.append(run_one(kind, args, sim))
    print(HEADER)
    for o in outcomes:
        print(o.line() + f"   finals={o.finals}")
    ok = all(o.calls == o.jobs and o.rows == o.messages for o in outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
