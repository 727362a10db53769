"""Bearer-key authentication, scopes and the per-key rate limit.

A presented key is parsed (its public id finds the row), hashed and compared in constant time with the
stored hash. Looked-up rows are reused for ``Settings.api_key_cache_s`` seconds, so a revoked key stops
working within that time. Each key's requests/s is a GCRA budget on the shared limiter
(dispatcher/ratelimit.py, in Redis), so every API process of a deployment counts against the same budget.
Keys never reach a log line: only their public id does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from ..context import Context
from ..db import reading
from ..ratelimit import RateLimiter, try_acquire_each
from ..store import api_keys as keys_store
from ..store.api_keys import ApiKeyRecord
from .keys import Scope, bearer_token, key_id_of, matches
from .problems import Problem

log = logging.getLogger(__name__)

#: The parts budget of a key's limiter is never the limit: a key is limited in requests per second.
_NO_PARTS_LIMIT = 1e12

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsdispatch"'}


def limiter_name(key_id: str) -> str:
    """The limiter key suffix of one API key: ``{prefix}:ratelimit:api:{id}``."""
    return f"api:{key_id}"


class Authenticator:
    """Checks ``Authorization`` headers against the stored keys; one per API process, thread-safe."""

    def __init__(self, ctx: Context, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._limiters: dict[tuple[str, float], RateLimiter] = {}
        self._lock = threading.Lock()

    def _lookup(self, key_id: str, *, cached_only: bool = False) -> tuple[bool, ApiKeyRecord | None]:
        """(found, record): the key's row, from the cache or the database; (False, None) when
        ``cached_only`` and the cache cannot answer."""
        ttl = self.settings.api_key_cache_s
        now = self._clock()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < ttl:
            return True, hit[1]
        if cached_only:
            return False, None
        with reading(self.ctx.engine) as conn:  # StorageUnavailable -> 503
            record = keys_store.get_key(conn, key_id)
        if ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:  # unknown ids must not grow it without bound
                    self._cache.clear()
                self._cache[key_id] = (now, record)
        return True, record

    def authenticate(self, header: str | None, *, cached_only: bool = False) -> ApiKeyRecord | None:
        """The active key this header carries; Problem 401 otherwise. With ``cached_only`` no I/O is done:
        None when the key's row is not cached (the caller then looks it up off its event loop)."""
        token = bearer_token(header)
        if token is None:
            raise Problem(401, "send 'Authorization: Bearer <API key>'", slug="unauthorized",
                          headers=_CHALLENGE)
        key_id = key_id_of(token)
        record = None
        if key_id:
            found, record = self._lookup(key_id, cached_only=cached_only)
            if not found:
                return None
        if record is None or not matches(token, record.secret_hash):
            raise Problem(401, "unknown API key", slug="unauthorized", headers=_CHALLENGE)
        if not record.active:
            raise Problem(401, f"API key {record.id} was revoked", slug="unauthorized", headers=_CHALLENGE)
        return record

    @staticmethod
    def check_scope(record: ApiKeyRecord, scope: Scope) -> None:
        """Problem 403 unless the key has ``scope``."""
        if scope not in record.scopes:
            raise Problem(403, f"API key {record.id} lacks the {scope.value!r} scope", slug="forbidden",
                          errors=[{"field": "scope", "reason": f"needs {scope.value}"}])

    def authorize(self, header: str | None, scope: Scope) -> ApiKeyRecord:
        """authenticate, then the scope (403) and the key's rate limit (429 with Retry-After)."""
        record = self.authenticate(header)
        assert record is not None  # looked up, not cached_only
        self.check_scope(record, scope)
        over = self.rate_limit([record])[0]
        if over is not None:
            raise over
        return record

    def _limiter(self, record: ApiKeyRecord) -> RateLimiter:
        rate = record.rate_per_s or self.settings.api_rate_per_s
        limiter = self._limiters.get((record.id, rate))
        if limiter is None:
            limiter = RateLimiter(self.ctx.redis, self.settings.redis_prefix, calls_per_s=rate,
                                  parts_per_s=_NO_PARTS_LIMIT, name=limiter_name(record.id))
            with self._lock:
                self._limiters[(record.id, rate)] = limiter
        return limiter

    def rate_limit(self, records: Sequence[ApiKeyRecord]) -> list[Problem | None]:
        """One request of each entry against its key's rate, in one Redis round trip: per entry None where
        admitted, else the 429 Problem (with Retry-After) to answer."""
        try:
            waits = try_acquire_each([self._limiter(r) for r in records])
        except RedisError as exc:
            # The limit protects capacity, not correctness: with Redis away, requests go on (messages
            # are committed to the database, which the sweeper pushes later) rather than all failing.
            log.warning("api: rate limit of key(s) %s not checked (%s)",
                        ", ".join(sorted({r.id for r in records})), exc.__class__.__name__)
            return [None] * len(records)
        return [None if wait <= 0 else self._over(r, wait) for r, wait in zip(records, waits, strict=True)]

    def _over(self, record: ApiKeyRecord, wait: float) -> Problem:
        rate = record.rate_per_s or self.settings.api_rate_per_s
        return Problem(429, f"API key {record.id} is over its rate of {rate:g} requests/s",
                       slug="rate-limited", headers={"Retry-After": str(max(1, math.ceil(wait)))})
