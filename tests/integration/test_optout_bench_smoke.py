"""The opt-out benchmark (python -m bench.optout_bench --smoke) runs both sides and checks its rejects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.services import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


def test_optout_bench_smoke_measures_both_sides(redis_url: str, pg_available: None) -> None:
    """Both sides enqueue every row; the opted-out rows (and only they) are rejected; a ratio is printed."""
    proc = subprocess.run([sys.executable, "-m", "bench.optout_bench", "--smoke", "--redis-url", redis_url,
                           "--pg-url", PG_ADMIN_URL], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"without opt-outs: 300 rows .* 0 rejected \(expected 0\)", proc.stdout), proc.stdout
    assert re.search(r"with opt-outs: 300 rows .* 3 rejected \(expected 3\)", proc.stdout), proc.stdout
    ratio = float(re.search(r"ratio with/without = ([0-9.]+)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert ratio > 0
