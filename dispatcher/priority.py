"""OTPs first on a shared machine: while an OTP waits or is in flight, bulk senders hold their next call
back for a bounded time, the way a gateway's priority queue would serve OTPs first.

The signal is one Redis sorted set, ``{prefix}:priority:otp``: the ids of OTP messages not yet answered,
scored by when they were pushed (ms). Producers add them in the same round trip that appends them to the
OTP lane (``Lanes.push``); the OTP sender removes a batch's ids once its outcome is recorded, whatever it
was. An entry older than ``otp_priority_stale_ms`` no longer counts and is trimmed by the next check, so a
crashed OTP worker cannot hold bulk back for longer than that.

A bulk sender checks the set (one round trip) before reserving credits for its call, and a bulk lane's
collector before each claim (the heaviest database write of the drain); while the set is not empty they
wait in short steps up to ``otp_priority_yield_ms``, then go on whatever the OTPs are doing: bulk never
starves, and nothing waits holding a reservation or a `sending` batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError

from .channels import Channel
from .observe import observe_yield

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

#: How long a bulk sender sleeps between two looks at the signal.
STEP_S = 0.005


def key(prefix: str) -> str:
    return f"{prefix}:priority:otp"


def mark(pipe: Any, prefix: str, ids: Iterable[str], now_ms: int) -> None:
    """Add OTP ids to the signal, on the caller's pipeline (the lane push's round trip)."""
    members = dict.fromkeys(ids, now_ms)
    if members:
        pipe.zadd(key(prefix), members)


class OtpPriority:
    """The OTP-first signal of one deployment (one Redis, one prefix)."""

    def __init__(self, redis: Redis, prefix: str, *, stale_ms: int, clock_ms: Callable[[], int] | None = None
                 ) -> None:
        self.redis = redis
        self.key = key(prefix)
        self.stale_ms = stale_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    def done(self, ids: Iterable[str]) -> None:
        """The OTPs' outcome is recorded (sent, held, failed, unknown...): they no longer hold bulk back."""
        ids = list(ids)
        if ids:
            self.redis.zrem(self.key, *ids)

    def waiting(self) -> int:
        """OTPs pushed within ``stale_ms`` and not answered yet (older entries are trimmed)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(self.key, "-inf", f"({self._clock_ms() - self.stale_ms}")
        pipe.zcard(self.key)
        return int(pipe.execute()[1])

    def yield_to_otp(self, max_s: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait while OTPs are waiting, at most ``max_s``; returns the seconds waited (0 if none were)."""
        if max_s <= 0:
            return 0.0
        started = time.monotonic()
        waited = 0.0
        while self.waiting() > 0:
            waited = time.monotonic() - started
            if waited >= max_s:
                break
            sleep(min(STEP_S, max_s - waited))
            waited = time.monotonic() - started
        return waited


def yield_for(ctx: Context, lane: str) -> float:
    """Hold a bulk lane's next step back while OTPs wait (bounded by ``otp_priority_yield_ms``); a metric
    records each wait. Redis errors skip it: the signal is an optimisation, never a reason not to send."""
    if lane == Channel.OTP.value:
        return 0.0
    try:
        waited = ctx.priority.yield_to_otp(ctx.settings.otp_priority_yield_ms / 1000.0)
    except RedisError as exc:
        log.warning("OTP priority signal unavailable (%s); not yielding", exc.__class__.__name__)
        return 0.0
    if waited > 0:
        observe_yield(ctx, waited, lane)
    return waited
