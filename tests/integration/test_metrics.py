"""The Prometheus exporter against real services: ``smsdispatch metrics`` scraped over HTTP after messages
went through a real worker, worker-side observations turned into histograms, and the example alert rules
checked against what the exporter really exposes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import metrics, observe
from dispatcher.context import Context
from dispatcher.settings import Settings

from .pipeline_helpers import OTP, TXN, number, otp_text, txn_text

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@contextmanager
def exporter(env: dict[str, str]) -> Iterator[str]:
    """`smsdispatch metrics` on a free loopback port; yields its /metrics URL."""
    argv = [sys.executable, "-m", "dispatcher.cli", "metrics", "--port", "0", "--address", "127.0.0.1"]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+/metrics)", line)
        assert match, f"exporter did not start: {line!r}"
        yield match.group(1)
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM is a clean stop


def scrape(url: str) -> tuple[set[str], Samples]:
    """(family names, {(sample name, sorted labels): value}) of one scrape."""
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200
    families = list(text_string_to_metric_families(resp.text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_exporter_shows_messages_credits_and_lanes_after_a_run(make_stack):
    """After 5 transactional and 2 OTP messages went out, a scrape counts them by state, channel, package."""
    stack = make_stack()
    stack.start_worker(concurrency=2)
    for i in range(5):
        stack.dispatcher.send_sms(number(i), txn_text(i), **TXN)
    for i in range(2):
        stack.dispatcher.send_sms(number(50 + i), otp_text(i), **OTP)
    stack.wait_settled(7)
    with exporter(stack.env) as url:
        names, samples = scrape(url)
    assert {"smspoint_messages", "smspoint_unknown_messages", "smspoint_held_messages",
            "smspoint_credits_available", "smspoint_credits_reserved", "smspoint_credits_spent",
            "smspoint_lane_depth", "smspoint_lane_oldest_age_seconds", "smspoint_gateway_call_seconds",
            "smspoint_gateway_errors", "smspoint_batch_size", "smspoint_source_up"} <= names
    accepted = ("sent", "delivered")
    assert sum(value(samples, "smspoint_messages", state=s, channel="transactional") for s in accepted) == 5
    assert sum(value(samples, "smspoint_messages", state=s, channel="otp") for s in accepted) == 2
    assert value(samples, "smspoint_messages", state="queued", channel="promotional") == 0
    assert value(samples, "smspoint_unknown_messages") == 0
    assert value(samples, "smspoint_held_messages", reason="credits") == 0
    assert value(samples, "smspoint_credits_spent_total", package="Transactional") == 5
    assert value(samples, "smspoint_credits_spent_total", package="OTP") == 2
    assert value(samples, "smspoint_credits_available", package="Transactional") == 1_000_000 - 5
    assert value(samples, "smspoint_credits_reserved", package="Transactional") == 0
    assert 0 <= value(samples, "smspoint_credits_balance_age_seconds", package="OTP") < 120
    for lane in ("otp", "transactional", "promotional"):
        assert value(samples, "smspoint_lane_depth", lane=lane) == 0
        assert value(samples, "smspoint_lane_oldest_age_seconds", lane=lane) == 0
    assert value(samples, "smspoint_source_up", source="database") == 1
    assert value(samples, "smspoint_source_up", source="redis") == 1


def test_worker_observations_become_histograms_and_counters(make_stack):
    """observe_call / observe_batch (from any process) become latency and size histograms and error counts."""
    stack = make_stack()
    ctx = stack.ctx
    observe.observe_call(ctx, "send-bulk-sms", 0.2)
    observe.observe_call(ctx, "send-bulk-sms", 0.08)
    observe.observe_call(ctx, "send-bulk-sms", 40.0, "AmbiguousOutcome")
    observe.observe_call(ctx, "get-sms-balance", 0.01, "GatewayUnavailable")
    observe.observe_batch(ctx, 1500, "promotional")
    observe.observe_batch(ctx, 3, "otp")
    with exporter(stack.env) as url:
        _, samples = scrape(url)
    call = "smspoint_gateway_call_seconds"
    assert value(samples, f"{call}_count", command="send-bulk-sms") == 3
    assert abs(value(samples, f"{call}_sum", command="send-bulk-sms") - 40.28) < 1e-9
    assert value(samples, f"{call}_bucket", command="send-bulk-sms", le="0.1") == 1
    assert value(samples, f"{call}_bucket", command="send-bulk-sms", le="0.25") == 2
    assert value(samples, f"{call}_bucket", command="send-bulk-sms", le="30.0") == 2
    assert value(samples, f"{call}_bucket", command="send-bulk-sms", le="+Inf") == 3
    errors = "smspoint_gateway_errors_total"
    assert value(samples, errors, command="send-bulk-sms", error_class="AmbiguousOutcome") == 1
    assert value(samples, errors, command="get-sms-balance", error_class="GatewayUnavailable") == 1
    size = "smspoint_batch_size"
    assert value(samples, f"{size}_bucket", lane="promotional", le="1000.0") == 0
    assert value(samples, f"{size}_bucket", lane="promotional", le="1500.0") == 1
    assert value(samples, f"{size}_bucket", lane="otp", le="10.0") == 1
    assert value(samples, f"{size}_sum", lane="otp") == 3


def test_an_unreadable_database_is_reported_not_fatal(redis_url, redis_prefix):
    """With the database unreachable the scrape still answers: source_up says which source failed."""
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", redis_url=redis_url,
                        redis_prefix=redis_prefix)
    server, thread = metrics.serve(Context(settings), 0, "127.0.0.1")
    try:
        names, samples = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        thread.join(5)
    assert value(samples, "smspoint_source_up", source="database") == 0
    assert value(samples, "smspoint_source_up", source="redis") == 1
    assert "smspoint_messages" not in names and "smspoint_credits_available" in names


def test_alert_rules_use_only_exposed_metrics(make_stack):
    """Every metric the example alert rules use is one the exporter exposes; every rule is documented."""
    stack = make_stack()
    observe.observe_call(stack.ctx, "send-bulk-sms", 0.2, "AmbiguousOutcome")
    observe.observe_batch(stack.ctx, 10, "otp")
    stack.ctx.ledger.set_balance("OTP", 5000)  # as a worker does before its first send
    with exporter(stack.env) as url:
        _, samples = scrape(url)
    exposed = {name for name, _ in samples}
    doc = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    rules: list[dict[str, Any]] = doc["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {"SmsBacklogGrowing", "SmsUnknownMessages", "SmsCreditsLow", "SmsDeliveryRateFalling"} <= names
    for rule in rules:
        used = set(re.findall(r"\bsmspoint_[a-z_]+", rule["expr"]))
        assert used and used <= exposed, (rule["alert"], used - exposed)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["for"]
