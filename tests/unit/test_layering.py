"""The layering that import-linter cannot see: SQL is written only in the storage package.

Outside dispatcher/store (and the table declarations, the engine module and the migrations), modules may
name SQLAlchemy's connection and engine types, its URL parser and its exceptions, never a statement
builder: every query has one owner, a named function in dispatcher/store.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "dispatcher"
#: Where SQL may be written.
STORAGE = ("store", "models.py", "db.py", "migrations", "simulator")
#: What other modules may import from SQLAlchemy: types, exceptions, the URL parser; no statement builders.
ALLOWED = {"Connection", "Engine", "IntegrityError", "SQLAlchemyError", "OperationalError", "make_url"}


def sqlalchemy_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlalchemy" for a in node.names):
            names.add("sqlalchemy")
    return names


def test_no_sql_outside_the_storage_package() -> None:
    """No module outside dispatcher/store imports a statement builder (select, update, text...)."""
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in STORAGE:
            continue
        extra = sqlalchemy_names(path) - ALLOWED
        if extra:
            offenders[str(rel)] = sorted(extra)
    assert offenders == {}


def test_the_check_sees_a_statement_builder(tmp_path: Path) -> None:
    """The scan finds ``from sqlalchemy import select`` (the check can fail)."""
    module = tmp_path / "m.py"
    module.write_text("from sqlalchemy import Connection, select\nimport sqlalchemy.sql\n")
    assert sqlalchemy_names(module) - ALLOWED == {"select", "sqlalchemy"}


def test_whole_rows_have_their_tables_columns() -> None:
    """MessageRow and BatchRow declare exactly their tables' columns, in order (a new column is read)."""
    from dataclasses import fields

    from dispatcher.models import BATCH, MESSAGE
    from dispatcher.store import BatchRow, MessageRow

    assert [f.name for f in fields(MessageRow)] == [c.name for c in MESSAGE.columns]
    assert [f.name for f in fields(BatchRow)] == [c.name for c in BATCH.columns]
