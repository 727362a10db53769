"""Opt-out rules without I/O: which channels an opt-out covers, and the refusal's wording."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.channels import Channel
from dispatcher.errors import ValidationError
from dispatcher.optout import parse_channels, reason_text

NAMES = [c.value for c in Channel]


def test_default_is_promotional_only() -> None:
    """No channels given means promotional: OTP and transactional messages are not marketing."""
    assert parse_channels(None) == ["promotional"]


def test_all_and_lists() -> None:
    """'all' covers every channel; lists and comma strings are accepted in any case, without repeats."""
    assert sorted(parse_channels("all")) == sorted(NAMES)
    assert parse_channels("OTP, promotional,otp") == ["otp", "promotional"]
    assert parse_channels([Channel.TRANSACTIONAL, "otp"]) == ["transactional", "otp"]


@pytest.mark.parametrize(("value", "reason"), [
    ("sms", "unknown channel 'sms'"), (",", "name at least one channel"), (5, "must be channel names"),
    (["otp", 3], "unknown channel 3"),
])
def test_bad_channels_are_refused_naming_the_field(value: object, reason: str) -> None:
    """Unknown names, empty lists and non-strings are a ValidationError on 'channels'."""
    with pytest.raises(ValidationError) as info:
        parse_channels(value)
    assert info.value.field == "channels" and reason in info.value.reason


@given(st.lists(st.sampled_from(NAMES + [n.upper() for n in NAMES]), min_size=1, max_size=6))
def test_parsed_channels_are_the_distinct_names_in_order(names: list[str]) -> None:
    """Whatever the spelling and repeats, the result is each named channel once, first-seen order."""
    expected: list[str] = []
    for n in names:
        if n.lower() not in expected:
            expected.append(n.lower())
    assert parse_channels(names) == expected == parse_channels(",".join(names))


def test_reason_gives_the_date_in_the_configured_time_zone() -> None:
    """20:00 UTC on 1 January is already 2 January in India."""
    when = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
    assert reason_text("promotional", when, "Asia/Kolkata") == "opted out of promotional on 2026-01-02"
    assert reason_text("otp", when, "UTC") == "opted out of otp on 2026-01-01"
