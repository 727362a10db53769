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

from ..api import Dispatcher
from ..context import Context
from ..errors import ValidationError
from ..settings import Settings

#: Results go to stdout (scripts read them); progress, notes and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CliState:
    """Built on first use, so ``--help`` and commands that need no settings work with a broken env."""

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
