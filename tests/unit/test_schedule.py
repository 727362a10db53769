"""Send times and the promotional window (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dispatcher.channels import Channel
from dispatcher.schedule import effective_send_at

IST = ZoneInfo("Asia/Kolkata")
W = {"start": time(9), "end": time(21), "tz": "Asia/Kolkata"}


def test_promotional_at_night_moves_to_next_morning():
    """A promotional message at 23:00 IST is scheduled for 09:00 IST the next day."""
    now = datetime(2026, 11, 25, 23, 0, tzinfo=IST)
    assert effective_send_at(now, None, Channel.PROMOTIONAL, **W) == datetime(2026, 11, 26, 9, 0, tzinfo=IST)


def test_promotional_before_opening_moves_to_same_morning():
    """At 06:00 IST it waits for 09:00 the same day."""
    now = datetime(2026, 11, 25, 6, 0, tzinfo=IST)
    assert effective_send_at(now, None, Channel.PROMOTIONAL, **W) == datetime(2026, 11, 25, 9, 0, tzinfo=IST)


def test_transactional_and_otp_ignore_the_window():
    """Only promotional messages are bound by the window."""
    now = datetime(2026, 11, 25, 23, 0, tzinfo=IST)
    assert effective_send_at(now, None, Channel.OTP, **W) is None
    assert effective_send_at(now, None, Channel.TRANSACTIONAL, **W) is None


def test_send_at_in_future_is_kept_and_past_means_now():
    """A future send_at is honoured; a past one means send now."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    later = now + timedelta(hours=1)
    assert effective_send_at(now, later, Channel.TRANSACTIONAL, **W) == later
    assert effective_send_at(now, now - timedelta(hours=1), Channel.TRANSACTIONAL, **W) is None
