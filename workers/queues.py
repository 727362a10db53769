"""Celery queue names (the one place they are spelled) and the task names (spelled in dispatcher.publish).

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

# Task names are spelled once, in dispatcher.publish (producers publish by name without importing workers).
from dispatcher.publish import (  # noqa: E402, F401  (re-exported)
    TASK_BREAKER_SCAN,
    TASK_CATALOG,
    TASK_COLLECT,
    TASK_HOOKS,
    TASK_PURGE,
    TASK_RELEASE,
    TASK_SEND_BATCH,
    TASK_SWEEP,
    TASK_SYNC,
    TASK_TICK,
)
