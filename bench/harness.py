"""Shared benchmark plumbing: the options of a run, the services it uses (a scratch database, an isolated
Redis key prefix, the simulator) and the Stack the pipeline scenarios build on them (settings, producer,
worker processes from bench/procs.py), with small number helpers.

Everything a run starts is stopped and everything it creates is removed on the way out of its ``with``
block, also on Ctrl-C and failures: workers run in their own process group (stopped as a group, and told
to die with the harness), PostgreSQL databases are dropped, Redis keys under the run's prefix deleted.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.db import dispose_all, reading, upgrade
from dispatcher.demo.infra import delete_keys
from dispatcher.models import BATCH, MESSAGE
from dispatcher.settings import Settings
from dispatcher.simulator import SimulatorProcess, start_background
from workers.queues import ALL_QUEUES

from .procs import ROOT, Worker, start_worker, stop_all, wait_accepted

PG_ADMIN_URL = os.environ.get("SMSPOINT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SMSPOINT_BENCH_REDIS_URL",
                           os.environ.get("SMSPOINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"))
#: Credits the simulator starts with per package: enough never to be the limit.
SIM_CREDITS = 2_000_000_000


@dataclass
class Options:
    """One invocation's configuration (see ``python -m bench --help``)."""

    size: int = 100_000
    latency_ms: float = 50.0
    concurrency: int = 4
    otp_concurrency: int = 2
    dbs: tuple[str, ...] = ("postgresql", "sqlite")
    memory_size: int = 1_000_000
    scale_size: int = 50_000
    baseline_size: int = 0  #: 0: about 20 s of the baseline's steady state
    profile_size: int = 20_000
    purge_size: int = 1_000_000  #: old rows purged during the retention scenario's second drain
    history_size: int = 10_000_000  #: finished messages already in the table (scenario history)
    history_sms: int = 5_000  #: send_sms calls per side of scenario history
    smoke: bool = False
    out: Path = ROOT / "bench" / "results"
    pg_admin: str = PG_ADMIN_URL
    redis_url: str = REDIS_URL

    @property
    def main_db(self) -> str:
        """The database of the pipeline scenarios that run on one database only."""
        return self.dbs[0]


@dataclass
class Run:
    """State shared by the scenarios of one invocation (so comparisons come from the same run)."""

    opts: Options
    logs: Path
    cache: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- services


@contextmanager
def database(kind: str, opts: Options, tmp: Path) -> Iterator[str]:
    """A migrated scratch database: a SQLite file under ``tmp`` or a PostgreSQL database, dropped after."""
    if kind == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        try:
            upgrade(url)
            yield url
        finally:
            dispose_all()
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database {kind!r} (sqlite or postgresql)")
    import psycopg

    name = f"smspt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(opts.pg_admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = opts.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}/{name}"
        upgrade(url)
        yield url
    finally:
        dispose_all()
        with psycopg.connect(opts.pg_admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix unique to this run; every key under it (ours and Celery's) is deleted afterwards."""
    prefix = f"smspt-bench-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        delete_keys(url, prefix)


@contextmanager
def simulator(opts: Options, *extra: str) -> Iterator[SimulatorProcess]:
    """The gateway simulator on a free port with the run's latency and credits that never run out."""
    args = ["--latency-ms", f"{opts.latency_ms:g}", "--credits", str(SIM_CREDITS), *extra]
    with start_background(seed=1, quiet=True, args=args) as sim:
        yield sim


# --------------------------------------------------------------------------- the pipeline stack


def bench_settings(database_url: str, redis_url: str, prefix: str, sim: SimulatorProcess,
                   **overrides: Any) -> Settings:
    """Settings of a benchmark deployment: the defaults, except what keeps the measurement honest.

    The promotional window is open all day (a run at night must still send), the shared rate limit is
    high enough never to be the limit (it protects a real gateway), and the report sync is off (measured
    on its own in scenario 6): all three are stated in every result's configuration.
    """
    values: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "redis_prefix": prefix,
        "broker_key_prefix": f"{prefix}:celery:", "smspoint_base_url": sim.base_url,
        "smspoint_api_key": sim.api_key, "rate_limit_calls_per_s": 10_000.0,
        "promo_window_start": dtime(0, 0), "promo_window_end": dtime(23, 59, 59, 999999),
        "sync_interval_s": 3600.0, "metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a worker process needs to build the same Settings."""
    env = {**os.environ, **settings.to_env()}
    env["PYTHONPATH"] = str(ROOT)
    return env


#: Warm-shutdown grace of workers after a measurement (they are idle; then SIGKILL, so a run ends fast).
TEARDOWN_GRACE_S = 1.0
SMOKE_FLUSH = {"flush_interval_transactional_ms": 50, "flush_interval_promotional_ms": 50}
SETTINGS_SHOWN = ("batch_size", "flush_interval_otp_ms", "flush_interval_transactional_ms",
                  "flush_interval_promotional_ms", "rate_limit_calls_per_s", "promo_window_start",
                  "promo_window_end", "sync_interval_s")


@dataclass
class Stack:
    """A migrated database, an isolated Redis prefix, a producer and the workers started on it."""

    settings: Settings
    ctx: Context
    dispatcher: Dispatcher
    sim: SimulatorProcess
    logs: Path
    db: str
    workers: list[Worker] = field(default_factory=list)
    #: Only messages created from then on are counted (a database seeded with history: bench.history).
    since: datetime | None = None

    def _new(self, q: Any) -> Any:
        return q if self.since is None else q.where(MESSAGE.c.created_at >= self.since)

    def start(self, name: str, *, queues: Sequence[str] = ALL_QUEUES, concurrency: int,
              beat: bool = False) -> Worker:
        w = start_worker(settings_env(self.settings), self.logs, name, queues=queues,
                         concurrency=concurrency, beat=beat)
        self.workers.append(w)
        return w

    def wait_ready(self) -> None:
        for w in self.workers:
            w.wait_ready()

    def described(self) -> dict[str, Any]:
        return {name: str(getattr(self.settings, name)) for name in SETTINGS_SHOWN}

    def state_counts(self, channel: str | None = None) -> dict[str, int]:
        q = self._new(select(MESSAGE.c.state, func.count()).group_by(MESSAGE.c.state))
        if channel:
            q = q.where(MESSAGE.c.channel == channel)
        with reading(self.ctx.engine) as conn:
            return {r[0]: int(r[1]) for r in conn.execute(q)}

    def accepted(self) -> int:
        """Messages the simulator has accepted so far (its ledger's length)."""
        return int(self.sim.admin.ledger_page(0, 1)["total"])

    def wait_accepted(self, total: int, timeout: float,
                      on_poll: Callable[[int], None] | None = None) -> float:
        """Wait until the simulator has accepted ``total`` messages; returns time.time() when seen."""
        return wait_accepted(self.sim, total, timeout, self.workers, on_poll,
                             lambda: f"states={self.state_counts()}")

    def recorded(self, channel: str | None = None) -> int:
        """Messages whose gateway answer is recorded (``sent_at`` set)."""
        q = self._new(select(func.count()).where(MESSAGE.c.sent_at.is_not(None)))
        if channel:
            q = q.where(MESSAGE.c.channel == channel)
        with reading(self.ctx.engine) as conn:
            return int(conn.execute(q).scalar_one())

    def wait_recorded(self, total: int, channel: str | None = None, timeout: float = 60.0) -> None:
        """Wait until ``total`` messages have their gateway answer recorded."""
        deadline = time.monotonic() + timeout
        while self.recorded(channel) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{total:,} answers not recorded; states={self.state_counts()}")
            time.sleep(0.05)

    def times(self, channel: str | None = None) -> list[tuple[float, float]]:
        """(created_at, sent_at) as epoch seconds of every sent message."""
        q = self._new(select(MESSAGE.c.created_at, MESSAGE.c.sent_at).where(MESSAGE.c.sent_at.is_not(None)))
        if channel:
            q = q.where(MESSAGE.c.channel == channel)
        with reading(self.ctx.engine) as conn:
            return [(epoch(c), epoch(s)) for c, s in conn.execute(q)]

    def stages(self, channel: str) -> list[tuple[float, float, float, float]]:
        """(created_at, batched, sending_at, sent_at) as epoch seconds of every sent message of
        ``channel``; ``batched`` is when its batch row was written (the collector's claim)."""
        m, b = MESSAGE.c, BATCH.c
        q = (select(m.created_at, b.created_at, m.sending_at, m.sent_at)
             .join_from(MESSAGE, BATCH, m.batch_id == b.id)
             .where(m.sent_at.is_not(None), m.channel == channel))
        with reading(self.ctx.engine) as conn:
            return [(epoch(c), epoch(bc), epoch(sg), epoch(st)) for c, bc, sg, st in conn.execute(q)]

    def last_sent(self) -> float:
        """The latest ``sent_at`` as epoch seconds (0 when nothing was sent)."""
        with reading(self.ctx.engine) as conn:
            last = conn.execute(self._new(select(func.max(MESSAGE.c.sent_at)))).scalar_one()
        return epoch(last) if last else 0.0

    def latencies(self, channel: str | None = None) -> tuple[list[float], float, float]:
        """(sent_at - created_at in seconds per sent message, first created_at, last sent_at)."""
        rows = self.times(channel)
        if not rows:
            return [], 0.0, 0.0
        return [s - c for c, s in rows], min(c for c, _ in rows), max(s for _, s in rows)


def epoch(value: datetime) -> float:
    """A database timestamp as epoch seconds (SQLite gives naive UTC datetimes back)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@contextmanager
def stack(run: Run, db: str, sim: SimulatorProcess, **overrides: Any) -> Iterator[Stack]:
    """A Stack on a fresh database and Redis prefix; workers stopped and everything removed after."""
    if run.opts.smoke:  # tiny runs: do not wait a second for the last partial batch
        overrides = {**SMOKE_FLUSH, **overrides}
    with tempfile.TemporaryDirectory(prefix="smspt-bench-") as tmp, \
            database(db, run.opts, Path(tmp)) as url, redis_prefix(run.opts.redis_url) as prefix:
        settings = bench_settings(url, run.opts.redis_url, prefix, sim, **overrides)
        ctx = Context(settings)
        s = Stack(settings, ctx, Dispatcher(ctx), sim, run.logs, db)
        try:
            yield s
        finally:
            stop_all(s.workers, grace_s=TEARDOWN_GRACE_S)
            if "publisher" in ctx.__dict__:
                ctx.publisher.app.close()  # type: ignore[attr-defined]
            ctx.redis.close()
            dispose_all()


# --------------------------------------------------------------------------- numbers


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max / mean in milliseconds (nearest-rank)."""
    if not seconds:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0, "n": 0}
    xs = sorted(seconds)

    def rank(p: float) -> float:
        return xs[min(len(xs), max(1, math.ceil(p / 100 * len(xs)))) - 1] * 1000

    return {"p50_ms": rank(50), "p99_ms": rank(99), "max_ms": xs[-1] * 1000,
            "mean_ms": sum(xs) / len(xs) * 1000, "n": len(xs)}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0
