"""Reading a CSV of recipients for ``send-file``: number, text, or template values rendered into a text.

The file has a header row. ``number`` (or ``to``) is required. If there is a ``text`` column it is the
message; otherwise every other column (but the key column), in header order, is one ``{#var#}`` value of
the template text. Rows that cannot even be rendered are rejected here (with their row index); the rest
are validated by the dispatcher when they are enqueued.

Every row has a stable idempotency key, so running the same file again enqueues nothing twice: the value
of ``--key-column`` when given, otherwise ``file:<digest of the file's bytes>:<row index>`` (an edited file
is a new file: give a key column to keep keys across edits).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..api import Dispatcher
from ..bulkrows import FIELD as KEY_FIELD
from ..errors import RowError, TemplateMismatch, ValidationError
from ..templates import render_template, variable_count

NUMBER_COLUMNS = ("number", "to", "mobile", "phone")


@dataclass(frozen=True)
class Entry:
    """One data row ready to enqueue: its 0-based index in the file, recipient, text and idempotency key."""

    index: int
    number: str
    text: str
    key: str


def rejects_path(path: Path) -> Path:
    """Where a file's rejected rows go by default: ``notices.csv`` -> ``notices.rejects.csv``."""
    return path.with_name(f"{path.stem}.rejects.csv")


def file_digest(path: Path) -> str:
    """A digest of the file's bytes (part of every generated key: the same file gives the same keys)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:24]


def row_key(digest: str, index: int) -> str:
    """The idempotency key of data row ``index`` of the file with ``digest``."""
    return f"file:{digest}:{index}"


@dataclass
class CsvSource:
    """Yields (number, text) rows (or ``entries()`` with their keys); remembers each one's file row."""

    path: Path
    template: str | None = None
    key_column: str | None = None
    positions: list[int] = field(default_factory=list)
    rejects: list[RowError] = field(default_factory=list)
    rows_read: int = 0

    def columns(self) -> tuple[str, str | None, list[str], str | None]:
        """(number column, text column or None, value columns, key column or None); raises
        ValidationError on a bad header."""
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise ValidationError("file", f"{self.path} is empty; expected a header row such as number,text")
        names = [h.strip() for h in header]
        lowered = [n.lower() for n in names]
        number = next((names[lowered.index(c)] for c in NUMBER_COLUMNS if c in lowered), None)
        if number is None:
            raise ValidationError("file", f"{self.path} has no 'number' column (header: {','.join(names)})")
        text = names[lowered.index("text")] if "text" in lowered else None
        key = None
        if self.key_column is not None:
            if self.key_column.strip().lower() not in lowered:
                raise ValidationError("key-column", f"{self.path} has no column {self.key_column!r} "
                                                    f"(header: {','.join(names)})")
            key = names[lowered.index(self.key_column.strip().lower())]
            if key in (number, text):
                raise ValidationError("key-column", f"{key!r} is the number or text column; name a column "
                                                    "that identifies each row (an order id, say)")
        values = [n for n in names if n not in (number, text, key)]
        if text is None:
            if self.template is None:
                raise ValidationError("file", "the file has no 'text' column: give --template (or a template "
                                              "id the catalogue knows) to render the other columns into it")
            need = variable_count(self.template)
            if len(values) != need:
                raise ValidationError("file", f"the template has {need} variable(s) but the file has "
                                              f"{len(values)} value column(s): {','.join(values) or '-'}")
        return number, text, values, key

    def count(self) -> int:
        """Data rows in the file (for the progress bar)."""
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            return max(0, sum(1 for row in csv.reader(fh) if row) - 1)  # blank lines are no rows (DictReader)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for entry in self.entries():
            yield entry.number, entry.text

    def entries(self) -> Iterator[Entry]:
        """Every row that could be rendered, with its key; the others go to ``rejects``."""
        number_col, text_col, value_cols, key_col = self.columns()
        digest = file_digest(self.path) if key_col is None else ""
        template = self.template or ""
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, skipinitialspace=True)
            reader.fieldnames = [f.strip() for f in (reader.fieldnames or [])]
            for index, row in enumerate(reader):
                self.rows_read = index + 1
                number = (row.get(number_col) or "").strip()
                key = (row.get(key_col) or "").strip() if key_col is not None else row_key(digest, index)
                if not key:
                    self.rejects.append(RowError(index, "key-column", f"{key_col!r} is empty: every row "
                                                                      "needs its own key"))
                    continue
                if text_col is not None:
                    text = row.get(text_col) or ""
                else:
                    try:
                        text = render_template(template, [(row.get(c) or "").strip() for c in value_cols])
                    except TemplateMismatch as exc:
                        self.rejects.append(RowError(index, "template values", exc.reason))
                        continue
                self.positions.append(index)
                yield Entry(index, number, text, key)

    def all_rejects(self, bulk_rejects: list[RowError]) -> list[RowError]:
        """This file's rejects and send_bulk's (re-indexed to file rows), in file order."""
        mapped = [RowError(self.positions[r.index], r.field, r.reason) for r in bulk_rejects]
        return sorted(self.rejects + mapped, key=lambda r: r.index)


def write_rejects(path: Path, rejects: list[RowError]) -> None:
    """index (0-based data row), line (in the file, header = 1), field, reason."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "line", "field", "reason"])
        for r in rejects:
            w.writerow([r.index, r.index + 2, r.field, r.reason])


@dataclass
class FileResult:
    """What a send-file run did: new ids, rows an earlier run had already enqueued, and rejects."""

    enqueued: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    rejects: list[RowError] = field(default_factory=list)


def enqueue_file(dispatcher: Dispatcher, source: CsvSource, on_row: Callable[[int], None], *, channel: str,
                 sender_id: str, template_id: str, send_at: datetime | None) -> FileResult:
    """Enqueue every row with its idempotency key in one ``send_bulk`` (skip_invalid): a row an earlier run
    enqueued is counted in ``already``, not enqueued again; a key reused with another number or text is a
    reject (field key-column)."""

    def rows() -> Iterator[dict[str, str]]:
        for e in source.entries():
            yield {"number": e.number, "text": e.text, "idempotency_key": e.key}
            on_row(e.index + 1)

    result = dispatcher.send_bulk(rows(), channel=channel, sender_id=sender_id, template_id=template_id,
                                  send_at=send_at, skip_invalid=True)
    already = [d.id for d in result.duplicates]
    known = set(already)
    out = FileResult(enqueued=[m for m in result if m not in known], already=already)
    out.rejects = source.all_rejects([RowError(r.index, "key-column" if r.field == KEY_FIELD else r.field,
                                               r.reason) for r in result.rejects])
    return out
