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
from collections.abc import Callable

from redis.exceptions import RedisError

from ..context import Context
from ..db import reading
from ..ratelimit import RateLimiter
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

    def _lookup(self, key_id: str) -> ApiKeyRecord | None:
        ttl = self.settings.api_key_cache_s
        now = self._clock()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        with reading(self.ctx.engine) as conn:  # StorageUnavailable -> 503
            record = keys_store.get_key(conn, key_id)
        if ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:  # unknown ids must not grow it without bound
                    self._cache.clear()
                self._cache[key_id] = (now, record)
        return record

    def authenticate(self, header: str | None) -> ApiKeyRecord:
        """The active key this header carries; Problem 401 otherwise."""
        token = bearer_token(header)
        if token is None:
            raise Problem(401, "send 'Authorization: Bearer <API key>'", slug="unauthorized",
                          headers=_CHALLENGE)
        key_id = key_id_of(token)
        record = self._lookup(key_id) if key_id else None
        if record is None or not matches(token, record.secret_hash):
            raise Problem(401, "unknown API key", slug="unauthorized", headers=_CHALLENGE)
        if not record.active:
            raise Problem(401, f"API key {record.id} was revoked", slug="unauthorized", headers=_CHALLENGE)
        return record

    def authorize(self, header: str | None, scope: Scope) -> ApiKeyRecord:
        """authenticate, then the scope (403) and the key's rate limit (429 with Retry-After)."""
        record = self.authenticate(header)
        if scope not in record.scopes:
            raise Problem(403, f"API key {record.id} lacks the {scope.value!r} scope", slug="forbidden",
                          errors=[{"field": "scope", "reason": f"needs {scope.value}"}])
        self._rate_limit(record)
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

    def _rate_limit(self, record: ApiKeyRecord) -> None:
        try:
            wait = self._limiter(record).try_acquire(0)
        except RedisError as exc:
            # The limit protects capacity, not correctness: with Redis away, requests go on (messages
            # are committed to the database, which the sweeper pushes later) rather than all failing.
            log.warning("api: rate limit of key %s not checked (%s)", record.id, exc.__class__.__name__)
            return
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise Problem(429, f"API key {record.id} is over its rate of "
                               f"{record.rate_per_s or self.settings.api_rate_per_s:g} requests/s",
                          slug="rate-limited", headers={"Retry-After": str(seconds)})
