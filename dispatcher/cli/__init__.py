"""``smsdispatch``: the operator's command line (typer + rich).

Every command explains itself with ``--help``. A user mistake (bad flag, invalid number, unreachable
Redis, a message that is not unknown...) is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click
import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from ..errors import DispatcherError
from ..where import cause, masked
from . import gateway, guards, httpapi, messages, ops, preview, services
from .common import CliState, err

HELP = """Send SMS through TheSMSPoint and operate the dispatcher.

Start here:

    smsdispatch demo               # everything, locally, on the simulator
    smsdispatch send --help        # enqueue one SMS
    smsdispatch report --since 1h  # what happened in the last hour

Settings come from the environment (and ./.env): REDIS_URL, DATABASE_URL,
SMSPOINT_BASE_URL, SMSPOINT_API_KEY, ... (see README). Add --help to any
command for what it does, with an example.
"""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _settings_error(exc: Exception) -> str:
    errors: list[dict[str, Any]] = list(getattr(exc, "errors", list)())
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ())) or 'settings'}: {e.get('msg', '')}"
             for e in errors]
    return "invalid settings: " + ("; ".join(parts) or _one_line(exc))


def explain(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception that reached the top."""
    import pydantic
    import redis
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, UsageError):
        where = exc.ctx.command_path if exc.ctx else "smsdispatch"
        sub = where.partition(" ")[2]  # the line already starts "smsdispatch: error:"
        return (f"{sub + ': ' if sub else ''}{_one_line(exc.format_message())} (see '{where} --help')",
                exc.exit_code)
    if isinstance(exc, typer.TyperException | click.ClickException):
        return _one_line(exc.format_message()), exc.exit_code
    if isinstance(exc, typer.Abort | click.Abort):
        return "aborted", 1
    if isinstance(exc, DispatcherError):
        return _one_line(exc), 1
    if isinstance(exc, UnicodeDecodeError):  # an input file that is not UTF-8 text
        return f"the file is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as CSV UTF-8", 1
    if isinstance(exc, csv.Error):
        return f"the file is not readable CSV: {_one_line(exc)}", 1
    if isinstance(exc, pydantic.ValidationError):
        return _settings_error(exc), 1
    settings = CliState.built_settings()
    if isinstance(exc, redis.RedisError):
        at = f" at {masked(settings.redis_url)}" if settings else ""
        return f"Redis{at}: {cause(exc)} (is REDIS_URL right and Redis running?)", 1
    if isinstance(exc, SQLAlchemyError):
        at = f" at {masked(settings.database_url)}" if settings else ""
        return (f"database{at}: {cause(exc)} (is DATABASE_URL right, and did you run 'smsdispatch db "
                "upgrade'?)"), 1
    if isinstance(exc, OSError):
        return _one_line(exc), 1
    raise exc


class Group(TyperGroup):
    """Runs the command non-standalone and turns whatever escapes into one line on stderr."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "smsdispatch", complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
            code = rv if isinstance(rv, int) else 0
        except NoArgsIsHelpError:  # building it printed the help already
            code = 2
        except KeyboardInterrupt:
            err.print("interrupted")
            code = 130
        except Exception as exc:  # noqa: BLE001 - explain() re-raises what is not a user-facing error
            message, code = explain(exc)
            err.print(f"smsdispatch: error: {message}", markup=False)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(cls=Group, help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]},
                  add_completion=False)


@app.callback()
def root(ctx: typer.Context,
         verbose: bool = typer.Option(False, "--verbose", "-v",
                                      help="Log what the library does (INFO) to stderr.")) -> None:
    ctx.obj = CliState()
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


for module in (messages, gateway, ops, services, httpapi, guards, preview):
    module.register(app)


def main() -> None:
    """Console script entry point (``smsdispatch``)."""
    app()


__all__ = ["app", "main"]
