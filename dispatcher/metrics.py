"""Prometheus metrics: one exporter (``smsdispatch metrics``) for the whole deployment.

Everything is read at scrape time from where it already lives, so the numbers are the same whichever
worker machine did the work:

* the database: messages by state and channel, unknown, unconfirmed and held counts;
* Redis: credits per package (``CreditLedger.snapshot``), lane depth and oldest entry age;
* Redis, written by the workers through dispatcher/observe.py: gateway call latency, gateway errors by
  class, batch sizes, unconfirmed messages and purges, turned here into histograms and counters.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import store
from .channels import LANES, PACKAGES
from .db import transaction
from .observe import (
    BATCH_BUCKETS,
    CALL_BUCKETS,
    INF,
    UNCONFIRMED_OUTCOMES,
    fmt,
    keys,
    purge_key,
    unconfirmed_key,
    yield_key,
)
from .retention import DEPENDENT, Table
from .states import HoldReason, State
from .store import guards as guard_store

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

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
        for bound in (*[fmt(b) for b in buckets], INF):
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
               for k, v in self.ctx.redis.hgetall(purge_key(self.ctx.settings.redis_prefix)).items()}
        purged = CounterMetricFamily("smspoint_purged_rows",
                                     "Rows deleted by the retention purge, by table", labels=["table"])
        for table in (*(t.value for t in Table), *DEPENDENT):
            purged.add_metric([table], float(raw.get(table, 0)))
        yield purged
        yield GaugeMetricFamily("smspoint_purge_last_run_timestamp_seconds",
                                "When the retention purge last ran (0: never)",
                                value=float(raw.get("last_run", 0)))

    def _worker_observations(self) -> Iterator[Metric]:
        calls_key, errors_key, batch_key = keys(self.ctx.settings.redis_prefix)
        pipe = self.ctx.redis.pipeline(transaction=False)
        for key in (calls_key, errors_key, batch_key):
            pipe.hgetall(key)
        pipe.hgetall(unconfirmed_key(self.ctx.settings.redis_prefix))
        pipe.hgetall(yield_key(self.ctx.settings.redis_prefix))
        calls, errors, batches, unconfirmed, yields = pipe.execute()
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
        held_back = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in yields.items()}
        lanes = sorted({k.partition("|")[0] for k in held_back})
        n = CounterMetricFamily("smspoint_otp_yields", "Bulk calls held back while OTPs waited",
                                labels=["lane"])
        secs = CounterMetricFamily("smspoint_otp_yield_seconds",
                                   "Seconds bulk calls were held back while OTPs waited", labels=["lane"])
        for lane in lanes:
            n.add_metric([lane], held_back.get(f"{lane}|count", 0.0))
            secs.add_metric([lane], held_back.get(f"{lane}|sum", 0.0))
        yield n
        yield secs


def registry_for(ctx: Context) -> CollectorRegistry:
    """A registry holding only the project's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SmsPointCollector(ctx))
    return registry


def serve(ctx: Context, port: int, address: str = "0.0.0.0") -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` in a background thread; returns (server, thread). Port 0 picks a free port."""
    return start_http_server(port, addr=address, registry=registry_for(ctx))
