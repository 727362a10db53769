"""Thin Celery tasks for delivery reports and hooks (beat runs both on the ``sync`` queue).

Both are periodic: a run that fails (database down) is not retried; the next beat tick does the work.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from dispatcher import hooks, sync
from dispatcher.errors import ConfigurationError, StorageUnavailable

from .app import app, worker_context
from .queues import QUEUE_SYNC, TASK_HOOKS, TASK_SYNC

log = logging.getLogger(__name__)


@app.task(name=TASK_SYNC, queue=QUEUE_SYNC)
def sync_reports(max_calls: int | None = None) -> dict[str, Any]:
    """Poll sms-delivery-status for due open jobs and record each recipient's status."""
    try:
        return asdict(sync.run(worker_context(), max_calls=max_calls))
    except StorageUnavailable as exc:
        log.warning("sync skipped: %s (the next run retries)", exc)
        return {"skipped": str(exc)}


@app.task(name=TASK_HOOKS, queue=QUEUE_SYNC)
def deliver_hooks(limit: int = 500) -> dict[str, Any]:
    """Deliver due hook rows (callable and/or signed webhook); failures are retried with backoff."""
    try:
        return asdict(hooks.deliver_due(worker_context(), limit=limit))
    except (StorageUnavailable, ConfigurationError) as exc:
        log.error("hooks skipped: %s", exc)
        return {"skipped": str(exc)}
