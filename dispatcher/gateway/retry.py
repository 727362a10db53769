"""The retry policy for gateway calls that provably did not reach the gateway.

Only :class:`RetryableGatewayError` (connection refused, connect timeout, 5xx on a read, HTTP 429) is
retried. :class:`AmbiguousOutcome` and permanent errors are raised at once: a send that may have been
accepted is never repeated automatically.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import tenacity
from tenacity import RetryCallState

from ..errors import RateLimited, RetryableGatewayError

#: First backoff step (seconds); attempt n waits a random time in [0, BASE * 2**(n-1)], capped.
BASE_DELAY_S = 0.5
#: No single backoff wait is longer than this (except a longer Retry-After from the gateway).
MAX_DELAY_S = 30.0


class _Backoff(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, but never shorter than a RateLimited ``retry_after``."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float]) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** (retry_state.attempt_number - 1))
        delay = self.rng() * ceiling
        exc: BaseException | None = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay


class _ElapsedBudget(tenacity.stop.stop_base):
    """Stop when the next attempt would start after ``max_elapsed_s`` (slept time counts even if faked)."""

    def __init__(self, max_elapsed_s: float) -> None:
        self.max_elapsed_s = max_elapsed_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        elapsed = max(retry_state.seconds_since_start or 0.0, retry_state.idle_for)
        return elapsed + retry_state.upcoming_sleep > self.max_elapsed_s


def unsent_retry(max_attempts: int, max_elapsed_s: float, *, sleep: Callable[[float], None] = time.sleep,
                 base_delay_s: float = BASE_DELAY_S, max_delay_s: float = MAX_DELAY_S,
                 rng: Callable[[], float] = random.random) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` that retries only provably-unsent gateway errors.

    Bounded by ``max_attempts`` (total calls) and ``max_elapsed_s`` (it stops rather than sleep past the
    budget); waits at least ``RateLimited.retry_after``; re-raises the last error itself (no RetryError).
    Use as ``policy(client.balance)`` or ``for attempt in policy: with attempt: ...``.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if max_elapsed_s <= 0:
        raise ValueError("max_elapsed_s must be positive")
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetryableGatewayError),
        stop=tenacity.stop_after_attempt(max_attempts) | _ElapsedBudget(max_elapsed_s),
        wait=_Backoff(base_delay_s, max_delay_s, rng),
        sleep=sleep,
        reraise=True,
    )
