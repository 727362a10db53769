"""The README's PHP (curl) example for the HTTP API, run with ``php`` exactly as written (only the URL and
the key placeholder replaced) against the API served on loopback: it prints the queued id, the message is
in the database, and running it again (same Idempotency-Key) prints the same id.

Skipped locally, with the reason, when ``php`` or its curl module is missing; in CI (``CI`` set, where
.ci/system-deps.sh installs php-cli and php-curl) that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dispatcher.db import reading
from dispatcher.store import get_message
from tests.fixtures.httpapi import ApiServer

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Enqueue from any language: the HTTP API"
URL = "http://127.0.0.1:8080"
KEY = "smsd_your_key"


def readme_php() -> str:
    """The one ```php block of the README's HTTP API section."""
    text = README.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    (block,) = re.findall(r"```php\n(.*?)```", section, flags=re.DOTALL)
    return block


@pytest.fixture(scope="module")
def php() -> str:
    """The php binary with its curl module (skip locally, fail in CI, when missing)."""
    binary = shutil.which("php")
    missing = "php is not installed (apt-get install php-cli php-curl)" if binary is None else None
    if binary is not None:
        probe = subprocess.run([binary, "-r", "exit(function_exists('curl_init') ? 0 : 3);"],
                               capture_output=True, timeout=30)
        if probe.returncode != 0:
            missing = "php's curl module is missing (apt-get install php-curl)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    assert binary is not None
    return binary


def test_readme_php_example_enqueues(php: str, api: ApiServer, tmp_path: Path) -> None:
    """The README's PHP example prints 'queued as <id>' (202, then 200 with the same id on a rerun)."""
    source = readme_php()
    assert source.count(URL) == 1 and source.count(KEY) == 1
    key = api.key("php")
    script = tmp_path / "send.php"
    script.write_text(source.replace(URL, api.base_url).replace(KEY, key))
    env = {k: v for k, v in os.environ.items() if k != "SMSDISPATCH_API_KEY"}
    runs = [subprocess.run([php, str(script)], capture_output=True, text=True, timeout=30, env=env)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (re.fullmatch(r"queued as ([0-9a-f]{32})\n", run.stdout) for run in runs)
    assert first and second and first.group(1) == second.group(1), [r.stdout for r in runs]
    with reading(api.ctx.engine) as conn:
        row = get_message(conn, first.group(1))
    assert row is not None and row.idempotency_key == "payment-12" and row.number.endswith("9954654365")


def test_readme_php_example_reports_refusals(php: str, api: ApiServer, tmp_path: Path) -> None:
    """With a wrong key the example exits 1 and prints the problem's detail on stderr."""
    script = tmp_path / "send.php"
    script.write_text(readme_php().replace(URL, api.base_url))
    env = {k: v for k, v in os.environ.items() if k != "SMSDISPATCH_API_KEY"}
    run = subprocess.run([php, str(script)], capture_output=True, text=True, timeout=30, env=env)
    assert run.returncode == 1 and run.stderr.strip() == "refused (401): unknown API key", run.stderr
