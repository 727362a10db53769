"""Shared test set-up: real services (Redis, PostgreSQL, SQLite) and the gateway simulator.

Fixtures live in tests/fixtures/; each test module says in its docstring what it shows.
"""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.simulator",
    "tests.fixtures.pipeline",
    "tests.fixtures.proxy",
    "tests.fixtures.webhook",
    "tests.fixtures.httpapi",
]


from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: Each test directory is a marker (``pytest -m unit``, ``-m "not chaos"``): set here once, by directory.
KINDS = ("unit", "property", "integration", "chaos", "security", "deploy")
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(_TESTS).parts
        if parts and parts[0] in KINDS:
            item.add_marker(getattr(pytest.mark, parts[0]))
