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


def test_batch_guards_come_from_the_batch_table() -> None:
    """A batch's guarded UPDATE takes its sources from BATCH_ALLOWED_FROM; a caller naming an impossible
    source is refused before any SQL (a typo can no longer look like 'taken by another worker')."""
    import pytest

    from dispatcher.states import BATCH_ALLOWED_FROM, BatchState, batch_sources

    assert batch_sources(BatchState.SENDING) == ["pending"]
    assert batch_sources(BatchState.HELD) == ["pending", "sending"]
    assert batch_sources(BatchState.HELD, BatchState.SENDING) == ["sending"]
    with pytest.raises(ValueError, match="from sent to held"):
        batch_sources(BatchState.HELD, BatchState.SENT)
    finals = {BatchState.SENT, BatchState.FAILED, BatchState.UNKNOWN, BatchState.CANCELLED}
    assert not any(s in sources for s in finals for sources in BATCH_ALLOWED_FROM.values())


def test_unconfirmed_moves_only_to_sent_or_unknown() -> None:
    """A message the send answer did not list is settled by the reports: sent, or unknown; never resent."""
    assert can_move(State.SENDING, State.UNCONFIRMED)
    assert {t for t in State if can_move(State.UNCONFIRMED, t)} == {State.SENT, State.UNKNOWN}
