"""The demo's live view: messages per channel and state, credits left, and when to stop waiting."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.table import Table

from .. import store
from ..context import Context
from ..db import transaction

COLUMNS = ("queued", "sending", "sent", "delivered", "undelivered", "expired", "held", "unknown", "failed")
#: States a message leaves without anyone's help (scheduled waits for its time: not counted).
MOVING = ("queued", "sending", "held")


@dataclass
class Snapshot:
    by_channel: dict[str, dict[str, int]]
    totals: dict[str, int]
    credits: dict[str, int | None]

    def pending(self, await_reports: bool) -> int:
        states = MOVING + (("sent",) if await_reports else ())
        return sum(self.totals.get(s, 0) for s in states)


def snapshot(ctx: Context) -> Snapshot:
    with transaction(ctx.engine) as conn:
        counts = store.counts_by_state(conn)
    by_channel: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for (state, channel), n in counts.items():
        row = by_channel.setdefault(channel, {})
        row[state] = row.get(state, 0) + n
        totals[state] = totals.get(state, 0) + n
    credits: dict[str, int | None] = {}
    for pkg, values in ctx.ledger.snapshot().items():
        available = values.get("available")
        credits[pkg] = None if available is None else int(available)
    return Snapshot(by_channel, totals, credits)


@dataclass
class Progress:
    """Tracks the run: enqueue progress, and whether the system has settled or stalled."""

    total: int
    await_reports: bool
    started: float = field(default_factory=time.monotonic)
    enqueued: int = 0
    rejected: int = 0
    enqueue_done: bool = False
    last_change: float = field(default_factory=time.monotonic)
    last_totals: dict[str, int] = field(default_factory=dict)

    def observe(self, snap: Snapshot) -> None:
        if snap.totals != self.last_totals:
            self.last_totals = dict(snap.totals)
            self.last_change = time.monotonic()

    def settled(self, snap: Snapshot) -> bool:
        return self.enqueue_done and snap.pending(self.await_reports) == 0

    def stalled(self, stall_s: float) -> bool:
        return self.enqueue_done and time.monotonic() - self.last_change > stall_s


def hurry_reports(ctx: Context, min_age_s: float = 2.0) -> int:
    """Make open gateway jobs due again. The simulator's lifecycle runs in seconds, while the sync's polling
    schedule (1, 2, 5, 10, 30 min...) is made for the real gateway: the demo compresses it the same way."""
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        return store.hurry_jobs(conn, now, min_age_s)


def render(snap: Snapshot, prog: Progress) -> Table:
    elapsed = time.monotonic() - prog.started
    accepted = sum(snap.totals.get(s, 0) for s in ("sent", "delivered", "undelivered", "expired"))
    title = (f"demo: {prog.enqueued:,} of {prog.total:,} enqueued ({prog.rejected} refused) · "
             f"{accepted:,} accepted by the gateway · {elapsed:.0f}s")
    t = Table(title=title, title_justify="left")
    t.add_column("channel")
    columns = (("scheduled",) if snap.totals.get("scheduled") else ()) + COLUMNS
    for col in columns:
        t.add_column(col, justify="right")
    for channel in sorted(snap.by_channel):
        row = snap.by_channel[channel]
        t.add_row(channel, *[_n(row.get(c, 0)) for c in columns])
    t.add_row("[bold]all[/]", *[f"[bold]{_n(snap.totals.get(c, 0))}[/]" for c in columns])
    credits = " · ".join(f"{pkg} {'-' if v is None else f'{v:,}'}" for pkg, v in sorted(snap.credits.items()))
    t.caption = f"credits left: {credits}"
    t.caption_justify = "left"
    return t


def _n(value: int) -> str:
    return f"{value:,}" if value else "[dim]0[/]"
