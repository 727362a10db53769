"""Per-process resources (engine, Redis, gateway client, credit ledger, rate limiter), made lazily from
one Settings object. Celery's prefork children each build their own after the fork.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis
from sqlalchemy import Engine

from .clock import Clock, utcnow
from .db import get_engine
from .priority import OtpPriority
from .publish import CeleryPublisher, Publisher
from .queue import Lanes
from .settings import Settings, get_settings

if TYPE_CHECKING:
    from .catalog import CatalogCache
    from .credits import CreditLedger
    from .gateway import SmsPointClient
    from .ratelimit import RateLimiter
    from .whitelist import WhitelistSource


class Context:
    """Everything a producer or worker needs, built from one Settings."""

    def __init__(self, settings: Settings, *, publisher: Publisher | None = None,
                 clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self._publisher = publisher
        self.pid = os.getpid()

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.settings.database_url)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url, socket_connect_timeout=5, socket_timeout=30,
                              health_check_interval=30)

    @cached_property
    def lanes(self) -> Lanes:
        return Lanes(self.redis, self.settings.redis_prefix)

    @cached_property
    def priority(self) -> OtpPriority:
        s = self.settings
        return OtpPriority(self.redis, s.redis_prefix, stale_ms=s.otp_priority_stale_ms)

    @cached_property
    def publisher(self) -> Publisher:
        return self._publisher or CeleryPublisher.for_broker(
            self.settings.celery_broker, self.settings.broker_transport_options())

    @cached_property
    def client(self) -> SmsPointClient:
        from .gateway import SmsPointClient

        return SmsPointClient.from_settings(self.settings)

    @cached_property
    def ledger(self) -> CreditLedger:
        from .credits import CreditLedger

        return CreditLedger(self.redis, self.settings.redis_prefix)

    @cached_property
    def limiter(self) -> RateLimiter:
        from .ratelimit import RateLimiter

        return RateLimiter(self.redis, self.settings.redis_prefix,
                           calls_per_s=self.settings.rate_limit_calls_per_s,
                           parts_per_s=self.settings.rate_limit_parts_per_s)

    @cached_property
    def catalog(self) -> CatalogCache:
        from .catalog import CatalogCache

        return CatalogCache(self.redis, self.settings.redis_prefix)

    @cached_property
    def whitelist(self) -> WhitelistSource:
        from .whitelist import WhitelistSource

        return WhitelistSource(self.settings, lambda: self.engine)

    def warm_up(self) -> None:
        """Open the database and Redis connections and build the clients now, so that the first
        task of a fresh worker process (often an OTP) does not pay for it."""
        from . import store

        with self.engine.connect() as conn:
            store.ping(conn)
        self.redis.ping()
        _ = (self.lanes, self.ledger, self.limiter, self.catalog, self.client)


_contexts: dict[int, Context] = {}


def get_context(publisher: Publisher | None = None) -> Context:
    """This process's default context (from environment settings), made once per process (again after a
    fork). ``publisher``: how the context publishes tasks when this call makes it (a worker passes one over
    its own Celery app; producers get a small producer-side app)."""
    pid = os.getpid()
    ctx = _contexts.get(pid)
    if ctx is None:
        ctx = _contexts[pid] = Context(get_settings(), publisher=publisher)
    return ctx


def set_context(ctx: Context) -> None:
    """Install a context for this process (entry points that built their own Settings)."""
    _contexts[os.getpid()] = ctx
