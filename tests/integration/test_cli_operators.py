"""What an operator sees of ``smsdispatch`` in a real terminal and on a bad day: ids whole in tables at
80 and 130 columns (``--wide`` past the terminal), infrastructure errors naming the URL (password masked)
and the cause in one line, no empty database left by a command run in the wrong folder, usage errors
without a doubled prefix, and flags shown without a ``<bool>`` type in help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from dispatcher.settings import Settings

from .terminal import run_in_terminal
from .test_cli import make_unknown, run_process

TEMPLATE_IDS = ["1207161000000000001", "1207161000000000002", "1207161000000000004"]


def whole(ids: list[str], lines: list[str]) -> None:
    """Every id appears unbroken on one line."""
    for i in ids:
        assert any(i in line for line in lines), (i, "\n".join(lines))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("columns", [80, 130])
def test_ids_are_never_cut_in_a_real_terminal(make_stack, columns: int) -> None:
    """`templates` and `unknown list` keep every template, message and job id whole at 80 and 130 columns,
    folding the other columns instead, and stay within the terminal's width."""
    stack = make_stack()
    ids = make_unknown(stack, 3)
    for args, expected in ((["templates"], TEMPLATE_IDS), (["unknown", "list"], ids)):
        code, lines = run_in_terminal(stack.env, *args, columns=columns)
        assert code == 0, lines
        whole(expected, lines)
        assert max(cell_len(line) for line in lines) <= columns, "\n".join(lines)
        assert not any("…" in line for line in lines), "\n".join(lines)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_wide_prints_past_a_narrow_terminal(make_stack) -> None:
    """`--wide` lays tables out at their natural width even in 50 columns: ids and texts all whole."""
    stack = make_stack()
    ids = make_unknown(stack, 2)
    code, lines = run_in_terminal(stack.env, "unknown", "list", "--wide", columns=50)
    assert code == 0 and max(cell_len(line) for line in lines) > 50
    whole(ids, lines)
    code, lines = run_in_terminal(stack.env, "templates", "--wide", "--full", columns=50)
    assert code == 0
    whole(TEMPLATE_IDS, lines)
    assert any("is your OTP to log in. It is valid for 10 minutes." in line for line in lines), lines


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without settings (a fresh shell), plus ``extra``."""
    names = {n.upper() for n in Settings.model_fields} | {"SMSPOINT_CHANNEL_MAP"}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def test_infrastructure_errors_name_the_url_and_the_cause(make_stack) -> None:
    """Redis and PostgreSQL that cannot be reached: one line each with the URL, its password masked, and the
    cause; the password never appears."""
    stack = make_stack()
    env = {**stack.env, "REDIS_URL": "redis://:hunter2-secret@127.0.0.1:9/3"}
    proc = run_process(env, "send", "--to", "9995012345", "--text", "x", "-c", "transactional",
                       "-s", "SMSPNT", "-t", "1")
    assert proc.returncode == 1, proc.stderr
    assert "Redis unavailable at redis://:***@127.0.0.1:9/3: " in proc.stderr, proc.stderr
    assert "Connection refused" in proc.stderr and "hunter2" not in proc.stderr
    env = {**stack.env, "DATABASE_URL": "postgresql://app:pg-secret-7@127.0.0.1:9/smspoint"}
    proc = run_process(env, "report")
    assert proc.returncode == 1
    assert "database unavailable at postgresql+psycopg://app:***@127.0.0.1:9/smspoint: " in proc.stderr
    assert "Connection refused" in proc.stderr and "pg-secret-7" not in proc.stderr
    assert proc.stderr.startswith("smsdispatch: error: ") and proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("args", [["report"], ["status", "0" * 32], ["unknown", "list"],
                                  ["purge", "--dry-run"], ["unknown", "fail", "--all", "-r", "x", "-y"]])
def test_a_command_in_a_folder_without_a_database_leaves_none_behind(tmp_path: Path, redis_url: str,
                                                                     args: list[str]) -> None:
    """Run where there is no smspoint.db, a command says so (and how to make one) instead of creating an
    empty file."""
    proc = subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, env=clean_env(REDIS_URL=redis_url))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no database at ./smspoint.db" in proc.stderr and "smsdispatch db upgrade" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_name_the_command_once(make_stack) -> None:
    """`error: smsdispatch send:` is now `error: send:`, with the command's help named in full."""
    stack: Any = make_stack()
    proc = run_process(stack.env, "send", "--to", "9995012345")
    assert proc.returncode == 2
    assert proc.stderr.startswith("smsdispatch: error: send: Missing option '--text'"), proc.stderr
    assert "(see 'smsdispatch send --help')" in proc.stderr and "error: smsdispatch" not in proc.stderr
    proc = run_process(stack.env, "unknown", "resend")
    assert proc.stderr.startswith("smsdispatch: error: unknown resend: "), proc.stderr


def test_help_shows_flags_without_a_type() -> None:
    """In a terminal, help lists on/off flags by name only: no `<bool>` that reads as if they took a value."""
    for args in (["unknown", "resend", "--help"], ["demo", "--help"], ["purge", "--help"]):
        code, lines = run_in_terminal(clean_env(), *args, columns=100)
        text = "\n".join(lines)
        assert code == 0 and ("--json" in text or "--no-flower" in text), text
        assert "<bool>" not in text, text
    code, lines = run_in_terminal(clean_env(), "unknown", "list", "--help", columns=100)
    assert any("--limit" in line and "<int range>" in line for line in lines)  # valued options keep theirs


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    import csv

    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_send_file_twice_enqueues_nothing_new_and_says_so(make_stack, tmp_path: Path) -> None:
    """A second run of the same file enqueues none of its rows again and says so; rejects go to
    NAME.rejects.csv, and a too-long text is refused without naming a Python argument."""
    from .pipeline_helpers import TXN, txn_text

    stack = make_stack()
    args = ["-c", "transactional", "-s", "SMSPNT", "-t", TXN["template_id"]]
    path = write_csv(tmp_path / "notices.csv", [("number", "text"), ("9995000001", txn_text(1)),
                                                 ("9995000002", txn_text(2)), ("12345", txn_text(3)),
                                                 ("9995000004", "x" * 800)])
    first = run_process(stack.env, "send-file", str(path), *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("enqueued 2 of 4 row(s); rejected 2 -> ") and \
        str(tmp_path / "notices.rejects.csv") in first.stdout
    reasons = (tmp_path / "notices.rejects.csv").read_text()
    assert "the gateway sends at most 5: shorten it" in reasons and "truncate" not in reasons
    assert not (tmp_path / "notices.csv.rejects.csv").exists()

    again = run_process(stack.env, "send-file", str(path), *args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("nothing new: all 2 valid row(s) were enqueued by an earlier run")
    assert stack.counts() == {"queued": 2}


def test_send_file_key_column_keeps_keys_across_edits(make_stack, tmp_path: Path) -> None:
    """With --key-column, an edited file (a row added) enqueues only the new row; a key reused with another
    text is a reject, not a second message."""
    from .pipeline_helpers import TXN, txn_text

    stack = make_stack()
    args = ["-c", "transactional", "-s", "SMSPNT", "-t", TXN["template_id"], "--key-column", "ref", "--json"]
    rows = [("ref", "number", "text"), ("A1", "9995000001", txn_text(1)), ("A2", "9995000002", txn_text(2))]
    path = write_csv(tmp_path / "orders.csv", rows)
    first = json.loads(run_process(stack.env, "send-file", str(path), *args).stdout)
    assert (first["enqueued"], first["already_enqueued"]) == (2, 0)
    write_csv(path, [*rows, ("A3", "9995000003", txn_text(3)), ("A1", "9995000009", txn_text(9))])
    second = json.loads(run_process(stack.env, "send-file", str(path), *args).stdout)
    assert (second["enqueued"], second["already_enqueued"], second["rejected"]) == (1, 2, 1)
    assert "repeats the key of row 0" in (tmp_path / "orders.rejects.csv").read_text()  # A1 twice
    assert stack.counts() == {"queued": 3}
    bad = run_process(stack.env, "send-file", str(path), *args[:-3], "--key-column", "nope")
    assert bad.returncode == 1 and "key-column: " in bad.stderr and "has no column 'nope'" in bad.stderr
