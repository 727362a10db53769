"""Installing the project: no setuptools deprecation box (an SPDX license string), and `make demo` installs
the runtime only, not the test and benchmark tools."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    """A `license = {text = ...}` table makes setuptools >= 77 print a deprecation box on every install."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in data["build-system"]["requires"])


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_runtime_only(tmp_path: Path) -> None:
    """`make -n demo` on a fresh checkout installs `-e .` (no extras); `make -n test` installs the extras."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    demo = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, check=True)
    lines = demo.stdout.splitlines()
    installs = [line for line in lines if "pip install" in line and "-c requirements" in line]
    assert installs and all(line.rstrip().endswith("-e .") for line in installs), demo.stdout
    assert "dev" not in "".join(installs) and "bench" not in "".join(installs)
    test = subprocess.run(["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "-e '.[dev,bench]'" in test.stdout
