"""Operator commands: ``report`` and ``unknown list | resend | fail``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import operators
from ..errors import PurgeRunning
from ..states import State
from .common import WIDE_HELP, fmt_rate, fmt_seconds, fmt_time, id_column, out, print_json, print_table, state

JSON_HELP = "Print the result as JSON (for scripts)."
#: Report rows in the order a message moves through them.
STATE_ORDER = [s.value for s in (State.SCHEDULED, State.QUEUED, State.HELD, State.SENDING, State.UNCONFIRMED,
                                 State.SENT,
                                 State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.FAILED,
                                 State.UNKNOWN)]


def report(ctx: typer.Context,
           since: str | None = typer.Option(None, "--since",
                                            help="Only messages created since: 90s, 15m, 1h, 2d, 1w or ISO."),
           jobs: int = typer.Option(0, "--jobs", min=0,
                                    help="Also list the credits of this many most recent gateway jobs."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Counts by state and channel, delivery rate, credits, and latencies.

    Examples:

        smsdispatch report
        smsdispatch report --since 1h
        smsdispatch report --since 2025-01-31T09:00+05:30 --json
        smsdispatch report --jobs 20

    Delivery rate = delivered / (delivered + undelivered + expired), that is
    among the messages whose delivery report is in. Credits: reserved for
    the gateway calls, charged (what the gateway's answers and reports show
    it took), released; "unaccounted for" are the credits of unknown
    messages (the gateway may have charged them: its balance tells). Latencies are p50 / p95
    of enqueue -> sent and enqueue -> delivered.
    """
    st = state(ctx)
    tz = st.settings.timezone
    when = operators.parse_since(since, st.ctx.clock(), tz) if since else None
    rep = operators.report(st.ctx, when, jobs)
    if as_json:
        print_json(rep.to_dict())
        return
    render_report(out, rep, tz)


def render_report(console: Console, rep: operators.Report, tz: str) -> None:
    """The report as tables (also used by the demo)."""
    channels = sorted(rep.by_channel)
    title = f"messages since {fmt_time(rep.since, tz)}" if rep.since else "all messages"
    t = Table(title=title, title_justify="left")
    t.add_column("state")
    for ch in channels:
        t.add_column(ch, justify="right")
    t.add_column("total", justify="right", style="bold")
    for s in [x for x in STATE_ORDER if x in rep.by_state] + sorted(set(rep.by_state) - set(STATE_ORDER)):
        t.add_row(s, *[f"{rep.by_channel[ch].get(s, 0):,}" for ch in channels], f"{rep.by_state[s]:,}")
    t.add_row("[bold]total[/]", *[f"{sum(rep.by_channel[ch].values()):,}" for ch in channels],
              f"{rep.total:,}")
    console.print(t)
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("accepted by the gateway", f"{rep.accepted:,}")
    summary.add_row("delivery rate", fmt_rate(rep.delivery_rate))
    summary.add_row("credits charged", f"{rep.credits_charged:,}")
    c = rep.credits
    if c:
        summary.add_row("credits of gateway jobs", f"reserved {c['reserved']:,}, charged {c['charged']:,}, "
                                                   f"released {c['released']:,}")
        summary.add_row("credits unaccounted for", f"{c['unknown']:,} (unknown messages: the gateway may "
                                                   "have charged them)")
        if c["unconfirmed"]:
            summary.add_row("credits awaiting reports", f"{c['unconfirmed']:,} (unconfirmed messages)")
    for name, label in (("enqueue_to_sent", "enqueue -> sent"),
                        ("enqueue_to_delivered", "enqueue -> delivered")):
        lat = rep.latency_s.get(name, {})
        summary.add_row(label, f"p50 {fmt_seconds(lat.get('p50'))}, p95 {fmt_seconds(lat.get('p95'))} "
                         f"({lat.get('count', 0):,} messages)")
    console.print(summary)
    if rep.jobs:
        jt = Table(title="recent gateway jobs: credits", title_justify="left")
        for name, justify in (("job id", "left"), ("channel", "left"), ("messages", "right"),
                              ("reserved", "right"), ("charged", "right"), ("released", "right"),
                              ("pending", "right")):
            jt.add_column(name, justify=justify, no_wrap=name == "job id")  # type: ignore[arg-type]
        for j in rep.jobs:
            jt.add_row(str(j["job_id"]), j["channel"], f"{j['size']:,}", f"{j['credits_reserved']:,}",
                       f"{j['credits_charged']:,}", f"{j['credits_released']:,}", f"{j['credits_pending']:,}")
        console.print(jt)


# --------------------------------------------------------------------------- unknown

unknown_app = typer.Typer(no_args_is_help=True)


@unknown_app.callback()
def unknown_group() -> None:
    """Messages in state unknown: the gateway may or may not have them.

    Nothing resends them automatically. Check the gateway's portal (or ask the
    recipient), then resend them (unknown -> queued: a duplicate if it was sent)
    or fail them (unknown -> failed, with your reason):

        smsdispatch unknown list
        smsdispatch unknown resend ID... (or --all)
        smsdispatch unknown fail ID... --reason "delivered per portal"
    """


@unknown_app.command("list")
def unknown_list(ctx: typer.Context,
                 limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many."),
                 wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
                 as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List unknown messages, oldest first (numbers masked).

    Example:

        smsdispatch unknown list --limit 20
    """
    st = state(ctx)
    total = operators.count_unknown(st.ctx)
    rows = operators.list_unknown(st.ctx, limit)
    if as_json:
        print_json({"total": total, "messages": rows})
        return
    shown = f", oldest {len(rows)} shown" if total > len(rows) else ""
    t = Table(title=f"{total:,} unknown message(s){shown}", title_justify="left")
    id_column(t, "id", [r.id for r in rows])
    for col in ("channel", "to", "since"):
        t.add_column(col, overflow="fold")
    id_column(t, "job", [r.gateway_job_id or "-" for r in rows])
    t.add_column("last error", overflow="fold", ratio=1)
    for r in rows:
        t.add_row(r.id, r.channel, r.number_masked, fmt_time(r.since, st.settings.timezone),
                  escape(r.gateway_job_id or "-"), escape(r.last_error or "-"))
    print_table(t, wide)


def _targets(ids: list[str] | None, all_: bool) -> list[str] | None:
    if bool(ids) == all_:
        raise typer.BadParameter("give message ids or --all (not both)")
    return None if all_ else list(dict.fromkeys(ids or []))


def _confirm(yes: bool, what: str) -> None:
    if not yes and not typer.confirm(what, default=False):
        raise typer.Abort()


@unknown_app.command("resend")
def unknown_resend(ctx: typer.Context,
                   ids: list[str] | None = typer.Argument(None, help="Message ids (see 'unknown list')."),
                   all_: bool = typer.Option(False, "--all", help="Every unknown message."),
                   yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
                   as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Queue unknown messages again (unknown -> queued); the workers send them.

    Examples:

        smsdispatch unknown resend 0192f3a1c2d4e5f60718293a4b5c6d7e
        smsdispatch unknown resend --all --yes

    If the gateway did accept a message, its recipient gets it twice: check first.
    """
    st = state(ctx)
    targets = _targets(ids, all_)
    n = len(targets) if targets is not None else operators.count_unknown(st.ctx)
    _confirm(yes, f"Resend {n} unknown message(s)? Any the gateway did accept will be sent twice")
    res = operators.resend_unknown(st.ctx, targets)
    if as_json:
        print_json(res.to_dict())
    else:
        out.print(f"queued {len(res.moved)} message(s) again")


@unknown_app.command("fail")
def unknown_fail(ctx: typer.Context,
                 ids: list[str] | None = typer.Argument(None, help="Message ids (see 'unknown list')."),
                 reason: str = typer.Option(..., "--reason", "-r", help="Why (kept in the message history)."),
                 all_: bool = typer.Option(False, "--all", help="Every unknown message."),
                 yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
                 as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Mark unknown messages failed (unknown -> failed), with your reason.

    Example:

        smsdispatch unknown fail 0192f3a1c2d4e5f60718293a4b5c6d7e \\
          --reason "not on the gateway portal"
    """
    st = state(ctx)
    targets = _targets(ids, all_)
    n = len(targets) if targets is not None else operators.count_unknown(st.ctx)
    _confirm(yes, f"Mark {n} unknown message(s) failed?")
    res = operators.fail_unknown(st.ctx, targets, reason)
    if as_json:
        print_json(res.to_dict())
    else:
        out.print(f"failed {len(res.moved)} message(s)")


# --------------------------------------------------------------------------- retention


def purge(ctx: typer.Context,
          older_than: str | None = typer.Option(
              None, "--older-than", help="Purge finished rows older than this (30d, 12h, 2w) in every table, "
              "instead of the RETENTION_DAYS* settings."),
          dry_run: bool = typer.Option(False, "--dry-run",
                                       help="Count what would be deleted; delete nothing."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Delete finished messages, batches, jobs and hook rows past their retention.

    Examples:

        smsdispatch purge --dry-run
        smsdispatch purge --older-than 30d

    Only finished rows go: final messages (delivered, undelivered, expired,
    failed) whose hook was delivered, with their events; batches none of
    whose messages still moves; closed gateway jobs; delivered hook rows.
    Queued, held, sending, sent and unknown messages are never purged. Beat
    runs the same purge every RETENTION_INTERVAL_S; deletes go in small
    transactions, so the workers can keep sending meanwhile.
    """
    from .. import purge as purging
    from ..retention import parse_age

    st = state(ctx)
    age = parse_age(older_than, "older-than") if older_than is not None else None
    total: purging.PurgeResult | None = None
    while True:  # rounds of at most RETENTION_RUN_S, each under the purge lease
        res = purging.purge_locked(st.ctx, older_than=age, dry_run=dry_run,
                                   budget_s=None if dry_run else st.settings.retention_run_s)
        if not res.ran:
            raise PurgeRunning("another purge is running (beat's purge_expired?); try again later")
        if total is None:
            total = res
        else:
            total.seconds += res.seconds
            total.deleted = {k: total.deleted.get(k, 0) + n for k, n in res.deleted.items()}
        if res.complete:
            break
    if as_json:
        print_json(total.to_dict())
        return
    tz = st.settings.timezone
    t = Table(title="would delete (dry run)" if dry_run else f"deleted in {total.seconds:.1f} s",
              title_justify="left")
    for col in ("rows", "count", "older than"):
        t.add_column(col, justify="right" if col == "count" else "left")
    cut = total.cutoffs
    for name, n in total.deleted.items():
        at = cut.get(name) or (cut.get("messages") if name in ("events", "message_hooks") else None)
        t.add_row(name.replace("_", " "), f"{n:,}", fmt_time(at, tz))
    for name, at in cut.items():
        if at is None:
            t.add_row(name, "-", "kept (retention 0)")
    out.print(t)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("purge")(purge)
    app.add_typer(unknown_app, name="unknown")
