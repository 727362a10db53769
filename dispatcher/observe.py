"""What workers record for the metrics exporter (dispatcher/metrics.py): small Redis hashes, one pipelined
round trip per observation, never raising (a metric must never break sending).

Redis keys (under ``Settings.redis_prefix``): ``{prefix}:metrics:call_seconds`` (fields
``command|bucket``, ``command|sum``, ``command|count``), ``{prefix}:metrics:call_errors`` (fields
``command|ErrorClass``), ``{prefix}:metrics:batch_size`` (fields ``lane|bucket``, ``lane|sum``, ...),
``{prefix}:metrics:unconfirmed`` (fields ``recorded``, ``confirmed``, ``unknown``),
``{prefix}:metrics:purged`` (fields: rows purged per table, ``last_run``),
``{prefix}:metrics:otp_yield`` (fields ``lane|count``, ``lane|sum``: bulk calls held back for OTPs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

#: Gateway call latency buckets, seconds.
CALL_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Batch size buckets, recipients per gateway call (the gateway takes at most 2000).
BATCH_BUCKETS: tuple[float, ...] = (1, 10, 50, 100, 250, 500, 1000, 1500, 2000)
INF = "+Inf"


def keys(prefix: str) -> tuple[str, str, str]:
    base = f"{prefix}:metrics"
    return f"{base}:call_seconds", f"{base}:call_errors", f"{base}:batch_size"


def _bucket(value: float, buckets: Sequence[float]) -> str:
    return next((fmt(b) for b in buckets if value <= b), INF)


def fmt(bound: float) -> str:
    return repr(float(bound))


def observe_call(ctx: Context, command: str, seconds: float, error_class: str | None = None) -> None:
    """Record one gateway call: its latency, and its error class (e.g. ``AmbiguousOutcome``) if it failed."""
    calls, errors, _ = keys(ctx.settings.redis_prefix)
    try:
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hincrby(calls, f"{command}|{_bucket(seconds, CALL_BUCKETS)}", 1)
        pipe.hincrbyfloat(calls, f"{command}|sum", float(seconds))
        pipe.hincrby(calls, f"{command}|count", 1)
        if error_class:
            pipe.hincrby(errors, f"{command}|{error_class}", 1)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics must never break sending
        log.debug("metrics: could not record a gateway call (%s)", exc.__class__.__name__)


def observe_batch(ctx: Context, size: int, lane: str = "") -> None:
    """Record the size of one batch handed to the gateway."""
    _, _, batches = keys(ctx.settings.redis_prefix)
    label = lane or "all"
    try:
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hincrby(batches, f"{label}|{_bucket(size, BATCH_BUCKETS)}", 1)
        pipe.hincrbyfloat(batches, f"{label}|sum", float(size))
        pipe.hincrby(batches, f"{label}|count", 1)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001
        log.debug("metrics: could not record a batch size (%s)", exc.__class__.__name__)


#: Outcomes counted for messages a send answer did not list: recorded `unconfirmed` by the sender, then
#: confirmed by a delivery report or turned `unknown` by the sync.
UNCONFIRMED_OUTCOMES = ("recorded", "confirmed", "unknown")


def unconfirmed_key(prefix: str) -> str:
    return f"{prefix}:metrics:unconfirmed"


def observe_unconfirmed(ctx: Context, count: int, outcome: str = "recorded") -> None:
    """Count messages that became `unconfirmed`, were confirmed, or became `unknown` (never raising)."""
    if count <= 0:
        return
    try:
        ctx.redis.hincrby(unconfirmed_key(ctx.settings.redis_prefix), outcome, count)
    except Exception as exc:  # noqa: BLE001 - metrics must never break sending
        log.debug("metrics: could not count unconfirmed messages (%s)", exc.__class__.__name__)


def yield_key(prefix: str) -> str:
    return f"{prefix}:metrics:otp_yield"


def observe_yield(ctx: Context, seconds: float, lane: str) -> None:
    """Record one bulk call held back while OTPs waited (dispatcher.priority), never raising."""
    key = yield_key(ctx.settings.redis_prefix)
    try:
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hincrby(key, f"{lane}|count", 1)
        pipe.hincrbyfloat(key, f"{lane}|sum", float(seconds))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics must never break sending
        log.debug("metrics: could not record a yield (%s)", exc.__class__.__name__)


def purge_key(prefix: str) -> str:
    return f"{prefix}:metrics:purged"


def observe_purge(ctx: Context, deleted: dict[str, int]) -> None:
    """Record one purge run: rows deleted per table, and when it ran (field ``last_run``, epoch seconds)."""
    key = purge_key(ctx.settings.redis_prefix)
    try:
        pipe = ctx.redis.pipeline(transaction=False)
        for table, n in deleted.items():
            pipe.hincrby(key, table, int(n))
        pipe.hset(key, "last_run", repr(time.time()))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics must never break a purge
        log.debug("metrics: could not record a purge (%s)", exc.__class__.__name__)
