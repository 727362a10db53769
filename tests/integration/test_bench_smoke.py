"""The benchmark harness at tiny sizes (``python -m bench --smoke``), so it cannot rot: every scenario writes
its JSON result with the expected keys, positive rates and its plots, and leaves no process, Redis key or
PostgreSQL database behind. It measures nothing: the real numbers come from a full run on a quiet machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import PG_ADMIN_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"scenario", "title", "config", "results", "columns", "rows", "ratios", "targets", "plots", "machine"}


def _positive(result: dict[str, Any], *paths: str) -> None:
    for path in paths:
        value: Any = result
        for part in path.split("."):
            value = value[part]
        assert isinstance(value, int | float) and value > 0, f"{path} = {value!r}"


def _leftovers(marker: str, redis_url: str) -> tuple[list[int], list[str], list[str]]:
    """Processes carrying the run's marker, and bench Redis prefixes / PostgreSQL databases that exist."""
    import psycopg
    import redis

    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    r = redis.Redis.from_url(redis_url)
    prefixes = sorted({k.decode().split(":", 1)[0] for k in r.scan_iter(match="smspt-bench-*", count=1000)})
    r.close()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'smspt_bench_%'")
        dbs = [row[0] for row in rows]
    return pids, prefixes, dbs


def _run(args: list[str], redis_url: str, marker: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMSPT_BENCH_SMOKE_MARKER": marker}
    return subprocess.run([sys.executable, "-m", *args, "--redis-url", redis_url, "--pg-url", PG_ADMIN_URL],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_every_scenario_writes_its_results_and_cleans_up(redis_url: str, pg_available: None,
                                                         tmp_path: Path) -> None:
    """python -m bench --smoke: eight JSON results with positive rates, the plots, and nothing left over."""
    marker = uuid.uuid4().hex
    _, prefixes_before, dbs_before = _leftovers(marker, redis_url)
    proc = _run(["bench", "--smoke", "--out", str(tmp_path)], redis_url, marker, timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json") if p.stem != "summary"}
    assert set(results) == {"enqueue", "end_to_end", "baseline", "limit", "otp_load", "sync", "memory_scale",
                            "http_api", "retention", "history", "encoding"}
    for r in results.values():
        assert KEYS <= r.keys(), r["scenario"]
        assert r["machine"]["cores"] and r["machine"]["postgresql"] and r["machine"]["redis"]
        assert r["plots"] and all(Path(p).stat().st_size > 0 for p in r["plots"]), r["scenario"]
        assert r["rows"]
    for db in ("postgresql", "sqlite"):
        _positive(results["enqueue"]["results"], f"{db}.bulk_rate", f"{db}.single_rate",
                  f"{db}.send_sms.p99_ms")
        _positive(results["end_to_end"]["results"], f"{db}.rate", f"{db}.latency.p99_ms")
        _positive(results["sync"]["results"], f"{db}.rate")
        _positive(results["limit"]["results"], f"db_insert_rate.{db}")
    _positive(results["baseline"]["results"], "baseline.rate", "pipeline.rate")
    _positive(results["limit"]["results"], "limit_rate", "redis_xadd_rate", "pipeline_rate",
              "single_vs_bulk_one.0ms.send-single-sms.p50_ms",
              "single_vs_bulk_one.0ms.send-bulk-sms x1.p50_ms",
              "cprofile.worker_collect_send.total_s", "cprofile.producer_send_bulk.total_s")
    _positive(results["otp_load"]["results"], "otp_under_load.n", "otp_under_load.p99_ms", "promo_rate")
    _positive(results["memory_scale"]["results"], "memory.rate", "memory.peak_process_hwm_mb")
    _positive(results["http_api"]["results"], "http_single.rate", "http_single.p99_ms", "lib_single.rate",
              "lib_single.p99_ms", "http_bulk.rate", "lib_bulk.rate")
    _positive(results["history"]["results"], "empty.e2e_rate", "history.e2e_rate", "history.send_sms.p99_ms")
    _positive(results["encoding"]["results"], "per_message.json.client_us", "per_message.form.sim_us")
    assert all(p["rate"] > 0 for p in results["memory_scale"]["results"]["sweep"])
    assert results["baseline"]["ratios"] and results["limit"]["ratios"]
    pids, prefixes, dbs = _leftovers(marker, redis_url)
    assert pids == [], "processes the benchmark started are still running"
    assert set(prefixes) <= set(prefixes_before), f"Redis keys left: {set(prefixes) - set(prefixes_before)}"
    assert set(dbs) <= set(dbs_before), f"databases left: {set(dbs) - set(dbs_before)}"


def test_bench_sync_smoke_runs_on_its_own(redis_url: str, pg_available: None) -> None:
    """python -m bench.bench_sync --smoke (scenario 6's measurement, runnable alone) syncs every message."""
    proc = _run(["bench.bench_sync", "--smoke"], redis_url, uuid.uuid4().hex, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rows/s" in proc.stdout and "postgresql" in proc.stdout and "sqlite" in proc.stdout


def test_db_steps_measures_every_step_on_both_databases(redis_url: str, pg_available: None) -> None:
    """python -m bench.db_steps (the database cost of each step of a message) runs and cleans up."""
    dbs_before = _leftovers(uuid.uuid4().hex, redis_url)[2]
    cmd = [sys.executable, "-m", "bench.db_steps", "--rows", "3000", "--pg-url", PG_ADMIN_URL]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    per_row: dict[str, list[float]] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if not line.startswith(" ") and ":" in line:
            current = line.split(":", 1)[0]
        elif "us/row" in line:
            per_row.setdefault(current, []).append(float(line.split("us/row")[0].split()[-1]))
    assert set(per_row) == {"postgresql", "sqlite"}, proc.stdout
    assert all(len(v) == 6 and all(x > 0 for x in v) for v in per_row.values()), proc.stdout
    assert set(_leftovers(uuid.uuid4().hex, redis_url)[2]) <= set(dbs_before), "a scratch database was left"
