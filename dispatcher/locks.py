"""A Redis lease: at most one holder at a time, freed by its holder or by expiry.

For "only one at a time" work: one collector per lane (the report sync leases its jobs row by row in the
database instead). The caller names the key; by convention ``{prefix}:lock:{what}`` (e.g.
``smspoint:lock:collector:otp``). The value is a random token per acquisition; extend and release compare it
in Lua, so a holder whose lease expired (and was taken by another) cannot extend or free the new lease.

A lease is not a fencing token: a holder paused past its TTL may still act once it resumes. Work
longer than the TTL must call ``extend`` and stop when it returns False.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError(f"ttl must be > 0 s, got {seconds!r}")
    return max(int(seconds * 1000), 1)


class Lease:
    """One named lease. Not re-entrant across instances; each instance holds at most one token."""

    #: Seconds between attempts while ``acquire(blocking=True)`` waits.
    poll_s: float = 0.05

    def __init__(self, redis: Redis, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = _ms(ttl_s)
        self._token: str | None = None
        self._extend = redis.register_script(_EXTEND)
        self._release = redis.register_script(_RELEASE)

    def acquire(self, *, blocking: bool = False, timeout: float | None = None) -> bool:
        """Take the lease (SET NX PX); when ``blocking``, retry until ``timeout`` (None: forever).

        If this instance already holds it, its TTL is renewed and True returned.
        """
        if self._token is not None and self.extend():
            return True
        token = secrets.token_hex(16)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.redis.set(self.key, token, nx=True, px=self.ttl_ms):
                self._token = token
                return True
            if not blocking:
                return False
            pause = self.poll_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                pause = min(pause, left)
            time.sleep(pause)

    def extend(self, ttl_s: float | None = None) -> bool:
        """Reset the TTL (to ``ttl_s`` or the lease's own) if the lease is still ours."""
        if self._token is None:
            return False
        ms = self.ttl_ms if ttl_s is None else _ms(ttl_s)
        if int(self._extend(keys=[self.key], args=[self._token, ms])):
            return True
        self._token = None
        return False

    def release(self) -> bool:
        """Free the lease if it is still ours; False if it expired or another holds it."""
        token, self._token = self._token, None
        if token is None:
            return False
        return bool(int(self._release(keys=[self.key], args=[token])))

    def owned(self) -> bool:
        """Whether Redis still holds this instance's token (a round trip)."""
        if self._token is None:
            return False
        value = self.redis.get(self.key)
        if isinstance(value, bytes):
            value = value.decode()
        return value == self._token

    @contextmanager
    def held(self, *, blocking: bool = False, timeout: float | None = None) -> Iterator[bool]:
        """Yield whether the lease was taken; release it on exit if it was."""
        got = self.acquire(blocking=blocking, timeout=timeout)
        try:
            yield got
        finally:
            if got:
                self.release()
