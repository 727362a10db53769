"""Chaos fixtures: every chaos test gets a private, restartable ``redis-server`` (AOF, fsync always) in its
own directory, so restarting or flushing Redis never touches the shared one; ``make_stack`` uses it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_server import RedisServer, require_redis_server

#: ``make chaos`` sets this: longer soaks (more messages, more faults).
SOAK = os.environ.get("SMSPOINT_CHAOS_SOAK", "") not in ("", "0")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only (stopped afterwards)."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(private_redis: RedisServer) -> str:
    """Overrides the shared-Redis fixture: chaos stacks live on the private server."""
    return private_redis.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The soak runs longer than the suite's default per-test timeout allows."""
    if SOAK:
        for item in items:
            if "chaos" in item.nodeid.split("::")[0]:
                item.add_marker(pytest.mark.timeout(1800))
