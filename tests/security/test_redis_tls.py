"""Redis over TLS with a password (``rediss://:password@host:port/0?ssl_ca_certs=...``): the producer, a
worker and its beat all use it, and messages go out; the port speaks only TLS, so TLS really was used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ..chaos.redis_server import RedisServer, make_tls_files, tls_supported
from ..integration.pipeline_helpers import TXN, audit, number, txn_text
from .conftest import REDIS_PASSWORD


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The database does not matter here: one leg (SQLite)."""
    return sqlite_url


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    why = tls_supported()
    if why:
        pytest.skip(why)
    try:
        tls = make_tls_files(tmp_path / "tls")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"cannot make a test certificate: {exc}")
    server = RedisServer(tmp_path / "tls-redis", password=REDIS_PASSWORD, tls=tls)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(tls_redis: RedisServer) -> str:
    """Every stack of this module uses the TLS server."""
    return tls_redis.url


def test_pipeline_over_tls_redis_with_a_password(make_stack, tls_redis: RedisServer):
    """A worker with beat and the producer on rediss:// (CA-verified): 300 messages each sent once."""
    stack = make_stack()
    assert stack.settings.celery_broker.startswith(f"rediss://:{REDIS_PASSWORD}@")
    stack.start_worker(beat=True, concurrency=2)
    ids = stack.dispatcher.send_bulk(((number(i), txn_text(i)) for i in range(300)), **TXN)
    stack.wait_settled(len(ids), timeout=60)
    a = audit(stack)
    assert (a.sent_once, a.lost, a.duplicated) == (300, 0, 0), a.line()
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, password=REDIS_PASSWORD, socket_timeout=3)
    with pytest.raises(redis.RedisError):  # plaintext RESP to the same port fails: only TLS is served
        plain.ping()
    worker_log = "\n".join(p.log.read_text() for p in stack.procs)
    assert REDIS_PASSWORD not in worker_log and "rediss://:**@" in worker_log
