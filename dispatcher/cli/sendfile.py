"""Reading a CSV of recipients for ``send-file``: number, text, or template values rendered into a text.

The file has a header row. ``number`` (or ``to``) is required. If there is a ``text`` column it is the
message; otherwise every other column, in header order, is one ``{#var#}`` value of the template text.
Rows that cannot even be rendered are rejected here (with their row index); the rest are validated by
``Dispatcher.send_bulk``, whose rejects are mapped back to the file's row indexes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RowError, TemplateMismatch, ValidationError
from ..templates import render_template, variable_count

NUMBER_COLUMNS = ("number", "to", "mobile", "phone")


@dataclass
class CsvSource:
    """Yields (number, text) for send_bulk; remembers which file row each yielded row came from."""

    path: Path
    template: str | None = None
    positions: list[int] = field(default_factory=list)
    rejects: list[RowError] = field(default_factory=list)
    rows_read: int = 0

    def columns(self) -> tuple[str, str | None, list[str]]:
        """(number column, text column or None, value columns); raises ValidationError on a bad header."""
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
        values = [n for n in names if n not in (number, text)]
        if text is None:
            if self.template is None:
                raise ValidationError("file", "the file has no 'text' column: give --template (or a template "
                                              "id the catalogue knows) to render the other columns into it")
            need = variable_count(self.template)
            if len(values) != need:
                raise ValidationError("file", f"the template has {need} variable(s) but the file has "
                                              f"{len(values)} value column(s): {','.join(values) or '-'}")
        return number, text, values

    def count(self) -> int:
        """Data rows in the file (for the progress bar)."""
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            return max(0, sum(1 for row in csv.reader(fh) if row) - 1)  # blank lines are no rows (DictReader)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        number_col, text_col, value_cols = self.columns()
        template = self.template or ""
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, skipinitialspace=True)
            reader.fieldnames = [f.strip() for f in (reader.fieldnames or [])]
            for index, row in enumerate(reader):
                self.rows_read = index + 1
                number = (row.get(number_col) or "").strip()
                if text_col is not None:
                    text = row.get(text_col) or ""
                else:
                    try:
                        text = render_template(template, [(row.get(c) or "").strip() for c in value_cols])
                    except TemplateMismatch as exc:
                        self.rejects.append(RowError(index, "template values", exc.reason))
                        continue
                self.positions.append(index)
                yield number, text

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
