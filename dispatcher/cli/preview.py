"""``estimate``: what a CSV would cost and what it would refuse, before anything is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from .common import err, out, print_json, state
from .messages import CHANNEL_HELP, JSON_HELP, SENDER_HELP, TEMPLATE_ID_HELP, _header, _template_text
from .sendfile import CsvSource


def estimate(ctx: typer.Context,
             path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                         help="CSV with a header: number,text or number,<values...>"),
             channel: str = typer.Option(..., "--channel", "-c", help=CHANNEL_HELP),
             sender_id: str = typer.Option(..., "--sender-id", "-s", help=SENDER_HELP),
             template_id: str = typer.Option(..., "--template-id", "-t", help=TEMPLATE_ID_HELP),
             template: str | None = typer.Option(
                 None, "--template", help="Template text with {#var#} places, when the file has no text "
                 "column (default: the template's text from the gateway catalogue)."),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Preview a send-file: credits, parts, refusals, UCS-2 rows, balance after.

    Example:

        smsdispatch estimate notices.csv -c transactional -s SMSPNT \\
          -t 1207161000000000002

    Rows are validated exactly as send-file validates them (numbers, DLT
    template and whitelist, opt-outs). Nothing is written or enqueued.
    Row numbers are file lines (the header is line 1).
    """
    st = state(ctx)
    if template is None and "text" not in _header(path):
        template = _template_text(st, template_id)
    source = CsvSource(path, template)
    source.columns()
    est = st.dispatcher.estimate(source, channel=channel, sender_id=sender_id, template_id=template_id)
    # indexes of the rows send_bulk saw -> file rows; the file's own (unrenderable) rows join the refusals
    est.refused = source.all_rejects(est.refused)
    est.refused_count += len(source.rejects)
    est.rows += len(source.rejects)
    for r in source.rejects:
        key = f"{r.field}: {r.reason.partition(':')[0]}"
        est.refused_by_reason[key] = est.refused_by_reason.get(key, 0) + 1
    est.ucs2 = [replace(u, index=source.positions[u.index]) for u in est.ucs2]
    if as_json:
        print_json(est.to_dict())
        return
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", f"{est.rows:,}")
    t.add_row("would be enqueued", f"{est.accepted:,}")
    t.add_row("would be refused", f"{est.refused_count:,}")
    t.add_row(f"credits ({est.package})", f"{est.credits:,}")
    t.add_row("parts per message", ", ".join(f"{p}: {n:,}" for p, n in est.parts.items()) or "-")
    t.add_row("sent as UCS-2", f"{est.ucs2_count:,}")
    label = "smart encoding saves" if est.smart_encoding else "smart encoding would save"
    hint = "" if est.smart_encoding else " (SMART_ENCODING=true)"
    t.add_row(label, f"{est.smart_saving:,} credit(s){hint}")
    t.add_row("balance", "unknown" if est.balance is None else f"{est.balance:,}")
    t.add_row("balance after", "unknown" if est.balance_after is None else f"{est.balance_after:,}")
    out.print(t)
    for u in est.ucs2[:5]:
        out.print(f"  line {u.index + 2}: UCS-2 from character {u.position} ({u.code_point} "
                  f"{escape(repr(u.char))})")
    for reason, n in list(est.refused_by_reason.items())[:5]:
        err.print(f"  refused {n:,}: {reason}", markup=False)
    for r in est.refused[:5]:
        err.print(f"  line {r.index + 2}: {r.field}: {r.reason}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate)
