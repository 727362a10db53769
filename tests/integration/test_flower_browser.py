"""Flower in a real browser: a Celery worker and Flower started through ``smsdispatch worker`` / ``smsdispatch
flower`` (basic auth), messages running through the pipeline, and Debian's headless Chromium reading the
dashboard. The screenshots are kept under tests/artifacts/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dispatcher.demo.procs import free_port
from tests.fixtures.pipeline import ROOT, WorkerProc

from .pipeline_helpers import OTP, TXN, number, otp_text, txn_text

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,900", "--virtual-time-budget=6000"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps "
                                                         "installs Debian's chromium package)")


def chromium(tmp: Path, url: str, *action: str) -> str:
    """Run headless Chromium once with a fresh profile; returns stdout (the DOM for --dump-dom)."""
    profile = tmp / f"chrome-{time.monotonic_ns()}"
    proc = subprocess.run([str(CHROMIUM), *CHROME_FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def start(stack, name: str, *args: str, env: dict[str, str]) -> WorkerProc:  # type: ignore[no-untyped-def]
    log = stack.tmp / f"{name}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", *args], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    p = WorkerProc(name, proc, log)
    stack.procs.append(p)  # stopped (process group) by the fixture
    return p


def wait_for(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the browser is the point here
def test_flower_shows_the_worker_and_the_project_tasks(make_stack, tmp_path):
    """Headless Chromium, logged in with basic auth, sees the worker and send_batch / collect_lane tasks."""
    stack = make_stack()
    user, password = "ops", "flower-test-pw"
    env = {**stack.env, "FLOWER_USER": user, "FLOWER_PASSWORD": password}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    worker = start(stack, "worker", "worker", "--role", "all", "--concurrency", "2", "--name", "browser@%h",
                   "--", "--without-gossip", env=env)
    start(stack, "flower", "flower", "--address", "127.0.0.1", "--port", str(port), env=env)
    worker.wait_ready()
    wait_for(lambda: requests.get(f"{base}/healthcheck", timeout=2).ok, 60, "Flower to answer")
    assert requests.get(f"{base}/", timeout=5).status_code == 401  # basic auth is on
    auth = (user, password)

    def workers() -> list[str]:
        return list(requests.get(f"{base}/api/workers", params={"refresh": 1}, auth=auth, timeout=10).json())

    wait_for(lambda: any(w.startswith("browser@") for w in workers()), 60, "Flower to see the worker")

    for i in range(8):
        stack.dispatcher.send_sms(number(i), txn_text(i), **TXN)
    for i in range(3):
        stack.dispatcher.send_sms(number(100 + i), otp_text(i), **OTP)
    stack.wait_settled(11)

    def task_names() -> set[str]:
        tasks = requests.get(f"{base}/api/tasks", auth=auth, timeout=10).json()
        return {t["name"] for t in tasks.values()}

    wait_for(lambda: {"smspoint.send_batch", "smspoint.collect_lane"} <= task_names(), 30, "task events")

    authed = f"http://{user}:{password}@127.0.0.1:{port}"
    workers_dom = chromium(tmp_path, f"{authed}/workers", "--dump-dom")
    assert "browser@" in workers_dom and "Online" in workers_dom
    tasks_dom = chromium(tmp_path, f"{authed}/tasks", "--dump-dom")
    assert "smspoint.send_batch" in tasks_dom and "smspoint.collect_lane" in tasks_dom
    assert "browser@" in tasks_dom
    assert "Payment of Rs" not in tasks_dom  # task arguments carry ids and counts, never texts

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for page in ("workers", "tasks"):
        shot = ARTIFACTS / f"flower-{page}.png"
        shot.unlink(missing_ok=True)
        chromium(tmp_path, f"{authed}/{page}", f"--screenshot={shot}")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    anonymous = chromium(tmp_path, f"{base}/tasks", "--dump-dom")
    assert "smspoint.send_batch" not in anonymous  # without credentials Flower shows nothing
