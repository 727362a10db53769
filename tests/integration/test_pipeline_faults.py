"""No loss, no double send under faults, proved from the simulator's ledger: worker SIGKILL mid-batch,
gateway 5xx / 429 / dropped connections / read timeouts after acceptance / outage, database outage."""

from __future__ import annotations

import random
import time
from urllib.parse import urlsplit

import pytest

from .pipeline_helpers import FAST_REPAIR, TXN, audit, number, txn_text

SENT = ("sent", "delivered", "undelivered", "expired")
SETTLED = (*SENT, "unknown", "failed")


def enqueue(stack, n: int, start: int = 0) -> list[str]:
    return list(stack.dispatcher.send_bulk(((number(i), txn_text(i)) for i in range(start, start + n)),
                                           **TXN))


def assert_exactly_once(stack, total: int) -> None:
    a = audit(stack)
    print(a.line())
    assert a.messages == total
    assert a.lost == 0, a.line()
    assert a.duplicated == 0, a.line()
    assert a.strays == 0, a.line()
    assert a.mismatched == [], a.mismatched[:5]
    assert a.sent_once + a.unknown == total, a.line()


def test_worker_sigkilled_repeatedly_loses_nothing_and_sends_nothing_twice(make_stack):
    """A worker SIGKILLed mid-batch three times: every message is sent once or marked unknown."""
    stack = make_stack(batch_size=100, **FAST_REPAIR)
    stack.sim.admin.set_faults(latency_ms=80)
    total = 3000
    enqueue(stack, total)
    rng = random.Random(7)
    kills = 0
    for _ in range(3):
        w = stack.start_worker(beat=True, concurrency=3)
        time.sleep(rng.uniform(0.8, 2.0))
        w.kill()
        kills += 1
    stack.start_worker(beat=True, concurrency=3)
    stack.wait_settled(total, timeout=120, done=SETTLED)
    print(f"kills={kills}")
    assert_exactly_once(stack, total)
    assert sum(stack.counts().get(st, 0) for st in SENT) > total // 2


@pytest.mark.parametrize("faults,expect", [
    ({"rate_5xx": 0.3}, "unknown"),
    ({"rate_429": 0.5, "retry_after_s": 0.2}, "all_sent"),
    ({"rate_drop_before_read": 0.3}, "unknown"),
    ({"rate_read_timeout_after_accept": 0.3, "read_timeout_s": 3.0}, "unknown_in_ledger"),
    ({"rate_html_error": 0.3}, "unknown"),
], ids=["5xx", "429", "drop-before-read", "read-timeout-after-accept", "html-502"])
def test_gateway_faults_are_never_resent_blindly(make_stack, faults, expect):
    """Ambiguous failures become `unknown` (never resent); provably-unsent ones (429) are retried."""
    stack = make_stack(batch_size=50, read_timeout=1.5, **FAST_REPAIR)
    stack.sim.admin.set_faults(**faults, commands=["send-bulk-sms", "send-single-sms"])
    total = 1000
    enqueue(stack, total)
    stack.start_worker(beat=True)
    stack.wait_settled(total, timeout=90, done=SETTLED)
    assert_exactly_once(stack, total)
    a = audit(stack)
    if expect == "all_sent":
        assert a.sent_once == total
    else:
        assert a.unknown > 0, "the fault never fired: the test proves nothing"
        if expect == "unknown_in_ledger":
            assert a.unknown_in_ledger > 0  # the gateway did accept some of the unknown ones
        else:
            assert a.unknown_in_ledger == 0


def test_gateway_outage_holds_messages_and_sends_them_when_it_returns(make_stack, simulator, tcp_proxy):
    """Connection refused (gateway down) holds messages as gateway_down; they go out once it is back."""
    proxy = tcp_proxy("127.0.0.1", simulator.port)
    proxy.up()
    stack = make_stack(smspoint_base_url=f"http://127.0.0.1:{proxy.port}/api/v1", batch_size=100,
                       **{**FAST_REPAIR, "retry_max_elapsed_s": 2.0, "retry_max_attempts": 3})
    stack.start_worker(beat=True)
    enqueue(stack, 200)
    stack.wait_settled(200, timeout=30, done=SENT)
    proxy.down()
    enqueue(stack, 300, start=200)
    stack.wait_until(lambda: stack.counts().get("held", 0) > 0, 30, "messages held while gateway is down")
    assert stack.counts().get("unknown", 0) == 0 and stack.counts().get("failed", 0) == 0
    proxy.up()
    stack.wait_settled(500, timeout=90, done=SENT)
    assert_exactly_once(stack, 500)


def test_database_outage_loses_nothing(make_stack, database_url, pg_url, tcp_proxy):
    """PostgreSQL unreachable for a while (connections refused) mid-run: nothing lost, nothing doubled."""
    if database_url.startswith("sqlite"):
        pytest.skip("a database outage is exercised on the PostgreSQL leg (a SQLite file cannot go away)")
    parts = urlsplit(pg_url)
    proxy = tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.up()
    proxied = pg_url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
    stack = make_stack(database_url=proxied, batch_size=100, **FAST_REPAIR)
    stack.sim.admin.set_faults(latency_ms=50)
    enqueue(stack, 2000)
    stack.start_worker(beat=True)
    stack.wait_until(lambda: stack.counts().get("sent", 0) > 200, 60, "sending to start")
    proxy.down()
    time.sleep(8)
    proxy.up()
    stack.wait_settled(2000, timeout=120, done=SETTLED)
    assert_exactly_once(stack, 2000)
