"""Message commands: ``send``, ``send-file``, ``status``."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import operators
from .common import CliState, err, fmt_time, out, parse_when, print_json, state
from .sendfile import CsvSource, enqueue_file, rejects_path, write_rejects

CHANNEL_HELP = "transactional, promotional or otp."
SENDER_HELP = "DLT sender id (header) registered for the channel, e.g. SMSPNT."
TEMPLATE_ID_HELP = "DLT template id the text was registered under, e.g. 1207161000000000002."
JSON_HELP = "Print the result as JSON (for scripts)."


def send(ctx: typer.Context,
         to: str = typer.Option(..., "--to", help="Recipient: Indian mobile, 98765 43210 / 91... / +91..."),
         text: str = typer.Option(..., "--text", help="The message; must match the DLT template."),
         channel: str = typer.Option(..., "--channel", "-c", help=CHANNEL_HELP),
         sender_id: str = typer.Option(..., "--sender-id", "-s", help=SENDER_HELP),
         template_id: str = typer.Option(..., "--template-id", "-t", help=TEMPLATE_ID_HELP),
         idempotency_key: str | None = typer.Option(None, "--idempotency-key",
                                                    help="Enqueue at most once per key (safe to retry)."),
         send_at: str | None = typer.Option(None, "--send-at",
                                            help="ISO date-time to send at; no offset = TIMEZONE (IST)."),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Validate and enqueue one SMS; prints its id (the workers send it).

    Example:

        smsdispatch send --to 9876543210 -c transactional -s SMSPNT \\
          -t 1207161000000000002 \\
          --text "Payment of Rs 500 received for account AC1. Thank you. - SMSPNT"

    Invalid numbers, unknown sender ids and texts that do not match the
    template are refused here, before anything is written.
    """
    st = state(ctx)
    when = parse_when(send_at, st.settings.timezone)
    mid = st.dispatcher.send_sms(to, text, channel=channel, sender_id=sender_id, template_id=template_id,
                                 idempotency_key=idempotency_key, send_at=when)
    status = st.dispatcher.get_status(mid)
    if as_json:
        print_json({"id": mid, "state": status.state, "send_at": status.send_at, "parts": status.parts,
                    "credits": status.credits})
        return
    extra = f", to be released at {fmt_time(status.send_at, st.settings.timezone)}" if status.send_at else ""
    out.print(f"{status.state} {mid} ({status.number_masked}, {status.parts} part(s), "
              f"{status.credits} credit(s){extra})")


def _template_text(st: CliState, template_id: str) -> str | None:
    catalog = st.ctx.catalog.get() or st.ctx.catalog.refresh(st.ctx.client)
    tmpl = catalog.templates.get(template_id)
    return tmpl.message if tmpl else None


def send_file(ctx: typer.Context,
              path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                          help="CSV with a header: number,text or number,<values...>"),
              channel: str = typer.Option(..., "--channel", "-c", help=CHANNEL_HELP),
              sender_id: str = typer.Option(..., "--sender-id", "-s", help=SENDER_HELP),
              template_id: str = typer.Option(..., "--template-id", "-t", help=TEMPLATE_ID_HELP),
              template: str | None = typer.Option(
                  None, "--template", help="Template text with {#var#} places, when the file has no text "
                  "column (default: the template's text from the gateway catalogue)."),
              key_column: str | None = typer.Option(
                  None, "--key-column", help="Column whose value is each row's idempotency key (default: "
                  "the file's content and the row's position)."),
              rejects: Path | None = typer.Option(
                  None, "--rejects", help="Where to write rejected rows (default NAME.rejects.csv)."),
              send_at: str | None = typer.Option(None, "--send-at", help="ISO date-time to send at."),
              as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Enqueue every valid row of a CSV file; invalid rows go to a rejects CSV.

    Examples:

        # notices.csv: number,text
        smsdispatch send-file notices.csv -c transactional -s SMSPNT \\
          -t 1207161000000000002

        # orders.csv: number,name,order,date (values for the template's {#var#})
        smsdispatch send-file orders.csv -c transactional -s SMSPNT \\
          -t 1207161000000000001 --key-column order

    Safe to run again: each row has an idempotency key (the --key-column
    value, or the file's content and the row's position), so a second run of
    the same file enqueues nothing twice and says so. The rejects file
    (notices.rejects.csv for notices.csv, unless --rejects) has the columns
    index (0-based data row), line, field and reason.
    """
    st = state(ctx)
    when = parse_when(send_at, st.settings.timezone)
    if template is None and "text" not in _header(path):
        template = _template_text(st, template_id)
    source = CsvSource(path, template, key_column)
    source.columns()  # a clear error now, before the progress bar, if the header does not fit
    total = source.count()
    progress = Progress(TextColumn("enqueueing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=as_json)
    with progress:
        task = progress.add_task("rows", total=total)
        result = enqueue_file(st.dispatcher, source, lambda done: progress.update(task, completed=done),
                              channel=channel, sender_id=sender_id, template_id=template_id, send_at=when)
        progress.update(task, completed=total)
    new, already, bad = result.enqueued, result.already, result.rejects
    rejects_file = rejects or rejects_path(path)
    if bad:
        write_rejects(rejects_file, bad)
    summary: dict[str, Any] = {"rows": total, "enqueued": len(new), "already_enqueued": len(already),
                               "rejected": len(bad), "rejects_file": str(rejects_file) if bad else None,
                               "first_id": new[0] if new else None, "last_id": new[-1] if new else None}
    if as_json:
        print_json(summary)
    else:
        if already and not new:
            head = f"nothing new: all {len(already)} valid row(s) were enqueued by an earlier run"
        else:
            head = f"enqueued {len(new)} of {total} row(s)" + (
                f"; {len(already)} already enqueued by an earlier run" if already else "")
        out.print(head + f"; rejected {len(bad)}" + (f" -> {rejects_file}" if bad else ""))
        for r in bad[:5]:
            err.print(f"  line {r.index + 2}: {r.field}: {r.reason}", markup=False)
    if not new and not already and bad:
        raise typer.Exit(1)


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [h.strip().lower() for h in next(csv.reader(fh), [])]


def status(ctx: typer.Context, message_id: str = typer.Argument(..., help="The id send/send-file printed."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show one message: state, timestamps, gateway ids, credits and its history.

    Example:

        smsdispatch status 0192f3a1c2d4e5f60718293a4b5c6d7e
    """
    st = state(ctx)
    s = st.dispatcher.get_status(message_id)
    events = operators.timeline(s)
    if as_json:
        data = asdict(s)
        # one history: the timestamps and the recorded events together, oldest first (the table's
        # "history"); the events alone were an empty list for most messages beside a full timeline
        data["history"] = [{"at": at, "state": what, "detail": detail} for at, what, detail in events]
        print_json(data)
        return
    tz = st.settings.timezone
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    fields = [("id", s.id), ("state", s.state + (f" ({s.hold_reason})" if s.hold_reason else "")),
              ("channel", s.channel), ("to", s.number_masked),
              ("parts / credits", f"{s.parts} / {s.credits}"),
              ("credits charged", "-" if s.credits_charged is None else str(s.credits_charged)),
              ("gateway job / message", f"{s.gateway_job_id or '-'} / {s.gateway_message_id or '-'}"),
              ("gateway status", " ".join(x for x in (s.status_raw, s.status_remark) if x) or "-"),
              ("attempts", str(s.attempts)), ("last error", s.last_error or "-")]
    for name, value in fields:
        t.add_row(name, value)
    out.print(t)
    h = Table(title="history", title_justify="left")
    for col in ("at", "state", "detail"):
        h.add_column(col)
    for at, what, detail in events:
        h.add_row(fmt_time(at, tz), what, detail)
    out.print(h)


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.command("send-file")(send_file)
    app.command("status")(status)

