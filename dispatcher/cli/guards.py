"""Guard commands: ``optout add | remove | list | import | export``, ``whitelist add | remove | list |
import | export`` and ``breaker list | release``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from .. import breaker, optout, whitelist
from .common import err, fmt_time, out, print_json, state

JSON_HELP = "Print the result as JSON (for scripts)."
CHANNELS_HELP = "Channels covered: promotional (default), transactional, otp, a comma list, or all."

optout_app = typer.Typer(help="The suppression list: numbers that opted out of a channel.",
                         no_args_is_help=True)


@optout_app.command("add")
def add(ctx: typer.Context, number: str = typer.Argument(..., help="The number that opted out."),
        channels: str = typer.Option("promotional", "--channels", "-c", help=CHANNELS_HELP),
        reason: str = typer.Option("", "--reason", help="Why (e.g. 'replied STOP')."),
        source: str = typer.Option("cli", "--by", help="Who recorded it.")) -> None:
    """Opt a number out of channels (default promotional).

    Example:

        smsdispatch optout add 9876543210 --reason "replied STOP"
    """
    st = state(ctx)
    added = optout.opt_out(number, channels, reason, source, ctx=st.ctx)
    out.print(f"opted out: {added} new channel(s)")


@optout_app.command("remove")
def remove(ctx: typer.Context, number: str = typer.Argument(..., help="The number that opted back in."),
           channels: str = typer.Option("promotional", "--channels", "-c", help=CHANNELS_HELP)) -> None:
    """Remove a number's opt-outs (opt back in).

    Example:

        smsdispatch optout remove 9876543210 --channels all
    """
    removed = optout.opt_in(number, channels, ctx=state(ctx).ctx)
    out.print(f"removed {removed} opt-out(s)")


@optout_app.command("list")
def list_(ctx: typer.Context,
          channel: str | None = typer.Option(None, "--channel", help="Only this channel."),
          number: str | None = typer.Option(None, "--number", help="Only this number."),
          limit: int = typer.Option(100, "--limit", min=1, help="At most this many rows."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List opt-outs (number, channel, when, why, who)."""
    st = state(ctx)
    rows = optout.list_opt_outs(st.ctx, channel=channel, number=number, limit=limit)
    if as_json:
        print_json(rows)
        return
    t = Table()
    for col in ("number", "channel", "since", "reason", "by"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.number, r.channel, fmt_time(r.created_at, st.settings.timezone), r.reason or "-",
                  r.source or "-")
    out.print(t)


@optout_app.command("import")
def import_(ctx: typer.Context,
            path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                        help="CSV with a header: number[,channels][,reason]"),
            source: str = typer.Option("", "--by", help="Who recorded them (default: the file name).")
            ) -> None:
    """Import opt-outs from a CSV; all or nothing (any invalid row refuses the file).

    Example:

        smsdispatch optout import stops.csv
    """
    res = optout.import_csv(state(ctx).ctx, path, source)
    out.print(f"imported {res.rows} row(s): {res.added} new opt-out(s)")


@optout_app.command("export")
def export(ctx: typer.Context,
           path: Path | None = typer.Argument(None, help="Where to write the CSV (default: stdout)."),
           channel: str | None = typer.Option(None, "--channel", help="Only this channel.")) -> None:
    """Export every opt-out as CSV (number,channel,created_at,reason,source)."""
    st = state(ctx)
    if path is None:
        optout.export_csv(st.ctx, sys.stdout, channel)
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        n = optout.export_csv(st.ctx, fh, channel)
    err.print(f"exported {n} opt-out(s) to {path}")


breaker_app = typer.Typer(help="Breakers that stopped a sender id / template after bad outcomes.",
                          no_args_is_help=True)


@breaker_app.command("list")
def breaker_list(ctx: typer.Context,
                 show_all: bool = typer.Option(False, "--all", help="Released breakers too."),
                 as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List open breakers (sender id, template, since, why)."""
    st = state(ctx)
    rows = breaker.breakers(st.ctx, open_only=not show_all)
    if as_json:
        print_json(rows)
        return
    t = Table()
    for col in ("sender id", "template", "state", "opened", "why"):
        t.add_column(col)
    for r in rows:
        opened = fmt_time(r["opened_at"], st.settings.timezone)
        t.add_row(r["sender_id"], r["template_id"], r["state"], opened, r["reason"] or "-")
    out.print(t)


@breaker_app.command("release")
def breaker_release(ctx: typer.Context,
                    sender_id: str = typer.Argument(..., help="The group's sender id."),
                    template_id: str = typer.Argument(..., help="The group's template id."),
                    by: str = typer.Option("cli", "--by", help="Who released it.")) -> None:
    """Close a breaker and queue its held messages again (after fixing the cause).

    Example:

        smsdispatch breaker release SMSPNT 1207161000000000002
    """
    n = breaker.release(state(ctx).ctx, sender_id, template_id, by)
    out.print(f"released: {n} message(s) queued again")


whitelist_app = typer.Typer(help="The DLT whitelist of URL prefixes and call-back numbers kept in the "
                            "database (every process reads it again within DLT_WHITELIST_RELOAD_S).",
                            no_args_is_help=True)
KIND_HELP = "url (a URL prefix such as pay.example.in/t) or cbn (a call-back number)."


@whitelist_app.command("add")
def whitelist_add(ctx: typer.Context, kind: str = typer.Argument(..., help=KIND_HELP),
                  entry: str = typer.Argument(..., help="The URL prefix or number."),
                  note: str = typer.Option("", "--note", help="Why (e.g. the DLT registration)."),
                  by: str = typer.Option("cli", "--by", help="Who added it.")) -> None:
    """Whitelist a URL prefix or call-back number.

    Example:

        smsdispatch whitelist add url pay.smspoint.in/i --note "payment links"
    """
    added = whitelist.add(kind, entry, note, by, ctx=state(ctx).ctx)
    out.print(f"{kind} {entry}: {'added' if added else 'already listed'}")


@whitelist_app.command("remove")
def whitelist_remove(ctx: typer.Context, kind: str = typer.Argument(..., help=KIND_HELP),
                     entry: str = typer.Argument(..., help="The URL prefix or number.")) -> None:
    """Take an entry off the database's whitelist (entries from settings or the file stay)."""
    removed = whitelist.remove(kind, entry, ctx=state(ctx).ctx)
    out.print(f"{kind} {entry}: {'removed' if removed else 'was not listed'}")
    if not removed:
        raise typer.Exit(1)


@whitelist_app.command("list")
def whitelist_list(ctx: typer.Context,
                   kind: str | None = typer.Option(None, "--kind", help="Only url or only cbn entries."),
                   as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the database's whitelist (kind, entry, since, by, note)."""
    st = state(ctx)
    rows = whitelist.entries(st.ctx, kind)
    if as_json:
        print_json(rows)
        return
    t = Table()
    for col in ("kind", "entry", "since", "by", "note"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.kind, r.entry, fmt_time(r.created_at, st.settings.timezone), r.source or "-",
                  r.note or "-")
    out.print(t)


@whitelist_app.command("import")
def whitelist_import(ctx: typer.Context,
                     path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                                 help="A file of 'url X' / 'cbn N' lines, # comments."),
                     source: str = typer.Option("", "--by", help="Who added them (default: the file name).")
                     ) -> None:
    """Add a whitelist file's entries; all or nothing (any invalid line refuses the file).

    Example:

        smsdispatch whitelist import whitelist.txt
    """
    res = whitelist.import_file(state(ctx).ctx, path, source)
    out.print(f"imported {res.rows} entr(ies): {res.added} new")


@whitelist_app.command("export")
def whitelist_export(ctx: typer.Context,
                     path: Path | None = typer.Argument(None, help="Where to write (default: stdout).")
                     ) -> None:
    """Write the database's whitelist in the file format ('whitelist import' reads it back)."""
    st = state(ctx)
    if path is None:
        whitelist.export(st.ctx, sys.stdout)
        return
    with path.open("w", encoding="utf-8") as fh:
        n = whitelist.export(st.ctx, fh)
    err.print(f"exported {n} entr(ies) to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(optout_app, name="optout")
    app.add_typer(whitelist_app, name="whitelist")
    app.add_typer(breaker_app, name="breaker")
