"""Celery queue names and task names: the one place they are spelled.

Lanes carry sending work (one Celery queue per lane, so OTP never waits behind a promotional backlog);
``sync`` carries delivery-report polling and hooks; ``maintenance`` carries the repair sweeps.
"""

from __future__ import annotations

QUEUE_OTP = "otp"
QUEUE_TRANSACTIONAL = "transactional"
QUEUE_PROMOTIONAL = "promotional"
QUEUE_SYNC = "sync"
QUEUE_MAINTENANCE = "maintenance"

#: Queues that carry sends, by lane name (lane names equal channel names).
LANE_QUEUES: dict[str, str] = {
    "otp": QUEUE_OTP,
    "transactional": QUEUE_TRANSACTIONAL,
    "promotional": QUEUE_PROMOTIONAL,
}

ALL_QUEUES: tuple[str, ...] = (QUEUE_OTP, QUEUE_TRANSACTIONAL, QUEUE_PROMOTIONAL, QUEUE_SYNC,
                               QUEUE_MAINTENANCE)

#: Worker roles: which queues a worker of each role consumes (`smsdispatch worker --role ...`).
ROLE_QUEUES: dict[str, tuple[str, ...]] = {
    "otp": (QUEUE_OTP,),
    "bulk": (QUEUE_TRANSACTIONAL, QUEUE_PROMOTIONAL, QUEUE_SYNC, QUEUE_MAINTENANCE),
    "all": ALL_QUEUES,
}

# Task names (explicit, stable: Flower and the beat schedule refer to them).
TASK_COLLECT = "smspoint.collect_lane"
TASK_SEND_BATCH = "smspoint.send_batch"
TASK_SWEEP = "smspoint.sweep"
TASK_RELEASE = "smspoint.release_due"
TASK_SYNC = "smspoint.sync_reports"
TASK_HOOKS = "smspoint.deliver_hooks"
TASK_TICK = "smspoint.tick_lanes"
TASK_CATALOG = "smspoint.refresh_catalog"
TASK_PURGE = "smspoint.purge_expired"
