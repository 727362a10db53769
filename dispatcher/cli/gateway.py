"""Gateway look-ups: ``balance``, ``senders``, ``templates`` (read-only calls, shown as tables)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from .common import out, print_json, state

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
    for col in ("id", "sender id", "channel", "purpose", "status"):
        t.add_column(col)
    for s in rows:
        t.add_row(escape(s.id), escape(s.sender_id), escape(s.channel.value if s.channel else s.type),
                  escape(s.purpose), _status(s.approve_status, s.approved))
    out.print(t)


def templates(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
              full: bool = typer.Option(False, "--full", help="Show whole template texts.")) -> None:
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
    for col in ("template id", "name", "channel", "sender", "status", "text"):
        t.add_column(col, overflow="fold" if col == "text" else "ellipsis")
    for x in rows:
        text = x.message if full or len(x.message) <= 60 else x.message[:57] + "..."
        t.add_row(escape(x.template_id), escape(x.name), escape(x.channel.value if x.channel else x.type),
                  escape(x.sender_id), _status(x.template_status, x.approved), escape(text))
    out.print(t)


def _status(text: str, approved: bool) -> str:
    return escape(text) if approved else f"[yellow]{escape(text)}[/]"


def register(app: typer.Typer) -> None:
    app.command("balance")(balance)
    app.command("senders")(senders)
    app.command("templates")(templates)
