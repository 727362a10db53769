"""Gateway look-ups: ``balance``, ``senders``, ``templates`` (read-only calls, shown as tables)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from .common import WIDE_HELP, id_column, out, print_json, print_table, state

JSON_HELP = "Print the gateway's answer as JSON (for scripts)."


def balance(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Credits left per package (get-sms-balance), and what workers hold in flight.

    Example:

        smsdispatch balance
        smsdispatch balance --json | jq .Promotional
    """
    st = state(ctx)
    bal = st.ctx.client.balance()
    values = {"OTP": bal.otp, "Promotional": bal.promotional, "Transactional": bal.transactional}
    if as_json:
        print_json(values)
        return
    t = Table(title=f"credits at {st.settings.smspoint_base_url}", title_justify="left")
    t.add_column("package")
    t.add_column("credits", justify="right")
    for package, n in values.items():
        t.add_row(package, f"{n:,}")
    out.print(t)


def senders(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The account's DLT sender ids (get-sender-id), approved or not.

    Example:

        smsdispatch senders
    """
    rows = state(ctx).ctx.client.sender_ids()
    if as_json:
        print_json([{"id": s.id, "sender_id": s.sender_id, "type": s.type,
                     "channel": s.channel.value if s.channel else None, "purpose": s.purpose,
                     "status": s.approve_status, "approved": s.approved, "entity_id": s.entity_id}
                    for s in rows])
        return
    t = Table(title="sender ids", title_justify="left")
    id_column(t, "id", [s.id for s in rows])
    id_column(t, "sender id", [s.sender_id for s in rows])
    for col in ("channel", "purpose", "status"):
        t.add_column(col, overflow="fold")
    for s in rows:
        t.add_row(escape(s.id), escape(s.sender_id), escape(s.channel.value if s.channel else s.type),
                  escape(s.purpose), _status(s.approve_status, s.approved))
    out.print(t)


def templates(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
              full: bool = typer.Option(False, "--full", help="Show whole template texts."),
              wide: bool = typer.Option(False, "--wide", help=WIDE_HELP)) -> None:
    """The account's DLT templates (get-templates), with their texts.

    Example:

        smsdispatch templates --full

    A message's text must match its template: the fixed text exactly, and
    each {#var#} up to 30 characters.
    """
    rows = state(ctx).ctx.client.templates()
    if as_json:
        print_json([{"id": x.id, "name": x.name, "template_id": x.template_id, "type": x.type,
                     "channel": x.channel.value if x.channel else None, "sender_id": x.sender_id,
                     "message": x.message, "status": x.template_status, "approved": x.approved}
                    for x in rows])
        return
    t = Table(title="templates", title_justify="left")
    id_column(t, "template id", [x.template_id for x in rows])
    for col in ("name", "channel", "sender", "status"):
        t.add_column(col, overflow="fold")
    t.add_column("text", overflow="fold", ratio=1)
    for x in rows:
        text = x.message if full or len(x.message) <= 60 else x.message[:57] + "..."
        t.add_row(escape(x.template_id), escape(x.name), escape(x.channel.value if x.channel else x.type),
                  escape(x.sender_id), _status(x.template_status, x.approved), escape(text))
    print_table(t, wide)


def _status(text: str, approved: bool) -> str:
    return escape(text) if approved else f"[yellow]{escape(text)}[/]"


def register(app: typer.Typer) -> None:
    app.command("balance")(balance)
    app.command("senders")(senders)
    app.command("templates")(templates)
