"""What every command shares: the lazily built Settings / Context / Dispatcher, consoles, output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperOption

from ..api import Dispatcher
from ..context import Context
from ..errors import ValidationError
from ..settings import Settings

#: Results go to stdout (scripts read them); progress, notes and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _flag_type_hidden(display: Any) -> Any:
    """Help shows an on/off flag as just its name: typer >= 0.2x prints a ``<bool>`` type after it, which
    reads as if the flag took a value."""

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else display(self, ctx)  # type: ignore[no-any-return]

    return display_type_rich


TyperOption.display_type_rich = _flag_type_hidden(TyperOption.display_type_rich)  # type: ignore[method-assign]


class CliState:
    """Built on first use, so ``--help`` and commands that need no settings work with a broken env."""

    #: The state of the command running in this process (for error messages that name a URL)
    current: CliState | None = None

    def __init__(self) -> None:
        CliState.current = self

    @classmethod
    def built_settings(cls) -> Settings | None:
        """The running command's settings, if it got as far as building them."""
        cur = cls.current
        return cur.__dict__.get("settings") if cur is not None else None

    @cached_property
    def settings(self) -> Settings:
        return Settings()

    @cached_property
    def ctx(self) -> Context:
        return Context(self.settings)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.ctx)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = ctx.find_root().obj = CliState()
    return obj


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def print_json(data: Any) -> None:
    """One JSON document on stdout (plain write: no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def parse_when(text: str | None, tz: str) -> datetime | None:
    """An ISO date-time; without an offset it is read in the configured time zone (``TIMEZONE``)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError("send_at", f"{text!r} is not an ISO date-time such as 2025-01-31T09:30+05:30"
                              ) from exc
    return when if when.utcoffset() is not None else when.replace(tzinfo=ZoneInfo(tz))


def fmt_time(value: datetime | None, tz: str) -> str:
    """A timestamp in the configured time zone, to the second."""
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def fmt_seconds(value: float | int | None) -> str:
    if value is None:
        return "-"
    v = float(value)
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


WIDE_HELP = "Print tables at their full width, even past the terminal's (nothing folded)."
#: Wide enough for any table this CLI prints on one line per row.
UNLIMITED = 100_000


def id_column(table: Table, header: str, values: list[str]) -> None:
    """A column of ids operators copy: never truncated nor wrapped (the other columns fold instead)."""
    table.add_column(header, no_wrap=True, overflow="ignore", min_width=max([len(header), *map(len, values)]))


def print_table(table: Table, wide: bool = False) -> None:
    """A table on stdout: within the terminal's width, or with ``wide`` at its natural width (a console of
    its own: ``print(width=...)`` cannot go past the terminal's)."""
    target = Console(highlight=False, width=UNLIMITED, force_terminal=out.is_terminal) if wide else out
    target.print(table, crop=False)
