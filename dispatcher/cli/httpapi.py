"""The HTTP API: ``api`` (serve it) and ``api-key create | list | revoke``."""

from __future__ import annotations

import os

import typer
from rich.markup import escape
from rich.table import Table

from .common import err, fmt_time, out, print_json, state

JSON_HELP = "Print the result as JSON (for scripts)."


def api(ctx: typer.Context,
        host: str | None = typer.Option(None, "--host", help="Bind address (API_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (API_PORT, 8080)."),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Server processes."),
        access_log: bool = typer.Option(False, "--access-log", help="Log every request line.")) -> None:
    """Serve the HTTP API (enqueue from any language) under uvicorn.

    Examples:

        smsdispatch api                            # http://127.0.0.1:8080/docs
        smsdispatch api --host 0.0.0.0 --port 8080 --workers 2

    Keys: 'smsdispatch api-key create NAME'. Endpoints and examples: README
    (HTTP API) and /docs. Run 'smsdispatch db upgrade' first.
    """
    from ..httpapi.server import serve

    st = state(ctx)
    os.environ.update(st.settings.to_env())  # worker processes build the same Settings
    serve(st.ctx, host or st.settings.api_host, port or st.settings.api_port, workers, access_log=access_log)


key_app = typer.Typer(help="API keys of the HTTP API: create (shown once), list, revoke.",
                      no_args_is_help=True)


@key_app.command("create")
def key_create(ctx: typer.Context, name: str = typer.Argument(..., help="Who or what uses the key."),
               scopes: str = typer.Option("send,read", "--scopes", help="send (POST messages), read (GET)."),
               rate: str | None = typer.Option(None, "--rate", help="Requests per second, e.g. 20/s "
                                                                   "(default API_RATE_PER_S)."),
               as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Create a key and print it once (only its hash is stored).

    Examples:

        smsdispatch api-key create billing-service
        smsdispatch api-key create reports --scopes read --rate 5/s
    """
    from ..httpapi import keyring
    from ..httpapi.keys import parse_rate, parse_scopes

    st = state(ctx)
    record, token = keyring.create(st.ctx, name, parse_scopes(scopes), parse_rate(rate) if rate else None)
    if as_json:
        print_json({"id": record.id, "name": record.name, "scopes": sorted(record.scopes),
                    "rate_per_s": record.rate_per_s, "key": token})
        return
    out.print(token, markup=False)
    err.print(f"key {record.id} ({escape(record.name)}) created; store it now, it is not shown again. "
              "Use it as 'Authorization: Bearer <key>'.")


@key_app.command("list")
def key_list(ctx: typer.Context,
             revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The keys (ids, names, scopes, rates; never the keys themselves).

    Example:

        smsdispatch api-key list --revoked
    """
    from ..httpapi import keyring

    st = state(ctx)
    records = keyring.listed(st.ctx, include_revoked=revoked)
    default = st.settings.api_rate_per_s
    if as_json:
        print_json([{"id": r.id, "name": r.name, "scopes": sorted(r.scopes),
                     "rate_per_s": r.rate_per_s or default, "created_at": r.created_at,
                     "revoked_at": r.revoked_at} for r in records])
        return
    t = Table(title="API keys", title_justify="left")
    for col in ("id", "name", "scopes", "rate", "created", "revoked"):
        t.add_column(col)
    tz = st.settings.timezone
    for r in records:
        t.add_row(r.id, escape(r.name), ",".join(sorted(r.scopes)), f"{r.rate_per_s or default:g}/s",
                  fmt_time(r.created_at, tz), fmt_time(r.revoked_at, tz))
    out.print(t)


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key: str = typer.Argument(..., help="The key's id or name.")) -> None:
    """Revoke a key: it is refused (401) within API_KEY_CACHE_S seconds everywhere.

    Example:

        smsdispatch api-key revoke billing-service
    """
    from ..httpapi import keyring

    record = keyring.revoke(state(ctx).ctx, key)
    out.print(f"revoked key {record.id} ({escape(record.name)})")


def register(app: typer.Typer) -> None:
    app.command("api")(api)
    app.add_typer(key_app, name="api-key")
