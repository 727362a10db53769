"""The message state machine: forward only, final states final (pure logic)."""

from __future__ import annotations

from dispatcher.states import ALLOWED_FROM, FINAL, State, can_move


def test_final_states_never_move_except_to_nothing():
    """No transition leaves delivered, undelivered or expired; failed only stays failed."""
    for final in FINAL:
        for target in State:
            assert not can_move(final, target), (final, target)


def test_unknown_is_never_resent_automatically():
    """`unknown` can only go back to `queued` (operator resend) or to a final state, never to sending."""
    assert not can_move(State.UNKNOWN, State.SENDING)
    assert can_move(State.UNKNOWN, State.QUEUED)
    assert can_move(State.UNKNOWN, State.FAILED)


def test_sent_cannot_go_back_to_sending_or_queued():
    """A late or repeated report or task cannot move a sent message backwards."""
    assert not can_move(State.SENT, State.SENDING)
    assert not can_move(State.SENT, State.QUEUED)
    assert can_move(State.SENT, State.DELIVERED)


def test_every_target_has_sources():
    """Every reachable state names at least one source state."""
    assert all(ALLOWED_FROM[t] for t in ALLOWED_FROM)
