"""Security fixtures: a distinctive API key and Redis password, a password-protected private redis-server
(``redis_url`` for every stack here), and a simulator whose whole output is kept in a file to be searched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dispatcher.simulator import SimulatorProcess
from dispatcher.simulator.server import ANNOUNCE

from ..chaos.redis_server import RedisServer, require_redis_server
from ..fixtures.simulator import TEST_SEED

ROOT = Path(__file__).resolve().parents[2]
#: Distinctive secrets: any appearance of them in output is a leak, never a coincidence.
API_KEY = f"sk-LEAKCANARY-{uuid.uuid4().hex}"
REDIS_PASSWORD = f"rp-LEAKCANARY-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only that requires REDIS_PASSWORD."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(private_redis: RedisServer) -> str:
    """Overrides the shared-Redis fixture: stacks here use redis://:password@host:port/0."""
    return private_redis.url


@pytest.fixture
def simulator_output(tmp_path: Path) -> Path:
    return tmp_path / "simulator.out"


@pytest.fixture
def simulator(simulator_output: Path) -> Iterator[SimulatorProcess]:
    """A simulator accepting only API_KEY, its stdout and stderr written to ``simulator_output``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with open(simulator_output, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "dispatcher.simulator", "--host", "127.0.0.1",
                                 "--port", "0", "--api-key", API_KEY, "--seed", str(TEST_SEED)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True)
    deadline = time.monotonic() + 20
    base = None
    while base is None and time.monotonic() < deadline and proc.poll() is None:
        for line in simulator_output.read_text().splitlines():
            if line.startswith(ANNOUNCE):
                base = line[len(ANNOUNCE):].strip()
        time.sleep(0.05)
    if base is None:
        proc.kill()
        pytest.fail(f"simulator did not start: {simulator_output.read_text()[-2000:]}")
    sim = SimulatorProcess(proc, base[: -len("/api/v1")], API_KEY)  # type: ignore[arg-type]
    while not requests.get(f"{sim.root_url}/_sim/health", timeout=2).ok:
        time.sleep(0.05)
    yield sim
    sim.stop()
