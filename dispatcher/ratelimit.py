"""One gateway rate limit shared by every worker (Celery's ``rate_limit`` is per worker).

Two budgets, gateway calls/s and message parts/s, checked and taken together by one Lua script using
GCRA (a token bucket kept as a "theoretical arrival time"). The clock is Redis ``TIME``, so workers on
different machines agree. Each budget holds ``rate * burst_s`` units when full. A request costing more
than a full budget (a 2000 x 3-part batch under a low parts limit) is admitted when that budget is
full and then pays its debt: later requests wait until it is repaid, so the long-run rate holds.

Redis key: ``{prefix}:ratelimit:{name}`` hash with ``calls_tat`` and ``parts_tat`` (microseconds, Redis
clock) and the counters ``calls`` and ``parts`` (admitted so far, for metrics).

Needs Redis >= 5 (scripts that call ``TIME`` and then write).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from redis import Redis

# ARGV: microseconds per call, per part, burst; parts. Returns 0 (taken) or microseconds to wait.
# A budget admits at `now` iff now >= min(tat + cost - burst, tat): within the burst, or bucket full.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local call_us, part_us = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, parts = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'calls_tat', 'parts_tat')
local ctat = math.max(tonumber(s[1]) or now, now)
local ptat = math.max(tonumber(s[2]) or now, now)
local ccost, pcost = call_us, parts * part_us
local at = math.max(math.min(ctat + ccost - burst, ctat), math.min(ptat + pcost - burst, ptat))
if at > now then return math.ceil(at - now) end
redis.call('HSET', KEYS[1], 'calls_tat', string.format('%.0f', math.ceil(ctat + ccost)),
           'parts_tat', string.format('%.0f', math.ceil(ptat + pcost)))
redis.call('HINCRBY', KEYS[1], 'calls', 1)
redis.call('HINCRBY', KEYS[1], 'parts', parts)
return 0
"""


class RateLimiter:
    """Calls/s and parts/s across all workers; ``try_acquire`` never blocks, ``acquire`` sleeps."""

    def __init__(self, redis: Redis, prefix: str, *, calls_per_s: float, parts_per_s: float,
                 burst_s: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 name: str = "gateway") -> None:
        if calls_per_s <= 0 or parts_per_s <= 0 or burst_s <= 0:
            raise ValueError("calls_per_s, parts_per_s and burst_s must be > 0")
        self.redis = redis
        self.key = f"{prefix}:ratelimit:{name}"
        self.calls_per_s = calls_per_s
        self.parts_per_s = parts_per_s
        self.burst_s = burst_s
        self._sleep = sleep
        self._args = (1e6 / calls_per_s, 1e6 / parts_per_s, burst_s * 1e6)
        self._script = redis.register_script(_ACQUIRE)

    def try_acquire(self, parts: int) -> float:
        """Take one call and ``parts`` parts: 0.0 if taken, else seconds to wait (nothing taken)."""
        if parts < 0:
            raise ValueError(f"parts must be >= 0, got {parts!r}")
        wait_us = self._script(keys=[self.key], args=[*self._args, int(parts)])
        return int(wait_us) / 1e6

    def acquire(self, parts: int, *, timeout: float | None = None) -> float:
        """Sleep until taken; return the seconds slept.

        Raises the builtin ``TimeoutError`` (nothing taken) as soon as the wait Redis reports would
        pass ``timeout``: other workers can only lengthen that wait, never shorten it.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire(parts)
            if wait == 0.0:
                return waited
            if timeout is not None and waited + wait > timeout:
                raise TimeoutError(f"rate limit: {parts} parts need {wait:.3f}s more, "
                                   f"over the {timeout:.3f}s timeout")
            self._sleep(wait)
            waited += wait

    def admitted(self) -> dict[str, int]:
        """Calls and parts admitted so far by every worker sharing this limiter."""
        calls, parts = self.redis.hmget(self.key, "calls", "parts")
        return {"calls": int(calls or 0), "parts": int(parts or 0)}


def try_acquire_each(limiters: Sequence[RateLimiter], parts: int = 0) -> list[float]:
    """``try_acquire(parts)`` of each entry in turn (one limiter may appear many times), in one round trip
    (a pipeline on the first limiter's client): per entry 0.0 where taken, else seconds to wait."""
    if not limiters:
        return []
    if parts < 0:
        raise ValueError(f"parts must be >= 0, got {parts!r}")
    pipe = limiters[0].redis.pipeline(transaction=False)
    for lim in limiters:
        lim._script(keys=[lim.key], args=[*lim._args, int(parts)], client=pipe)
    return [int(wait_us) / 1e6 for wait_us in pipe.execute()]
