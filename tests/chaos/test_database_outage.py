"""PostgreSQL unreachable for 30 seconds (connections refused and cut by a proxy), then back: producers get a
typed error while it is down, workers wait the outage out, and nothing is lost, doubled or left unknown."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from dispatcher.errors import StorageUnavailable

from ..integration.pipeline_helpers import TXN, number, txn_text
from .common import FAST_REPAIR, SENT, enqueue, settle, verify
from .conftest import SOAK

OUTAGE_S = 30.0


@pytest.mark.slow
def test_postgresql_down_for_30_seconds(make_stack, database_url, pg_url, tcp_proxy):
    """30 s of refused database connections mid-run: every message is sent once afterwards, none unknown."""
    if database_url.startswith("sqlite"):
        pytest.skip("a database outage is a PostgreSQL scenario (a SQLite file cannot become unreachable)")
    parts = urlsplit(pg_url)
    proxy = tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.up()
    proxied = pg_url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
    # stale `sending` only after the recorder's 120 s budget: a worker holding an answer must get to write it
    repair = {**FAST_REPAIR, "stale_sending_after_s": 150.0}
    stack = make_stack(database_url=proxied, batch_size=100, **repair)
    stack.sim.admin.set_faults(latency_ms=100, commands=["send-bulk-sms"])
    total = 10_000 if SOAK else 3000
    enqueue(stack, total)
    stack.start_worker(beat=True, concurrency=3)
    started = time.monotonic()
    stack.wait_until(lambda: sum(stack.counts().get(s, 0) for s in SENT) > 300, 60, "sending to start")
    proxy.down()
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailable):  # the producer is told at once; nothing is accepted
        stack.dispatcher.send_sms(number(999_999), txn_text(999_999), **TXN)
    refused_in = time.monotonic() - t0
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t0)))
    proxy.up()
    settle(stack, total, timeout=240)
    fig = verify(stack, "postgresql-outage", f"PostgreSQL refused for {OUTAGE_S:.0f} s; send_sms during it "
                 f"raised StorageUnavailable in {refused_in:.2f} s", total, started)
    assert fig.unknown == 0 and fig.sent_once == total
    assert refused_in < 10
