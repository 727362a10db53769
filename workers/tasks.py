"""Thin Celery tasks: ids and counts in, one dispatcher function, a small summary out.

Task arguments never carry message texts, numbers or keys, so Flower shows safe, useful information.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery.signals import worker_process_init

from dispatcher import breaker, collector, purge, repair, sender, wakeup
from dispatcher.errors import StorageUnavailable

from .app import app, worker_context
from .queues import (
    LANE_QUEUES,
    TASK_BREAKER_SCAN,
    TASK_CATALOG,
    TASK_COLLECT,
    TASK_PURGE,
    TASK_RELEASE,
    TASK_SEND_BATCH,
    TASK_SWEEP,
    TASK_TICK,
)

log = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each pool process connects before its first task (an OTP must not wait for set-up)."""
    try:
        worker_context().warm_up()
    except Exception as exc:  # noqa: BLE001 - a cold start is slower, not broken
        log.warning("worker warm-up failed (%s); continuing cold", exc.__class__.__name__)


@app.task(name=TASK_COLLECT, bind=True, max_retries=None)
def collect_lane(self: Any, lane: str) -> dict[str, Any]:
    """Group a lane's waiting messages into batches and hand each to send_batch."""
    try:
        return asdict(collector.collect(worker_context(), lane))
    except StorageUnavailable as exc:
        raise self.retry(exc=exc, countdown=2) from exc


@app.task(name=TASK_SEND_BATCH, bind=True, max_retries=None)
def send_batch(self: Any, batch_id: str, lane: str = "", size: int = 0, group: str = "") -> dict[str, Any]:
    """Send one batch (<= 2000 recipients) as one gateway call; guarded by the batch's state."""
    try:
        return asdict(sender.send_batch(worker_context(), batch_id))
    except StorageUnavailable as exc:
        # nothing was sent: the guarded `sending` commit failed, never ran, or was undone (the batch is
        # `pending` again); the sweeper also republishes
        raise self.retry(exc=exc, countdown=5) from exc


@app.task(name=TASK_TICK, send_events=False)  # a run a second: kept out of Flower (workers/app.py)
def tick_lanes() -> dict[str, int]:
    """Safety net for lost wake-ups: start a collector for every lane with waiting entries."""
    ctx = worker_context()
    out = {}
    for lane in LANE_QUEUES:
        depth = ctx.lanes.depth(lane)
        out[lane] = depth
        if depth:
            wakeup.wake_if_idle(ctx, lane)
    return out


@app.task(name=TASK_SWEEP)
def sweep() -> dict[str, Any]:
    """Repair what crashes and restarts leave: lost pushes, lost batch tasks, stale `sending` rows."""
    return asdict(repair.sweep(worker_context()))


@app.task(name=TASK_RELEASE)
def release_due() -> dict[str, Any]:
    """Queue scheduled messages whose time came and held messages whose cause cleared."""
    return asdict(repair.release_due(worker_context()))


@app.task(name=TASK_CATALOG)
def refresh_catalog() -> dict[str, Any]:
    """Refresh the sender-id / template catalogue in Redis when it is older than catalog_refresh_s."""
    return repair.refresh_catalog(worker_context())


@app.task(name=TASK_BREAKER_SCAN)
def breaker_scan() -> dict[str, int]:
    """Count undelivered reports with DLT remarks per (sender id, template) for the breaker."""
    return breaker.scan_reports(worker_context())


@app.task(name=TASK_PURGE)
def purge_expired() -> dict[str, Any]:
    """Delete finished rows past their retention, in small transactions, for at most RETENTION_RUN_S."""
    ctx = worker_context()
    return purge.purge_locked(ctx, budget_s=ctx.settings.retention_run_s).to_dict()
