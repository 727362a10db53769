"""The retention policy (pure): durations, per-table cutoffs, and the id bound that stands for a cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher import ids
from dispatcher.errors import ValidationError
from dispatcher.retention import Table, cutoffs, parse_age, parse_duration

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(sorted(UNITS)))
def test_durations_parse_in_every_unit(n: int, unit: str) -> None:
    """`30d`, `12h`, `2w`... parse to that many seconds, with spaces and in either case."""
    expected = timedelta(seconds=n * UNITS[unit])
    assert parse_age(f"{n}{unit}") == expected
    assert parse_age(f" {n} {unit.upper()} ") == expected


@pytest.mark.parametrize("text", ["", "30", "d30", "thirty days", "30 days", "-5d", "1y"])
def test_a_bad_duration_names_the_field(text: str) -> None:
    """Anything that is not <number><s|m|h|d|w> is a ValidationError naming the option."""
    assert parse_duration(text) is None
    with pytest.raises(ValidationError) as err:
        parse_age(text, "older-than")
    assert err.value.field == "older-than" and "30d" in err.value.reason


def test_zero_age_is_refused() -> None:
    """--older-than 0d would purge every final message at once: refused."""
    with pytest.raises(ValidationError, match="longer than 0"):
        parse_age("0d")


def test_settings_give_one_cutoff_per_table_and_zero_keeps() -> None:
    """Messages follow RETENTION_DAYS, batches and jobs RETENTION_DAYS_BATCHES, hooks their own; 0 keeps."""
    cut = cutoffs(NOW, 30, 7, 0)
    assert cut.messages == NOW - timedelta(days=30)
    assert cut.batches == cut.jobs == NOW - timedelta(days=7)
    assert cut.hooks is None
    assert cut.active == [Table.MESSAGES, Table.BATCHES, Table.JOBS]
    assert cutoffs(NOW, 0, 0, 0).active == []


@given(st.floats(min_value=0, max_value=400), st.floats(min_value=0, max_value=400),
       st.floats(min_value=0, max_value=400), st.integers(min_value=1, max_value=10**7))
def test_older_than_overrides_every_table(m: float, b: float, h: float, seconds: int) -> None:
    """An operator's --older-than applies to every table, whatever the settings say (even 0)."""
    cut = cutoffs(NOW, m, b, h, timedelta(seconds=seconds))
    assert {cut.of(t) for t in Table} == {NOW - timedelta(seconds=seconds)}


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.integers(min_value=1, max_value=10**9))
def test_ids_made_before_a_cutoff_sort_below_its_floor(cutoff: datetime, ms_earlier: int) -> None:
    """Every id made at least a millisecond before the cutoff sorts below id_floor(cutoff), and every id made
    at or after it does not (the purge scans messages by this primary-key range)."""
    cutoff_ms = int(cutoff.timestamp() * 1000)
    floor = ids.id_floor(cutoff)
    with mock.patch("dispatcher.ids.time.time_ns", return_value=(cutoff_ms - ms_earlier) * 1_000_000):
        earlier = ids.new_id()
    with mock.patch("dispatcher.ids.time.time_ns", return_value=cutoff_ms * 1_000_000):
        same = ids.new_id()
    assert earlier < floor <= same
    assert ids.new_ids(3, cutoff - timedelta(milliseconds=ms_earlier))[2] < floor
