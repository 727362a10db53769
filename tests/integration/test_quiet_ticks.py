"""tick_lanes (a run a second) stays out of a worker's INFO log and sends no task events, while the work it
wakes (collect_lane, send_batch) is still logged: a real worker process with embedded beat."""

from __future__ import annotations

import time

import pytest

from .pipeline_helpers import TXN, number, txn_text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tick_lanes_is_not_logged_but_sends_are(make_stack):
    """Over a few seconds of ticks every 0.2 s, the log has send_batch lines and no tick_lanes line."""
    stack = make_stack(tick_interval_s=0.2)
    worker = stack.start_worker(concurrency=2, beat=True)
    stack.dispatcher.send_sms(number(1), txn_text(1), **TXN)
    stack.wait_settled(1)
    time.sleep(3)
    log = worker.log.read_text()
    assert log.count("Sending due task tick-lanes") >= 5  # beat's own line: the ticks did run
    assert "Task smspoint.send_batch[" in log
    assert "Task smspoint.tick_lanes[" not in log


def test_tick_lanes_sends_no_task_events():
    """The task is declared without events, so Flower's task list does not fill with ticks."""
    from workers.tasks import send_batch, tick_lanes

    assert tick_lanes.send_events is False and send_batch.send_events is True
