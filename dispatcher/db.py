"""Database engines: SQLite (WAL, safe with several worker processes) or PostgreSQL, and migrations.

Engines are made once per process (and again after a fork: Celery's prefork children must not share
a parent's connections).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import OperationalError

from .errors import StorageUnavailable
from .where import cause, masked

_engines: dict[tuple[int, str], Engine] = {}

#: SQLite's own busy wait per statement (short: BEGIN IMMEDIATE polls in Python, see _begin_immediate).
SQLITE_BUSY_MS = 50
#: How long a writer waits for SQLite's write lock before giving up (StorageUnavailable).
SQLITE_LOCK_WAIT_S = 60.0
_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Prefer psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def _existing_file(url: str) -> str:
    """A SQLite file URL that opens the file read-write but never creates it (``mode=rw``): a command run
    in the wrong folder must say there is no database, not leave an empty one behind. Migrations
    (alembic's own engine) create the file."""
    u = make_url(url)
    path = u.database or ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    return u.set(database=f"file:{path}").update_query_dict({"mode": "rw", "uri": "true"}).render_as_string(
        hide_password=False)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(_existing_file(url), connect_args={"timeout": 60, "check_same_thread": False},
                           pool_size=5, max_overflow=10, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlocking lock upgrades between processes.
        # Read-only work (``reading``) begins DEFERRED and never waits for writers (WAL).
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode == "DEFERRED":
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        _begin_immediate(conn)

    return engine


def _begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE, polling every millisecond while another process writes.

    SQLite's own busy handler sleeps up to 100 ms between attempts, so under a steady stream of bulk
    writes a short transaction (an OTP) can wait seconds; polling finely keeps the wait close to the
    length of the transaction ahead of it.
    """
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def make_engine(url: str) -> Engine:
    """A new engine for ``url`` (SQLite pragmas and BEGIN IMMEDIATE, or a pre-pinged PostgreSQL pool)."""
    url = normalize_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url)
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True,
                           connect_args={"connect_timeout": 5})
    event.listen(engine, "handle_error", _without_row_values)
    return engine


#: A DETAIL line of a PostgreSQL error, up to the next line that starts another field (HINT:, ...).
_DETAIL = re.compile(r"^DETAIL:.*?(?=^[A-Z]+:|\Z)", re.M | re.S)


def _without_row_values(context: ExceptionContext) -> None:
    """PostgreSQL's DETAIL quotes values (``Failing row contains (..., 919812345678, 'Your code...')``,
    ``Key (idempotency_key)=(...) already exists``), and message rows hold phone numbers and texts: an
    error's text (a traceback, a task failure in Flower, a 500's log) keeps the message and the statement
    (its parameters are hidden by ``hide_parameters``), never the values. The exception classes are kept,
    and the driver's ``diag`` still has the detail for code that asks."""
    for exc in (context.original_exception, context.sqlalchemy_exception):
        if exc is not None and exc.args and isinstance(exc.args[0], str) and "DETAIL:" in exc.args[0]:
            exc.args = (_DETAIL.sub("DETAIL: (hidden: it quotes row values)\n", exc.args[0]),
                        *exc.args[1:])


def get_engine(url: str) -> Engine:
    """The engine for ``url`` in this process (made on first use, remade after fork)."""
    key = (os.getpid(), normalize_url(url))
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = make_engine(url)
                _engines[key] = engine
    return engine


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, shutdown)."""
    for (pid, _), engine in list(_engines.items()):
        if pid == os.getpid():
            engine.dispose()
    _engines.clear()


def unavailable(engine: Engine, exc: OperationalError) -> StorageUnavailable:
    """The error for a database that cannot be reached: where (password masked) and why, in one line."""
    u = engine.url
    if is_sqlite(engine) and u.query.get("mode") == "rw" and not Path(_file_path(u.database)).exists():
        return StorageUnavailable(f"no database at {_file_path(u.database)} (DATABASE_URL): run "
                                  "'smsdispatch db upgrade' to create it, or point DATABASE_URL at yours")
    return StorageUnavailable(f"database unavailable at {masked(str(u))}: {cause(exc)}")


def _file_path(database: str | None) -> str:
    return (database or "").removeprefix("file:")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; commits on success, rolls back on error; a lost database is StorageUnavailable."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise unavailable(engine, exc) from exc


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: on SQLite it does not take the write lock (WAL readers never wait)."""
    try:
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="DEFERRED")
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise unavailable(engine, exc) from exc


MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (alembic)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
