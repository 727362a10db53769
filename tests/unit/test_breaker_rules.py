"""The breaker's pure rules: when a group's recent outcomes open it, which report remarks count, and the
alert rule that pages on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.breaker import Verdict, is_dlt_remark, judge

ROOT = Path(__file__).resolve().parents[2]


def test_opens_at_the_threshold_over_the_window() -> None:
    """3 rejected batches of 10 after 3 good ones: 30 of 60 = 50% opens a 50% breaker, 20 of 50 does not."""
    good, bad = (0, 10), (10, 10)
    assert judge([bad, bad, good, good, good], 100, 0.5, 10) is None
    assert judge([bad, bad, bad, good, good, good], 100, 0.5, 10) == Verdict(30, 60)


def test_needs_min_messages_and_forgets_beyond_the_window() -> None:
    """Too few messages never open it; outcomes older than the window are not counted."""
    assert judge([(5, 5)], 100, 0.2, 10) is None
    assert judge([(0, 50), (0, 50), (50, 50)], 100, 0.2, 10) is None  # the bad batch is beyond 100


def test_reports_add_bad_outcomes_without_messages() -> None:
    """DLT-undelivered reports (bad, 0) count against messages already counted when sent."""
    assert judge([(15, 0), (0, 50)], 100, 0.3, 10) == Verdict(15, 50)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)).map(lambda t: (min(t), t[1])), max_size=30),
       st.integers(1, 500), st.floats(0.01, 1.0), st.integers(1, 100))
def test_a_verdict_is_over_the_threshold_and_within_the_window(outcomes: list[tuple[int, int]], window: int,
                                                             threshold: float, least: int) -> None:
    """Whenever it opens, bad/total reaches the threshold, total reaches the minimum, and no outcome past
    the first that filled the window was counted."""
    v = judge(outcomes, window, threshold, least)
    if v is None:
        return
    assert v.total >= least and v.bad / v.total >= threshold
    assert v.total - max((t for _, t in outcomes), default=0) < window


@pytest.mark.parametrize(("remark", "dlt"), [
    ("DLT template mismatch", True), ("Header not registered", True), ("Content template ID missing", True),
    ("Error 614: PE-TM chain not bound", True), ("Scrubbing failed", True),
    ("DND", False), ("Absent subscriber", False), ("Handset switched off", False), ("", False), (None, False),
])
def test_which_remarks_point_at_dlt(remark: str | None, dlt: bool) -> None:
    """Template / header / DLT remarks count; DND and handset problems do not."""
    assert is_dlt_remark(remark) is dlt


def test_alert_rule_pages_on_an_open_breaker() -> None:
    """deploy/alerts.yml has a critical rule on smspoint_breakers_open that says what to run."""
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())["groups"][0]["rules"]
    [rule] = [r for r in rules if r["alert"] == "SmsBreakerOpen"]
    assert "smspoint_breakers_open" in rule["expr"] and rule["labels"]["severity"] == "critical"
    assert "smsdispatch breaker release" in " ".join(rule["annotations"]["description"].split())
    assert "smspoint_breakers_open" in (ROOT / "dispatcher" / "metrics.py").read_text()
