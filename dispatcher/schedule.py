"""When a message may go out (pure): send_at, and the promotional window (default 09:00-21:00 IST)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .channels import Channel


def next_window_start(at: datetime, start: time, end: time, tz: str) -> datetime | None:
    """None when ``at`` is inside [start, end) local time; else the next start, as aware UTC-comparable."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone)


def effective_send_at(now: datetime, send_at: datetime | None, channel: Channel, *, start: time,
                      end: time, tz: str) -> datetime | None:
    """When the message should be released: None means now. Promotional messages outside the window are
    moved to the next window instead of being rejected by the networks."""
    when = send_at if send_at is not None and send_at > now else None
    if channel is Channel.PROMOTIONAL:
        shifted = next_window_start(when or now, start, end, tz)
        if shifted is not None:
            return shifted
    return when
