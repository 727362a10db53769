"""The message state machine (pure). States only move forward; final states never change.

    queued ──► sending ──► sent ──► delivered | undelivered | expired
      ▲  │        │  ├──► unconfirmed ──► sent (a report lists it) | unknown (absent from the reports)
      │  │        │  └──► failed (gateway rejected, with reason)
      │  │        ├─────► unknown (the gateway may or may not have it: never resent automatically)
      │  │        └─────► held (credits / authentication / gateway down / breaker) ──► queued
      │  └──► held ──► queued
    scheduled ──► queued           (send_at reached, or the promotional window opened)

``unconfirmed``: the gateway accepted the call but its answer neither listed nor refused this message
(the documentation promises nothing about the completeness of ``MessageData``). It is not resent; the
delivery reports decide: listed there, it is ``sent`` (then final) like any other; absent from
``unconfirmed_polls`` reports, it becomes ``unknown``. Its credits stay reserved until then.

``sending`` is not written to message rows. A message is claimed into a batch (``batch_id`` set, still
``queued``), and the batch's one-row move to ``sending`` makes every message it holds ``sending``: between
enqueue and the gateway's answer a message row is written once (the claim), not once per step. Readers see
the logical state (:func:`effective`). The sender's writes after the call therefore move rows from
``queued`` (or from ``sending``, for rows an older version wrote) in the transaction that moves their
batch out of ``sending``: that batch transition is the guard. Nothing else writes a claimed message of a
``sending`` batch (the breaker holds pending batches, not their rows; the sweeper moves a stale batch
first).

``unknown`` can be resolved by an operator: ``resend`` (-> queued) or ``fail`` (-> failed); one that came
from ``unconfirmed`` (it has a gateway job) is still looked for in its job's reports until the horizon, and
moves on (-> sent, or final) if a late report lists it.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
    UNCONFIRMED = "unconfirmed"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"


class HoldReason(StrEnum):
    CREDITS = "credits"
    AUTHENTICATION = "authentication"
    GATEWAY_DOWN = "gateway_down"
    BREAKER = "breaker"  #: the (sender id, template) group's bad outcomes passed the threshold


FINAL: frozenset[State] = frozenset({State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.FAILED})

#: Allowed transitions: target -> states it may be reached from.
ALLOWED_FROM: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SCHEDULED, State.HELD, State.UNKNOWN}),
    State.HELD: frozenset({State.QUEUED, State.SENDING}),
    State.SCHEDULED: frozenset({State.QUEUED}),
    State.SENDING: frozenset({State.QUEUED}),
    State.UNCONFIRMED: frozenset({State.SENDING}),
    State.SENT: frozenset({State.SENDING, State.UNCONFIRMED, State.UNKNOWN}),
    State.UNKNOWN: frozenset({State.SENDING, State.UNCONFIRMED}),
    State.DELIVERED: frozenset({State.SENT, State.UNKNOWN}),
    State.UNDELIVERED: frozenset({State.SENT, State.UNKNOWN}),
    State.EXPIRED: frozenset({State.SENT, State.UNKNOWN}),
    State.FAILED: frozenset({State.SENDING, State.UNKNOWN, State.QUEUED, State.HELD, State.SCHEDULED}),
}


#: The ``sending -> X`` transitions a claimed row makes in storage as ``queued -> X`` (its batch carries
#: ``sending``): only the sender's answer and the sweeper make them, naming ``frm=QUEUED``, in the
#: transaction of their batch's own guarded transition.
THROUGH_BATCH: frozenset[State] = frozenset({State.SENT, State.UNCONFIRMED, State.UNKNOWN})


def effective(stored: str, batch_state: str | None) -> str:
    """The state a reader sees: a claimed ``queued`` row of a ``sending`` batch is ``sending``."""
    if stored == State.QUEUED and batch_state == BatchState.SENDING:
        return State.SENDING.value
    return stored


def can_move(current: State, target: State) -> bool:
    """Whether ``current -> target`` is a legal transition."""
    return current in ALLOWED_FROM.get(target, frozenset())


def sources(target: State, frm: State | None = None) -> list[str]:
    """The states a guarded UPDATE may move from to reach ``target`` (for WHERE state IN (...)): all allowed
    ones, or only ``frm`` (which must be one of them: a caller that knows the rows' state says so)."""
    if frm is None:
        return sorted(s.value for s in ALLOWED_FROM[target])
    if frm not in ALLOWED_FROM[target] and not (frm is State.QUEUED and target in THROUGH_BATCH):
        raise ValueError(f"a message cannot move from {frm.value} to {target.value}")
    return [frm.value]


# --------------------------------------------------------------------------- batches


class BatchState(StrEnum):
    """One gateway call's worth of messages::

        pending ──► sending ──► sent | failed | unknown | held
           ├──────► held        (credits / authentication / gateway down before the call)
           └──────► cancelled   (no queued message left; rescheduled out of the promotional window)
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


#: Allowed batch transitions: target -> states it may be reached from.
BATCH_ALLOWED_FROM: dict[BatchState, frozenset[BatchState]] = {
    BatchState.SENDING: frozenset({BatchState.PENDING}),
    BatchState.SENT: frozenset({BatchState.SENDING}),
    BatchState.HELD: frozenset({BatchState.PENDING, BatchState.SENDING}),
    BatchState.FAILED: frozenset({BatchState.SENDING}),
    BatchState.UNKNOWN: frozenset({BatchState.SENDING}),
    BatchState.CANCELLED: frozenset({BatchState.PENDING}),
}


def batch_sources(target: BatchState, frm: BatchState | None = None) -> list[str]:
    """The states a guarded batch UPDATE may move from to reach ``target``: all allowed ones, or only
    ``frm`` (which must be one of them: a caller that knows the batch's state says so)."""
    allowed = BATCH_ALLOWED_FROM[target]
    if frm is None:
        return sorted(s.value for s in allowed)
    if frm not in allowed:
        raise ValueError(f"a batch cannot move from {frm.value} to {target.value}")
    return [frm.value]


class BatchOutcome(StrEnum):
    """What one ``send_batch`` did (``SendOutcome.outcome``)."""

    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  #: not pending (taken, done, missing) or nothing queued left
    DEFERRED = "deferred"  #: the shared rate limit stayed busy: still pending
    RESCHEDULED = "rescheduled"  #: outside the promotional window
