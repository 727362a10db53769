"""Publishing Celery task messages by name, without importing the workers package.

Producers use it to wake a lane's collector; collectors use it to hand batches to senders. Task
messages carry ids and counts only, never texts or keys.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

# Task names: the one place they are spelled (explicit and stable: Flower, the beat schedule and producers
# that publish by name refer to them; workers/queues.py re-exports them beside the queue names).
TASK_COLLECT = "smspoint.collect_lane"
TASK_SEND_BATCH = "smspoint.send_batch"
TASK_SWEEP = "smspoint.sweep"
TASK_RELEASE = "smspoint.release_due"
TASK_SYNC = "smspoint.sync_reports"
TASK_HOOKS = "smspoint.deliver_hooks"
TASK_TICK = "smspoint.tick_lanes"
TASK_CATALOG = "smspoint.refresh_catalog"
TASK_BREAKER_SCAN = "smspoint.breaker_scan"
TASK_PURGE = "smspoint.purge_expired"


class Publisher(Protocol):
    def collect(self, lane: str) -> None: ...
    def send_batch(self, batch_id: str, lane: str, size: int, group: str) -> None: ...


class CeleryPublisher:
    """Sends task messages through a Celery app (the worker's own, or a small producer-side one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @classmethod
    def for_broker(cls, broker_url: str,
                   transport_options: dict[str, object] | None = None) -> CeleryPublisher:
        from celery import Celery

        app = Celery("smspoint-producer", broker=broker_url, set_as_current=False)
        app.conf.broker_connection_retry_on_startup = True
        app.conf.task_serializer = "json"
        app.conf.broker_transport_options = transport_options or {}
        return cls(app)

    def collect(self, lane: str) -> None:
        self.app.send_task(TASK_COLLECT, kwargs={"lane": lane}, queue=lane, ignore_result=True)

    def send_batch(self, batch_id: str, lane: str, size: int, group: str) -> None:
        # group is "channel|sender|template|unicode": ids, never message text
        self.app.send_task(TASK_SEND_BATCH, kwargs={"batch_id": batch_id, "lane": lane, "size": size,
                                                    "group": group}, queue=lane, ignore_result=True)


class RecordingPublisher:
    """Keeps what would have been published (for unit tests and dry runs)."""

    def __init__(self) -> None:
        self.collects: list[str] = []
        self.batches: list[tuple[str, str, int, str]] = []
        self._lock = threading.Lock()

    def collect(self, lane: str) -> None:
        with self._lock:
            self.collects.append(lane)

    def send_batch(self, batch_id: str, lane: str, size: int, group: str) -> None:
        with self._lock:
            self.batches.append((batch_id, lane, size, group))
