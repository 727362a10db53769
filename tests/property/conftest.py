"""Property-test fixtures: a migrated database (SQLite file and PostgreSQL) and isolated Redis keys, built
once per test function (hypothesis runs many examples inside one), with a recording publisher."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.db import dispose_all, reading, upgrade
from dispatcher.models import MESSAGE
from dispatcher.publish import RecordingPublisher
from dispatcher.settings import Settings


class Enqueuer:
    """A Dispatcher over real storage, and the number of message rows it has written."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dispatcher = Dispatcher(ctx)

    def rows(self) -> int:
        with reading(self.ctx.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one())


@pytest.fixture
def enqueuer(database_url: str, redis_url: str, redis_prefix: str) -> Iterator[Enqueuer]:
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix,
                        smspoint_api_key="unused-by-these-tests")
    upgrade(settings.database_url)
    ctx = Context(settings, publisher=RecordingPublisher())
    yield Enqueuer(ctx)
    ctx.redis.close()
    dispose_all()
