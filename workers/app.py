"""The Celery app: broker from Settings, explicit queues, the beat schedule (by task name).

    celery -A workers.app worker -Q otp                       # latency-first OTP workers
    celery -A workers.app worker -Q transactional,promotional,sync,maintenance
    celery -A workers.app beat                                 # exactly one
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import beat_embedded_init, beat_init
from kombu import Queue

from dispatcher.context import Context, get_context
from dispatcher.publish import CeleryPublisher
from dispatcher.settings import get_settings

from .queues import (
    ALL_QUEUES,
    QUEUE_MAINTENANCE,
    QUEUE_SYNC,
    TASK_BREAKER_SCAN,
    TASK_CATALOG,
    TASK_HOOKS,
    TASK_PURGE,
    TASK_RELEASE,
    TASK_SWEEP,
    TASK_SYNC,
    TASK_TICK,
)


def _every(task: str, seconds: float, queue: str) -> dict[str, object]:
    # expires: a beat tick that waited longer than its own period is dropped, not piled up
    return {"task": task, "schedule": seconds, "options": {"queue": queue, "expires": max(seconds, 1.0)}}


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("smspoint", broker=settings.celery_broker, include=["workers.tasks", "workers.sync_tasks"])
    app.conf.update(
        task_queues=[Queue(name) for name in ALL_QUEUES],
        task_default_queue=QUEUE_MAINTENANCE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # The database is the record of truth: tasks are guarded by row state, so a task message is
        # acknowledged on receipt; a lost one is republished by the sweeper, a repeated one does nothing.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=settings.broker_transport_options(),
        worker_hijack_root_logger=False,
        beat_schedule={
            "tick-lanes": _every(TASK_TICK, settings.tick_interval_s, QUEUE_MAINTENANCE),
            "release-due": _every(TASK_RELEASE, settings.release_interval_s, QUEUE_MAINTENANCE),
            "sweep": _every(TASK_SWEEP, settings.sweep_interval_s, QUEUE_MAINTENANCE),
            "sync-reports": _every(TASK_SYNC, settings.sync_interval_s, QUEUE_SYNC),
            "deliver-hooks": _every(TASK_HOOKS, settings.hooks_interval_s, QUEUE_SYNC),
            "refresh-catalog": _every(TASK_CATALOG, 30.0, QUEUE_MAINTENANCE),
            "breaker-scan": _every(TASK_BREAKER_SCAN, settings.breaker_scan_interval_s, QUEUE_MAINTENANCE),
            "purge-expired": _every(TASK_PURGE, settings.retention_interval_s, QUEUE_MAINTENANCE),
        },
    )
    return app


app = make_app()


def worker_context() -> Context:
    """This worker process's Context, made once per process (after the prefork fork) and publishing tasks
    through this app's own connection pool."""
    return get_context(publisher=CeleryPublisher(app))


class _QuietTicks(logging.Filter):
    """Drops the INFO lines of tick_lanes runs ("received", "succeeded"): a run a second was more than half
    of a bulk worker's log, and tells nothing (the task's result is in Flower only when it matters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        tick = isinstance(data, dict) and data.get("name") == TASK_TICK
        return not (tick and record.levelno <= logging.INFO)


for _logger in ("celery.worker.strategy", "celery.app.trace"):  # where Celery logs received / succeeded
    logging.getLogger(_logger).addFilter(_QuietTicks())


@beat_init.connect
def _no_sent_events(sender: Any = None, **_: Any) -> None:
    """Beat publishes only periodic tasks: without its "task-sent" events (and with tick_lanes sending
    none from the worker) the tick every second stays out of Flower's task list; the other periodic tasks
    still appear through the worker's events."""
    app.conf.task_send_sent_event = False


@beat_init.connect
@beat_embedded_init.connect
def _catalogue_at_start(sender: Any = None, **_: Any) -> None:
    """Fetch the sender-id/template catalogue as soon as beat starts, not 30 s later at the schedule's
    first tick: until it is in Redis, producers cannot check sender ids and DLT templates at enqueue."""
    app.send_task(TASK_CATALOG, queue=QUEUE_MAINTENANCE, ignore_result=True)
