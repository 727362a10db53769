"""The migrations and the models describe one schema: a database brought to head by the migrations has
every table, column, index and constraint the models declare (what alembic's autogenerate would still
write is empty), on SQLite and on PostgreSQL; and every migration steps down and back up again.

A model changed without its migration (or a migration written by hand that differs from the model) is
caught here instead of in production, where the deployment runs only the migrations."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from dispatcher import models  # noqa: F401  (registers the tables)
from dispatcher.db import alembic_config, upgrade


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def _differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True,
                                                        "compare_server_default": False})
            return list(compare_metadata(mc, SQLModel.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _unexplained(url: str) -> list[Any]:
    """The differences, less the one the models explain: on SQLite, idempotency keys are kept unique by the
    table's UNIQUE constraint from migration 0001 (it allows many NULLs, as the model's partial index
    does; SQLite cannot drop a constraint without rebuilding the table), checked here to be there."""
    diffs = _differences(url)
    if url.startswith("sqlite"):
        engine = create_engine(url)
        try:
            uniques = inspect(engine).get_unique_constraints("message")
        finally:
            engine.dispose()
        assert [u["column_names"] for u in uniques] == [["idempotency_key"]]
        diffs = [d for d in diffs if not (d[0] == "add_index" and d[1].name == "ix_message_idempotency")]
    return diffs


def test_migrated_schema_is_the_models_schema(url: str) -> None:
    upgrade(url)
    assert _tables(url) == set(SQLModel.metadata.tables)
    assert _unexplained(url) == []


def test_every_migration_steps_down_and_up(url: str) -> None:
    cfg = alembic_config(url)
    revisions = [r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()]  # head first
    assert len(revisions) >= 7
    upgrade(url)
    for rev in revisions:  # one step down at a time, then back up to head
        command.downgrade(cfg, "-1")
        command.upgrade(cfg, rev)
        command.downgrade(cfg, "-1")
    assert _tables(url) == set()
    upgrade(url)
    assert _unexplained(url) == []
