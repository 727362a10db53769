"""The storage layer: every SQL statement of the project, as named queries over the tables. The caller owns
the transaction (``with transaction(engine) as conn``); rows come back as frozen dataclasses or plain values.

Every state change is a guarded UPDATE (``WHERE state IN (allowed sources)``, the sources taken from the
transition tables in dispatcher/states.py): it happens at most once, whatever the number of workers racing on
the same rows, and states only move forward. Texts are fitted to their columns here, and only here.

Modules: ``messages`` (enqueue, transitions, repair queries), ``batches``, ``jobs`` (report sync, credits),
``outbox`` (hooks), ``purging`` (retention), ``guards`` (opt-outs, breakers), ``api_keys`` (the HTTP API),
``operator`` (what operators and the metrics exporter read). This package re-exports the first six, so
callers write ``store.move_batch(...)``.
"""

from __future__ import annotations

from ._base import (  # noqa: F401
    IN_CHUNK,
    clip,
    fit,
    group_key,
    ids_match,
    parse_group,
)
from .batches import (  # noqa: F401
    Outgoing,
    batch_messages,
    batch_state,
    claim_for_batch,
    get_batch,
    inflight_credits,
    insert_batch,
    move_batch,
    move_batch_messages,
    pending_batches,
    reschedule_batch,
    sending_counts,
    stale_sending_batches,
    touch_batches,
    undo_sending,
)
from .jobs import (  # noqa: F401
    add_job_credits,
    credit_totals,
    due_jobs,
    finish_job,
    insert_job,
    job_credits,
    job_messages,
    lease_job,
    write_finals,
    write_statuses,
)
from .messages import (  # noqa: F401
    VARYING,
    MessageWriter,
    NewRow,
    add_events,
    by_idempotency_keys,
    confirm_messages,
    counts_by_state,
    due_scheduled,
    events_of,
    get_message,
    held,
    insert_messages,
    mark_pushed,
    mark_sent,
    move_messages,
    requeue,
    stale_sending,
    unpushed_queued,
)
from .operator import (  # noqa: F401
    AttentionRow,
    count_in_state,
    credits_charged,
    held_by_reason,
    hurry_jobs,
    ids_in_state,
    in_state,
    latency,
    ping,
    states_of,
)
from .outbox import (  # noqa: F401
    claim_hooks,
    failed_without_outbox,
    hook_messages,
    hook_rows,
    insert_outbox,
    write_hook_results,
)
from .purging import (  # noqa: F401
    count_purgeable,
    delete_closed_jobs,
    delete_delivered_hooks,
    delete_done_batches,
    delete_final_messages,
    message_page,
)
from .rows import (  # noqa: F401
    BatchRow,
    HookAttempt,
    HookRow,
    IdempotentMessage,
    JobMessage,
    LeasedJob,
    MessageRow,
    PendingBatch,
    ReportWrite,
)
