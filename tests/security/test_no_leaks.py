"""A full small run (a worker with beat at DEBUG, the simulator, sync, callable and webhook hooks, operator
commands) with a distinctive API key and Redis password: neither appears in any log, task event, metric,
Redis value, command output or database column, and no phone number of the run appears unmasked in logs."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import MetaData, select
from typer.testing import CliRunner

from dispatcher import hooks
from dispatcher.cli import app as cli_app
from dispatcher.db import reading
from dispatcher.metrics import registry_for
from dispatcher.numbers import mask
from dispatcher.simulator import MAGIC_INVALID, MAGIC_UNDELIVERED

from ..chaos.common import FAST_REPAIR, HOOK_LOG_ENV
from ..fixtures.pipeline import ROOT, WorkerProc
from ..integration.pipeline_helpers import OTP, TXN, otp_text, txn_text
from .conftest import API_KEY, REDIS_PASSWORD

WEBHOOK_SECRET = "whsec-LEAKCANARY-0b7f"
FINAL = ("delivered", "undelivered", "expired", "failed")


def leak_number(i: int) -> str:
    """Numbers of this run: 91 98765 xxxxx (the 10-digit form starts 98765: no id or timestamp does)."""
    return f"9198765{i:05d}"




def start_debug_worker(stack: Any, name: str) -> WorkerProc:
    """A worker with embedded beat logging at DEBUG (the most talkative level) to its own file."""
    log = stack.tmp / f"{name}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c", "2", "-n", f"{name}@%h",
           "--without-gossip", "--without-mingle", "-l", "DEBUG", "-B", "-s", str(stack.tmp / f"{name}-beat")]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=stack.env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    w = WorkerProc(name, proc, log)
    stack.procs.append(w)
    w.wait_ready()
    return w


class EventTap:
    """Every Celery event (what Flower shows: task names, args, kwargs, results) while it runs."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.app.connection_for_read() as conn:
            recv = self.app.events.Receiver(conn, handlers={"*": self.events.append})
            while not self.stop.is_set():
                try:
                    recv.capture(limit=20, timeout=0.5, wakeup=False)
                except TimeoutError:
                    continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def redis_dump(client: Any) -> str:
    """Every key and value of the (private) Redis, as text."""
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = kind
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


def database_dump(engine: Any) -> str:
    """Every row of every table, every column, as text."""
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with reading(engine) as conn:
        for table in meta.sorted_tables:
            out += [repr(tuple(row)) for row in conn.execute(select(table))]
    return "\n".join(out)


@pytest.mark.slow
def test_no_key_no_password_and_no_unmasked_number_anywhere(make_stack, private_redis, simulator_output,
                                                            receiver, tmp_path: Path, caplog):
    """No secret anywhere after a full run; logs show phone numbers only masked (e.g. 9190****0004)."""
    caplog.set_level(logging.DEBUG)
    hook_log = tmp_path / "hooks.jsonl"
    hook_log.touch()
    stack = make_stack(batch_size=40, sync_interval_s=1.0, hooks_interval_s=1.0,
                       hook_callable="tests.chaos.common:record_hook", webhook_url=receiver.url,
                       webhook_secret=WEBHOOK_SECRET, **FAST_REPAIR)
    stack.env[HOOK_LOG_ENV] = str(hook_log)
    assert stack.settings.redis_url.startswith(f"redis://:{REDIS_PASSWORD}@")  # the password URL works
    stack.sim.admin.set_lifecycle(delivered_after_s=0, undelivered_after_s=0, jitter=0, pending_rate=0)
    tap = EventTap(stack.ctx.publisher.app)  # type: ignore[attr-defined]
    worker = start_debug_worker(stack, "dbg")

    numbers = [leak_number(i) for i in range(200)]
    ids = list(stack.dispatcher.send_bulk(((n, txn_text(i)) for i, n in enumerate(numbers)), **TXN))
    ids += [stack.dispatcher.send_sms(leak_number(500 + i), otp_text(i), **OTP) for i in range(10)]
    numbers += [leak_number(500 + i) for i in range(10)]
    ids += [stack.dispatcher.send_sms(MAGIC_INVALID, txn_text(900), **TXN),  # the gateway rejects it
            stack.dispatcher.send_sms(MAGIC_UNDELIVERED, txn_text(901), **TXN)]
    numbers += [MAGIC_INVALID, MAGIC_UNDELIVERED]
    stack.wait_settled(len(ids), timeout=90, done=FINAL)

    # error paths too: the key refused for a while, then 5xx and HTML pages (bodies go into exceptions)
    stack.sim.admin.set_faults(auth_failing=True)
    ids += [stack.dispatcher.send_sms(leak_number(700 + i), txn_text(700 + i), **TXN) for i in range(5)]
    numbers += [leak_number(700 + i) for i in range(5)]
    stack.wait_until(lambda: stack.counts().get("held", 0) == 5, 30, "messages held for authentication")
    stack.sim.admin.set_faults(auth_failing=False, rate_5xx=0.4, rate_html_error=0.4,
                               commands=["send-bulk-sms", "get-sms-balance"])
    stack.wait_settled(len(ids), timeout=90, done=FINAL)
    for i in range(6):  # sends answered by 5xx or an HTML page end `unknown`
        ids.append(stack.dispatcher.send_sms(leak_number(800 + i), txn_text(800 + i), **TXN))
        numbers.append(leak_number(800 + i))
        time.sleep(0.3)
    stack.wait_until(lambda: not {"queued", "held", "sending", "sent"} & set(stack.counts()), 60,
                     "every message final or unknown")
    stack.sim.admin.clear_faults()
    finals = sum(stack.counts().get(s, 0) for s in FINAL)
    stack.wait_until(lambda: len(receiver.posts) >= finals, 60, "a webhook for every final message")
    status_out = CliRunner().invoke(cli_app, ["-v", "status", ids[0]], env=stack.env)
    report_out = CliRunner().invoke(cli_app, ["-v", "report", "--json"], env=stack.env)
    balance_out = CliRunner().invoke(cli_app, ["-v", "balance"], env=stack.env)
    assert status_out.exit_code == 0 and report_out.exit_code == 0 and balance_out.exit_code == 0
    worker.stop()
    tap.close()

    for headers, body in receiver.posts:  # webhooks: signed, verifiable, and the key is not in them
        assert hooks.verify(WEBHOOK_SECRET, body, headers["x-smspoint-signature"])
        assert not hooks.verify(WEBHOOK_SECRET, body + b" ", headers["x-smspoint-signature"])
        assert not hooks.verify("wrong-secret", body, headers["x-smspoint-signature"])

    logs = {p.name: p.log.read_text(errors="replace") for p in stack.procs}
    logs["test process"] = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    logs["simulator"] = simulator_output.read_text(errors="replace")
    logs["cli"] = "\n".join(o.stdout + o.stderr for o in (status_out, report_out, balance_out))
    places = {
        **logs,
        "task events": "\n".join(json.dumps(e, default=str) for e in tap.events),
        "metrics": generate_latest(registry_for(stack.ctx)).decode(),
        "redis": redis_dump(private_redis.client()),
        "database": database_dump(stack.ctx.engine),
        "webhook bodies": "\n".join(b.decode() for _, b in receiver.posts),
    }
    received = [e for e in tap.events if e.get("type") == "task-received"]
    assert any("batch_id" in str(e.get("kwargs")) for e in received), "no task arguments were seen"
    assert "smspoint_messages" in places["metrics"]
    for secret in (API_KEY, REDIS_PASSWORD, WEBHOOK_SECRET):
        leaked = [where for where, text in places.items() if secret in text]
        assert leaked == [], f"{secret[:8]}... appears in {leaked}"

    in_logs = {**logs, "task events": places["task events"], "metrics": places["metrics"],
               "redis": places["redis"]}
    for where, text in in_logs.items():
        for n in numbers:
            for form in (n, n[2:]):
                hit = re.search(rf"(?<!\d){form}(?!\d)", text)
                context = text[max(0, hit.start() - 80):hit.end()] if hit else ""
                assert hit is None, f"{where} shows {form} unmasked: ...{context}"
    all_logs = "\n".join(logs.values())
    assert mask(MAGIC_INVALID) in all_logs, "the rejected number should be logged (masked)"
    assert mask(numbers[0]) in status_out.stdout  # operators see the number masked
    print(f"SECURITY leak search: {sum(len(t) for t in places.values()) / 1e6:.1f} MB searched in "
          f"{len(places)} places ({len(tap.events)} task events, {len(receiver.posts)} webhooks); "
          f"{len(numbers)} numbers, 3 secrets: no leak")


def test_database_errors_do_not_carry_the_statement_parameters(database_url):
    """A failing statement's error (what a traceback, a task failure in Flower or a 500 log shows) names
    the statement, never its parameters or the row PostgreSQL quotes in its DETAIL: message rows hold
    phone numbers and texts."""
    import traceback

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from dispatcher.db import get_engine, transaction, upgrade
    from dispatcher.models import MESSAGE

    upgrade(database_url)
    number, text = "919812345678", "Your secret code 481516"
    row = {"id": "x" * 32, "state": "queued", "channel": "otp", "sender_id": "SMSPNT", "template_id": "1",
           "number": number, "text": text, "created_at": None}  # created_at is NOT NULL: refused
    with pytest.raises(IntegrityError) as info, transaction(get_engine(database_url)) as conn:
        conn.execute(insert(MESSAGE), [row])
    shown = "".join(traceback.format_exception(info.value))  # the driver's error is chained in it
    assert "INSERT INTO message" in shown and "created_at" in shown, shown  # what and where stay named
    assert number[2:] not in shown and "481516" not in shown, shown
    assert "hidden" in shown, shown
