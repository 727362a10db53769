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
