"""``smsdispatch demo`` end to end, as a new user runs it: real subprocesses (simulator, Redis, workers,
beat, Flower), a small mix of messages, the report at the end, and nothing left running afterwards (checked
through /proc: every process the demo starts runs in its folder)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any dispatcher setting (as on a fresh machine), plus ``extra``."""
    names = {n.upper() for n in Settings.model_fields} | {"SMSPOINT_CHANNEL_MAP", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def processes_in(folder: Path) -> list[str]:
    """Live processes whose working directory is inside ``folder`` (what the demo started runs there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(str(folder) + os.sep):
            found.append(f"{entry.name}: {cmd[:120]}")
    return found


def demo_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher.cli", "demo", *args]


@pytest.mark.slow
def test_small_demo_runs_to_the_report_and_stops_everything(tmp_path, redis_url):
    """300 messages through the whole system on the configured Redis: the report is printed, every message
    is accounted for, the demo's Redis keys are removed and no process is left running."""
    argv = demo_argv("--messages", "300", "--no-flower", "--timeout", "180", "--exit-when-done")
    proc = subprocess.run(argv, cwd=tmp_path,
                          env=clean_env(REDIS_URL=redis_url), capture_output=True, text=True, timeout=280)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "simulator at http://127.0.0.1:" in out and "promotional messages allowed all day" in out
    assert "refused at enqueue, an OTP to a landline: to: the number is a landline" in out
    assert re.search(r"\d+ row\(s\) refused at enqueue", out)
    assert "all messages" in out and "delivery rate" in out and "enqueue -> sent" in out
    total = re.search(r"│ total\s+│\s+([\d,]+) │\s+([\d,]+) │\s+([\d,]+) │\s+([\d,]+) │", out)
    assert total, out[-2000:]
    refused = int(re.search(r"demo: [\d,]+ of 300 enqueued \((\d+) refused\)", out).group(1))  # type: ignore[union-attr]
    assert int(total.group(4).replace(",", "")) == 300 - refused
    assert "nothing left running" in out
    assert processes_in(tmp_path) == []
    prefix = re.search(r"demo keys under (smspoint-demo-[0-9a-f]+):", out).group(1)  # type: ignore[union-attr]
    assert list(redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}*")) == []
    assert (tmp_path / "demo-run" / "demo.db").exists()
    assert {p.name for p in (tmp_path / "demo-run" / "logs").iterdir()} >= {
        "simulator.log", "worker-otp.log", "worker-bulk.log", "beat.log"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_ctrl_c_stops_everything_including_a_private_redis_and_flower(tmp_path):
    """With no Redis at REDIS_URL the demo starts its own (AOF on); Flower asks for the printed password;
    it stays up after the report (by default) until Ctrl-C, which stops every process it started; the
    printed command then reads the demo's data with `smsdispatch report`."""
    env = clean_env(REDIS_URL="redis://127.0.0.1:9/0")
    argv = demo_argv("--messages", "200", "--timeout", "180")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any("press Ctrl-C" in line for line in lines):
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        out = "".join(lines)
        assert "private redis-server at redis://127.0.0.1:" in out
        url, password = re.search(r"flower\s+(http://127\.0\.0\.1:\d+/)\s+user demo\s+password (\S+)",
                                  out).groups()  # type: ignore[union-attr]
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("demo", password), timeout=10).status_code == 200
        assert len(processes_in(tmp_path)) >= 7  # redis, simulator, workers (and pools), beat, flower, api
        curl = re.search(r"try it\s+(curl .*)$", out, flags=re.MULTILINE).group(1)  # type: ignore[union-attr]
        sent = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0 and '"state":"queued"' in sent.stdout, sent.stdout + sent.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    out = "".join(lines)
    assert "stopping: api, flower, beat, worker-bulk, worker-otp, simulator, redis" in out
    assert "nothing left running" in out
    assert processes_in(tmp_path) == []
    assert any((tmp_path / "demo-run" / "redis").iterdir())  # the AOF
    hint = re.search(r"  (DATABASE_URL=(\S+)) smsdispatch report", out)
    assert hint, out[-2000:]
    report = subprocess.run([sys.executable, "-m", "dispatcher.cli", "report", "--json"], cwd=tmp_path,
                            env={**env, "DATABASE_URL": hint.group(2)}, capture_output=True, text=True,
                            timeout=60)
    assert report.returncode == 0, report.stderr
    assert 0 < json.loads(report.stdout)["total"] <= 200
