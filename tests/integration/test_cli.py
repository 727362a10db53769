"""The ``smsdispatch`` command line against real services: a database (SQLite file and PostgreSQL), Redis,
the gateway simulator over loopback HTTP and, where messages must move, a real Celery worker process.

Commands run in-process through typer's CliRunner (fast) or, where the real process matters (stderr, exit
code, exec), as ``python -m dispatcher.cli`` subprocesses.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.cli.launch import ROLE_QUEUES
from dispatcher.db import transaction
from dispatcher.states import State
from dispatcher.store import move_messages

from .pipeline_helpers import TXN, number, txn_text

ROOT = Path(__file__).resolve().parents[2]
TXN_ARGS = ["--channel", "transactional", "--sender-id", "SMSPNT", "--template-id", TXN["template_id"]]


def cli(stack: Any, *args: str, input: str | None = None) -> Any:
    """Run one command in-process with the stack's settings in the environment."""
    return CliRunner().invoke(app, list(args), env=stack.env, input=input)


def cli_json(stack: Any, *args: str) -> Any:
    result = cli(stack, *args, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def run_process(env: dict[str, str], *args: str, cwd: Path = ROOT,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def make_unknown(stack: Any, n: int) -> list[str]:
    """Enqueue n messages and move them the way a crash mid-call does: queued -> sending -> unknown."""
    ids = [stack.dispatcher.send_sms(number(900 + i), txn_text(900 + i), **TXN) for i in range(n)]
    now = stack.ctx.clock()
    with transaction(stack.ctx.engine) as conn:
        assert move_messages(conn, ids, State.SENDING, now) == ids
        assert move_messages(conn, ids, State.UNKNOWN, now) == ids
    return ids


def test_send_status_and_report_json(make_stack):
    """A message sent with `send` goes out; `status` shows its history and `report --json` counts it."""
    stack = make_stack()
    stack.start_worker(concurrency=2)
    sent = cli_json(stack, "send", "--to", "9995012345", "--text", txn_text(1), *TXN_ARGS)
    assert sent["state"] == "queued" and sent["credits"] == 1
    stack.wait_settled(1)

    status = cli_json(stack, "status", sent["id"])
    assert status["state"] in ("sent", "delivered") and status["number_masked"] == "9199****2345"
    assert [p["state"] for p in status["history"]][:3] == ["created", "sending", "sent"]
    assert "timeline" not in status  # one history, not an empty list beside a full one
    table = cli(stack, "status", sent["id"])
    assert table.exit_code == 0 and "history" in table.stdout and "9199****2345" in table.stdout

    rep = cli_json(stack, "report", "--since", "1h")
    assert rep["total"] == 1 and rep["accepted"] == 1 and rep["credits_charged"] == 1
    assert rep["by_channel"]["transactional"] in ({"sent": 1}, {"delivered": 1})
    assert rep["latency_s"]["enqueue_to_sent"]["count"] == 1
    assert 0 < rep["latency_s"]["enqueue_to_sent"]["p50"] < 60
    assert cli_json(stack, "report", "--since", "2999-01-01T00:00+05:30")["total"] == 0
    text = cli(stack, "report")
    assert text.exit_code == 0 and "delivery rate" in text.stdout and "enqueue -> sent" in text.stdout


def test_send_file_enqueues_valid_rows_and_writes_rejects(make_stack, tmp_path):
    """`send-file` enqueues the valid rows and writes every invalid one, with its reason, to a rejects CSV."""
    stack = make_stack()
    stack.ctx.catalog.refresh(stack.ctx.client)  # so enqueue checks texts against the templates
    path = tmp_path / "notices.csv"
    rows = [("9995000001", txn_text(1)), ("12345", txn_text(2)), ("9995000003", txn_text(3)),
            ("9995000004", "Payment received, thanks!"), ("+91 99950 00005", txn_text(5))]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("number", "text"), *rows])
    out = cli_json(stack, "send-file", str(path), *TXN_ARGS)
    assert (out["rows"], out["enqueued"], out["rejected"]) == (5, 3, 2)
    with open(out["rejects_file"], newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [(r["index"], r["line"], r["field"]) for r in rejects] == [("1", "3", "to"), ("3", "5", "text")]
    assert "wrong length" in rejects[0]["reason"] and "does not match template" in rejects[1]["reason"]
    assert stack.counts() == {"queued": 3}


def test_send_file_renders_template_values(make_stack, tmp_path):
    """Without a text column the other columns fill the template's variables; a too-long one is rejected."""
    stack = make_stack()
    stack.ctx.catalog.refresh(stack.ctx.client)
    path = tmp_path / "orders.csv"
    path.write_text("number,name,order,date\n9995000011,Asha,OD123,12 Mar\n"
                    f"9995000012,{'x' * 31},OD124,13 Mar\n9995000013,Ravi,OD125,14 Mar\n")
    result = cli(stack, "send-file", str(path), "-c", "transactional", "-s", "SMSPNT",
                 "-t", "1207161000000000001", "--rejects", str(tmp_path / "bad.csv"))
    assert result.exit_code == 0, result.stderr
    assert "enqueued 2 of 3 row(s); rejected 1" in result.stdout
    bad = (tmp_path / "bad.csv").read_text().splitlines()
    assert bad[0] == "index,line,field,reason" and bad[1].startswith("1,3,template values,")
    with transaction(stack.ctx.engine) as conn:
        texts = set(conn.exec_driver_sql("SELECT text FROM message").scalars())
    assert texts == {"Dear Asha, your order OD123 has been shipped and will reach you by 12 Mar. - SMSPNT",
                     "Dear Ravi, your order OD125 has been shipped and will reach you by 14 Mar. - SMSPNT"}


def test_gateway_lookups_show_the_simulators_account(make_stack):
    """`balance`, `senders` and `templates` show the simulator's account, as tables and as JSON."""
    stack = make_stack()
    million = 1_000_000
    assert cli_json(stack, "balance") == {"OTP": million, "Promotional": million, "Transactional": million}
    senders = cli_json(stack, "senders")
    assert {"SMSPNT", "OTPSMS", "PNDSMS"} <= {s["sender_id"] for s in senders}
    assert next(s for s in senders if s["sender_id"] == "PNDSMS")["approved"] is False
    templates = cli_json(stack, "templates")
    assert next(t for t in templates if t["template_id"] == TXN["template_id"])["channel"] == "transactional"
    for command, expected in (("balance", "1,000,000"), ("senders", "OTPSMS"), ("templates", "login_otp")):
        result = cli(stack, command)
        assert result.exit_code == 0 and expected in result.stdout
        assert stack.sim.api_key not in result.stdout + result.stderr


def test_unknown_list_resend_and_fail(make_stack):
    """Unknown messages are listed; `resend` queues one again, `fail --all` fails the rest with the reason."""
    stack = make_stack()
    ids = make_unknown(stack, 3)
    listed = cli_json(stack, "unknown", "list")
    assert listed["total"] == 3 and {m["id"] for m in listed["messages"]} == set(ids)
    assert all("****" in m["number_masked"] for m in listed["messages"])

    declined = cli(stack, "unknown", "resend", ids[0], input="n\n")
    assert declined.exit_code == 1 and "aborted" in declined.stderr
    assert stack.counts() == {"unknown": 3}

    resent = cli_json(stack, "unknown", "resend", ids[0], "--yes")
    assert resent == {"action": "resend", "moved": 1, "ids": [ids[0]]}
    st = stack.dispatcher.get_status(ids[0])
    assert st.state == "queued" and st.history[-1]["detail"] == "operator: resend"
    assert stack.ctx.lanes.depth("transactional") >= 1

    not_unknown = cli(stack, "unknown", "fail", ids[0], "--reason", "x", "--yes")
    assert not_unknown.exit_code == 1 and "is queued, not unknown" in not_unknown.stderr

    failed = cli_json(stack, "unknown", "fail", "--all", "--reason", "not on the gateway portal", "--yes")
    assert failed["moved"] == 2 and set(failed["ids"]) == set(ids[1:])
    st = stack.dispatcher.get_status(ids[1])
    assert st.state == "failed" and st.last_error == "operator: not on the gateway portal"
    assert st.final_at is not None
    assert stack.counts() == {"queued": 1, "failed": 2}


MISTAKES = [
    (["send", "--to", "12345", "--text", "hi", *TXN_ARGS], 1, "to: wrong length"),
    (["send", "--to", "9995012345", *TXN_ARGS], 2, "Missing option '--text'"),
    (["send", "--to", "9995012345", "--text", "x", "-c", "fax", "-s", "A", "-t", "B"], 1, "unknown channel"),
    (["status", "nope"], 1, "no message with id 'nope'"),
    (["report", "--since", "yesterday"], 1, "since: 'yesterday' is neither"),
    (["unknown", "resend"], 2, "give message ids or --all"),
    (["frobnicate"], 2, "No such command"),
]


def test_user_mistakes_are_one_line_errors(make_stack):
    """A user mistake prints one readable line on stderr and exits non-zero, never a traceback."""
    stack = make_stack()
    for args, code, needle in MISTAKES:
        proc = run_process(stack.env, *args)
        assert proc.returncode == code, (args, proc.stderr)
        assert proc.stderr.startswith("smsdispatch: error: ") and needle in proc.stderr, (args, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_environment_problems_are_one_line_errors(make_stack, tmp_path):
    """Bad settings and an unreachable gateway are one line each, and the API key is never printed."""
    stack = make_stack()
    env = {**stack.env, "SMSPOINT_CHANNEL_MAP": "transactional=1,promotional=1,otp=3"}
    proc = run_process(env, "report")
    assert proc.returncode == 1 and "invalid settings" in proc.stderr and "distinct" in proc.stderr
    env = {**stack.env, "SMSPOINT_BASE_URL": "http://127.0.0.1:9/api/v1", "SMSPOINT_API_KEY": "sk-secret-123"}
    proc = run_process(env, "balance")
    assert proc.returncode == 1 and "could not connect to the gateway" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "sk-secret-123" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("address", "user", "password", "needle"), [
    ("0.0.0.0", "", "", "refusing to start Flower on 0.0.0.0 without basic auth"),
    ("192.0.2.10", "", "", "refusing to start Flower"),
    ("127.0.0.1", "ops", "", "set both FLOWER_USER and FLOWER_PASSWORD"),
])
def test_flower_refuses_unsafe_settings(sqlite_url, address, user, password, needle):
    """Flower does not start on a non-loopback address without basic auth (nor with half of it)."""
    env = {**subprocess_env(), "DATABASE_URL": sqlite_url, "FLOWER_USER": user, "FLOWER_PASSWORD": password}
    proc = run_process(env, "flower", "--address", address, "--port", "1")
    assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    assert "exec:" not in proc.stderr


def subprocess_env() -> dict[str, str]:
    """This environment without settings or PYTHONPATH (the project is installed in the virtualenv)."""
    from dispatcher.settings import Settings

    names = {n.upper() for n in Settings.model_fields} | {"SMSPOINT_CHANNEL_MAP", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k not in names}


def test_worker_roles_match_the_celery_queue_constants():
    """The CLI's worker roles consume exactly the queues workers.queues declares for them."""
    from workers.queues import ROLE_QUEUES as DECLARED

    assert ROLE_QUEUES == DECLARED


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_and_beat_commands_run_celery(make_stack):
    """`worker --role otp` consumes only the otp queue; `beat` starts its schedule (both exec Celery)."""
    stack = make_stack()
    procs = []
    try:
        for name, args in (("otp", ["worker", "--role", "otp", "-c", "1", "--", "--without-gossip"]),
                           ("beat", ["beat", "--schedule", str(stack.tmp / "beat-schedule")])):
            log = stack.tmp / f"cli-{name}.log"
            with open(log, "wb") as fh:
                proc = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", *args], cwd=ROOT,
                                        env=stack.env, stdout=fh, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            procs.append(proc)
            ready = "ready." if name == "otp" else "beat: Starting"
            deadline = time.monotonic() + 60
            while ready not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
            text = log.read_text()
            assert ready in text, text[-2000:]
            if name == "otp":
                queues = set(re.findall(r"\.> (\w+)\s+exchange=", text))
                assert queues == {"otp"} and "otp@" in text
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def test_db_upgrade_creates_the_schema(tmp_path):
    """`db upgrade` creates the tables in a new SQLite file and is safe to run twice."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**subprocess_env(), "DATABASE_URL": url}
    for _ in range(2):
        proc = run_process(env, "db", "upgrade")
        assert proc.returncode == 0, proc.stderr
        assert "is at head" in proc.stdout
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "fresh.db").execute("select name from sqlite_master")}
    assert {"message", "batch", "gateway_job", "message_event"} <= tables


def test_simulator_command_serves_the_gateway(tmp_path):
    """`smsdispatch simulator` runs the simulator with its own flags (here: port and credits)."""
    import requests

    argv = [sys.executable, "-m", "dispatcher.cli", "simulator", "--port", "0", "--credits", "42"]
    proc = subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base_url = line.split("base URL: ")[1].strip()
        root = base_url.removesuffix("/api/v1")
        deadline = time.monotonic() + 20
        while not _answers(f"{root}/_sim/health") and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = requests.post(f"{base_url}/get-sms-balance", headers={"key": "simulator-key"},
                               timeout=5).json()
        assert answer["status"] == "success" and "42" in json.dumps(answer)
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False


def test_every_command_explains_itself_with_an_example():
    """`--help` works for every command and shows an example."""
    runner = CliRunner()
    commands = [["send"], ["send-file"], ["status"], ["report"], ["balance"], ["senders"], ["templates"],
                ["unknown"], ["unknown", "list"], ["unknown", "resend"], ["unknown", "fail"], ["worker"],
                ["beat"], ["flower"], ["simulator"], ["metrics"], ["demo"], ["db", "upgrade"], ["bench"]]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "smsdispatch " + command[0] in result.stdout, command
        assert "Example" in result.stdout or "smsdispatch unknown list" in result.stdout, command


def test_bench_says_not_yet_without_a_bench_package(tmp_path):
    """`bench` outside a checkout with benchmarks says so in one line."""
    proc = run_process(subprocess_env(), "bench", cwd=tmp_path)
    assert proc.returncode == 1 and "not yet" in proc.stderr
