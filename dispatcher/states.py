"""The message state machine (pure). States only move forward; final states never change.

    queued ──► sending ──► sent ──► delivered | undelivered | expired
      ▲  │        │  └──► failed (gateway rejected, with reason)
      │  │        ├─────► unknown (the gateway may or may not have it: never resent automatically)
      │  │        └─────► held (credits / authentication / gateway down / breaker) ──► queued
      │  └──► held ──► queued
    scheduled ──► queued           (send_at reached, or the promotional window opened)

``unknown`` can be resolved by an operator: ``resend`` (-> queued) or ``fail`` (-> failed).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
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
    State.SENT: frozenset({State.SENDING}),
    State.UNKNOWN: frozenset({State.SENDING}),
    State.DELIVERED: frozenset({State.SENT, State.UNKNOWN}),
    State.UNDELIVERED: frozenset({State.SENT, State.UNKNOWN}),
    State.EXPIRED: frozenset({State.SENT, State.UNKNOWN}),
    State.FAILED: frozenset({State.SENDING, State.UNKNOWN, State.QUEUED, State.HELD, State.SCHEDULED}),
}


def can_move(current: State, target: State) -> bool:
    """Whether ``current -> target`` is a legal transition."""
    return current in ALLOWED_FROM.get(target, frozenset())


def sources(target: State) -> list[str]:
    """The states a guarded UPDATE may move from to reach ``target`` (for WHERE state IN (...))."""
    return sorted(s.value for s in ALLOWED_FROM[target])
