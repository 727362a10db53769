"""Prometheus metrics: one exporter (``smsdispatch metrics``) for the whole deployment.

Everything is read at scrape time from where it already lives, so the numbers are the same whichever
worker machine did the work:

* the database: messages by state and channel, unknown, unconfirmed and held counts;
* Redis: credits per package (``CreditLedger.snapshot``), lane depth and oldest entry age;
* Redis, written by the workers: gateway call latency, gateway errors by class and batch sizes. Workers
  call :func:`observe_call` and :func:`observe_batch`, which add to small Redis hashes (one pipelined
  round trip, never raising), and the exporter turns them into histograms and counters.

Redis keys (under ``Settings.redis_prefix``): ``{prefix}:metrics:call_seconds`` (fields
``command|bucket``, ``command|sum``, ``command|count``), ``{prefix}:metrics:call_errors`` (fields
``command|ErrorClass``), ``{prefix}:metrics:batch_size`` (fields ``lane|bucket``, ``lane|sum``, ...),
``{prefix}:metrics:unconfirmed`` (fields ``recorded``, ``confirmed``, ``unknown``),
``{prefix}:metrics:purged`` (fields: rows purged per table, ``last_run``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import store
from .channels import LANES, PACKAGES
from .db import transaction
from .retention import DEPENDENT, Table
from .states import HoldReason, State
from .store import guards as guard_store

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

#: Gateway call latency buckets, seconds.
CALL_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Batch size buckets, recipients per gateway call (the gateway takes at most 2000).
BATCH_BUCKETS: tuple[float, ...] = (1, 10, 50, 100, 250, 500, 1000, 1500, 2000)
INF = "+Inf"


def _keys(prefix: str) -> tuple[str, str, str]:
    base = f"{prefix}:metrics"
    return f"{base}:call_seconds", f"{base}:call_errors", f"{base}:batch_size"


def _bucket(value: float, buckets: Sequence[float]) -> str:
    return next((_fmt(b) for b in buckets if value <= b), INF)


def _fmt(bound: float) -> str:
    return repr(float(bound))


# --------------------------------------------------------------------------- worker side


def observe_call(ctx: Context, command: str, seconds: float, error_class: str | None = None) -> None:
    """Record one gateway call: its latency, and its error class (e.g. ``AmbiguousOutcome``) if it failed."""
    calls, errors, _ = _keys(ctx.settings.redis_prefix)
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
    _, _, batches = _keys(ctx.settings.redis_prefix)
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


def _unconfirmed_key(prefix: str) -> str:
    return f"{prefix}:metrics:unconfirmed"


def observe_unconfirmed(ctx: Context, count: int, outcome: str = "recorded") -> None:
    """Count messages that became `unconfirmed`, were confirmed, or became `unknown` (never raising)."""
    if count <= 0:
        return
    try:
        ctx.redis.hincrby(_unconfirmed_key(ctx.settings.redis_prefix), outcome, count)
    except Exception as exc:  # noqa: BLE001 - metrics must never break sending
        log.debug("metrics: could not count unconfirmed messages (%s)", exc.__class__.__name__)


def _purge_key(prefix: str) -> str:
    return f"{prefix}:metrics:purged"


def observe_purge(ctx: Context, deleted: dict[str, int]) -> None:
    """Record one purge run: rows deleted per table, and when it ran (field ``last_run``, epoch seconds)."""
    key = _purge_key(ctx.settings.redis_prefix)
    try:
        pipe = ctx.redis.pipeline(transaction=False)
        for table, n in deleted.items():
            pipe.hincrby(key, table, int(n))
        pipe.hset(key, "last_run", repr(time.time()))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics must never break a purge
        log.debug("metrics: could not record a purge (%s)", exc.__class__.__name__)


# --------------------------------------------------------------------------- exporter side


Buckets = list[tuple[str, float]]


def _histograms(raw: dict[Any, Any], buckets: Sequence[float]) -> dict[str, tuple[Buckets, float]]:
    """Redis hash (label|bucket -> count) -> label -> (cumulative buckets, sum)."""
    per: dict[str, dict[str, float]] = defaultdict(dict)
    for k, v in raw.items():
        label, _, field = (k.decode() if isinstance(k, bytes) else k).rpartition("|")
        per[label][field] = float(v)
    out: dict[str, tuple[Buckets, float]] = {}
    for label, fields in per.items():
        running, cumulative = 0.0, []
        for bound in (*[_fmt(b) for b in buckets], INF):
            running += fields.get(bound, 0.0)
            cumulative.append((bound, running))
        out[label] = (cumulative, fields.get("sum", 0.0))
    return out


class SmsPointCollector(Collector):
    """Reads the database and Redis at scrape time; a failing source is reported, not raised."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def describe(self) -> list[Metric]:
        return []  # registering must not query anything

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("smspoint_source_up", "1 when the exporter could read the source",
                               labels=["source"])
        for source, part in (("database", self._database), ("redis", self._redis)):
            try:
                families = list(part())
            except Exception as exc:  # noqa: BLE001
                log.warning("metrics: cannot read the %s (%s: %s)", source, exc.__class__.__name__, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _database(self) -> Iterator[Metric]:
        with transaction(self.ctx.engine) as conn:
            counts = store.counts_by_state(conn)
            by_reason = store.held_by_reason(conn)
            open_breakers = len(guard_store.breakers(conn, open_only=True))
        msgs = GaugeMetricFamily("smspoint_messages", "Messages in the database by state and channel",
                                 labels=["state", "channel"])
        channels = sorted(set(LANES) | {c for _, c in counts})
        for state in State:
            for channel in channels:
                msgs.add_metric([state.value, channel], counts.get((state.value, channel), 0))
        yield msgs
        unknown = sum(n for (s, _), n in counts.items() if s == State.UNKNOWN.value)
        yield GaugeMetricFamily("smspoint_unknown_messages",
                                "Messages in state unknown (maybe sent: an operator resends or fails them)",
                                value=unknown)
        unconfirmed = sum(n for (s, _), n in counts.items() if s == State.UNCONFIRMED.value)
        yield GaugeMetricFamily("smspoint_unconfirmed_messages",
                                "Messages the send answer did not list, waiting for the delivery reports",
                                value=unconfirmed)
        h = GaugeMetricFamily("smspoint_held_messages", "Held messages by hold reason", labels=["reason"])
        for reason in sorted({r.value for r in HoldReason} | set(by_reason)):
            h.add_metric([reason], by_reason.get(reason, 0))
        yield h
        yield GaugeMetricFamily("smspoint_breakers_open",
                                "(sender id, template) groups stopped by the breaker on bad outcomes",
                                value=open_breakers)

    def _redis(self) -> Iterator[Metric]:
        ctx = self.ctx
        snap = ctx.ledger.snapshot()
        fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "available": GaugeMetricFamily("smspoint_credits_available",
                                           "Credits free to reserve (gateway balance minus in flight)",
                                           labels=["package"]),
            "inflight": GaugeMetricFamily("smspoint_credits_reserved",
                                          "Credits reserved by batches in flight", labels=["package"]),
            "spent": CounterMetricFamily("smspoint_credits_spent", "Credits charged by the gateway",
                                         labels=["package"]),
            "unknown": GaugeMetricFamily("smspoint_credits_unknown",
                                         "Credits of calls with an ambiguous outcome", labels=["package"]),
            "age_s": GaugeMetricFamily("smspoint_credits_balance_age_seconds",
                                       "Seconds since the balance was fetched from the gateway",
                                       labels=["package"]),
        }
        for package in sorted(set(PACKAGES) | set(snap)):
            values = snap.get(package, {})
            for name, fam in fams.items():
                value = values.get(name)
                if value is not None:
                    fam.add_metric([package], float(value))
        yield from fams.values()
        depth = GaugeMetricFamily("smspoint_lane_depth",
                                  "Entries waiting in the lane stream (an entry carries up to 500 ids)",
                                  labels=["lane"])
        age = GaugeMetricFamily("smspoint_lane_oldest_age_seconds",
                                "Age of the oldest entry still waiting in the lane", labels=["lane"])
        for lane in LANES:
            depth.add_metric([lane], ctx.lanes.depth(lane))
            age.add_metric([lane], ctx.lanes.oldest_age_s(lane))
        yield depth
        yield age
        yield from self._worker_observations()
        yield from self._purges()

    def _purges(self) -> Iterator[Metric]:
        raw = {(k.decode() if isinstance(k, bytes) else k): v
               for k, v in self.ctx.redis.hgetall(_purge_key(self.ctx.settings.redis_prefix)).items()}
        purged = CounterMetricFamily("smspoint_purged_rows",
                                     "Rows deleted by the retention purge, by table", labels=["table"])
        for table in (*(t.value for t in Table), *DEPENDENT):
            purged.add_metric([table], float(raw.get(table, 0)))
        yield purged
        yield GaugeMetricFamily("smspoint_purge_last_run_timestamp_seconds",
                                "When the retention purge last ran (0: never)",
                                value=float(raw.get("last_run", 0)))

    def _worker_observations(self) -> Iterator[Metric]:
        calls_key, errors_key, batch_key = _keys(self.ctx.settings.redis_prefix)
        pipe = self.ctx.redis.pipeline(transaction=False)
        for key in (calls_key, errors_key, batch_key):
            pipe.hgetall(key)
        pipe.hgetall(_unconfirmed_key(self.ctx.settings.redis_prefix))
        calls, errors, batches, unconfirmed = pipe.execute()
        lat = HistogramMetricFamily("smspoint_gateway_call_seconds", "Gateway call latency by command",
                                    labels=["command"])
        for command, (buckets, total) in sorted(_histograms(calls, CALL_BUCKETS).items()):
            lat.add_metric([command], buckets, total)
        yield lat
        err = CounterMetricFamily("smspoint_gateway_errors",
                                  "Failed gateway calls by command and error class",
                                  labels=["command", "error_class"])
        for k, v in sorted(errors.items()):
            command, _, cls = (k.decode() if isinstance(k, bytes) else k).partition("|")
            err.add_metric([command, cls], float(v))
        yield err
        size = HistogramMetricFamily("smspoint_batch_size", "Recipients per gateway call", labels=["lane"])
        for lane, (buckets, total) in sorted(_histograms(batches, BATCH_BUCKETS).items()):
            size.add_metric([lane], buckets, total)
        yield size
        counts = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in unconfirmed.items()}
        unc = CounterMetricFamily("smspoint_unconfirmed",
                                  "Messages a send answer did not list: recorded, then confirmed or unknown",
                                  labels=["outcome"])
        for outcome in UNCONFIRMED_OUTCOMES:
            unc.add_metric([outcome], counts.get(outcome, 0.0))
        yield unc


def registry_for(ctx: Context) -> CollectorRegistry:
    """A registry holding only the project's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SmsPointCollector(ctx))
    return registry


def serve(ctx: Context, port: int, address: str = "0.0.0.0") -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` in a background thread; returns (server, thread). Port 0 picks a free port."""
    return start_http_server(port, addr=address, registry=registry_for(ctx))
