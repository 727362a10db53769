"""Opt-outs (suppression list): a number that opted out of a channel is never messaged on it.

An opt-out names the channels it covers (default: promotional; OTP and transactional messages a person
asked for are not marketing) and keeps who recorded it, when and why. It is checked twice: at enqueue
(refused like any other bad field: ``to: opted out of promotional on 2026-11-25``) and again when a
batch is about to be sent, so a number that opts out after its message was enqueued is not messaged:
that message ends ``failed`` with the same reason, before any credit is reserved for it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from . import store
from .channels import Channel
from .context import Context, get_context
from .db import reading, transaction
from .errors import BulkValidationError, RowError, ValidationError
from .numbers import mask, normalize
from .states import State
from .store import guards as guard_store

log = logging.getLogger(__name__)

DEFAULT_CHANNELS: tuple[Channel, ...] = (Channel.PROMOTIONAL,)
#: Rows per INSERT when importing.
IMPORT_CHUNK = 5000
CSV_HEADER = ("number", "channel", "created_at", "reason", "source")
#: Longest reason and source (who recorded it) an opt-out keeps: the columns' sizes.
REASON_MAX = 200
SOURCE_MAX = 64


def parse_channels(channels: object, field: str = "channels") -> list[str]:
    """None -> promotional; "all" -> every channel; a channel or a list/comma-separated string of them."""
    if channels is None:
        return [c.value for c in DEFAULT_CHANNELS]
    items: Iterable[object]
    if isinstance(channels, str | Channel):
        items = [i for i in str(channels.value if isinstance(channels, Channel) else channels).split(",")
                 if i.strip()]
    elif isinstance(channels, Iterable):
        items = channels
    else:
        raise ValidationError(field, f"must be channel names, got {type(channels).__name__}")
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() == "all":
            return [c.value for c in Channel]
        try:
            value = Channel.parse(item.strip() if isinstance(item, str) else item).value
        except ValueError as exc:
            raise ValidationError(field, str(exc)) from exc
        if value not in out:
            out.append(value)
    if not out:
        raise ValidationError(field, "name at least one channel (transactional, promotional, otp or all)")
    return out


def reason_text(channel: str, when: datetime, tz: str) -> str:
    """'opted out of promotional on 2026-11-25' (the date in the configured time zone)."""
    return f"opted out of {channel} on {when.astimezone(ZoneInfo(tz)).date().isoformat()}"


def clean_text(value: object, field: str, longest: int) -> str:
    """A short free text (reason, source, note): a printable string of at most ``longest`` characters,
    trimmed; ValidationError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > longest or not value.isprintable():
        raise ValidationError(field, f"must be at most {longest} printable characters")
    return value.strip()


def _rows(ctx: Context, number: object, channels: object, reason: object, source: object,
          now: datetime, prefix: str = "") -> list[dict[str, Any]]:
    """Validated opt-out rows (raises ValidationError naming the field)."""
    num = normalize(number, ctx.settings.default_region, field=f"{prefix}number")  # type: ignore[arg-type]
    chans = parse_channels(channels, f"{prefix}channels")
    why = clean_text(reason, f"{prefix}reason", REASON_MAX) or None
    who = clean_text(source, f"{prefix}source", SOURCE_MAX) or None
    return [{"number": num, "channel": c, "created_at": now, "reason": why, "source": who} for c in chans]


# --------------------------------------------------------------------------- library


def opt_out(number: str | int, channels: object = None, reason: str = "", source: str = "",
            *, ctx: Context | None = None) -> int:
    """Record that ``number`` opted out of ``channels`` (default promotional); returns how many channels
    were newly opted out (an existing opt-out keeps its first date and reason)."""
    ctx = ctx or get_context()
    rows = _rows(ctx, number, channels, reason, source, ctx.clock())
    with transaction(ctx.engine) as conn:
        added = guard_store.add_opt_outs(conn, rows)
    log.info("opt-out of %s from %s (%d new)", mask(rows[0]["number"]), ",".join(r["channel"] for r in rows),
             added)
    return added


def opt_in(number: str | int, channels: object = None, *, ctx: Context | None = None) -> int:
    """Remove ``number``'s opt-outs of ``channels`` (default promotional; "all" for every channel)."""
    ctx = ctx or get_context()
    num = normalize(number, ctx.settings.default_region, field="number")  # type: ignore[arg-type]
    chans = parse_channels(channels)
    with transaction(ctx.engine) as conn:
        removed = guard_store.remove_opt_outs(conn, num, chans)
    log.info("opt-in of %s to %s (%d removed)", mask(num), ",".join(chans), removed)
    return removed


def list_opt_outs(ctx: Context, *, channel: str | None = None, number: str | None = None,
                  limit: int = 1000) -> list[guard_store.OptOutRow]:
    ch = parse_channels(channel)[0] if channel is not None else None
    num = normalize(number, ctx.settings.default_region, field="number") if number is not None else None
    with reading(ctx.engine) as conn:
        return guard_store.opt_outs(conn, channel=ch, number=num, limit=limit)


@dataclass(frozen=True)
class ImportResult:
    rows: int
    added: int


def import_csv(ctx: Context, path: Path, source: str = "") -> ImportResult:
    """Import a CSV with a header (``number`` required; ``channels``/``channel`` and ``reason`` optional).
    All or nothing: any invalid row refuses the whole file (BulkValidationError lists every one)."""
    now = ctx.clock()
    rows: list[dict[str, Any]] = []
    rejects: list[RowError] = []
    total = 0
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, skipinitialspace=True)
        names = {(n or "").strip().lower(): n for n in reader.fieldnames or []}
        if "number" not in names:
            raise ValidationError("file", f"{path} has no 'number' column (header: {','.join(names) or '-'})")
        chan_col = names.get("channels") or names.get("channel")
        for index, row in enumerate(reader):
            total += 1
            try:
                rows += _rows(ctx, (row.get(names["number"]) or "").strip(),
                              (row.get(chan_col) or None) if chan_col else None,
                              row.get(names["reason"]) or "" if "reason" in names else "",
                              source or f"import {path.name}", now)
            except ValidationError as exc:
                rejects.append(RowError(index, exc.field, exc.reason))
    if rejects:
        raise BulkValidationError(rejects, total)
    added = 0
    with transaction(ctx.engine) as conn:
        for k in range(0, len(rows), IMPORT_CHUNK):
            added += guard_store.add_opt_outs(conn, rows[k:k + IMPORT_CHUNK])
    log.info("opt-outs imported from %s: %d row(s), %d new", path.name, total, added)
    return ImportResult(total, added)


def export_csv(ctx: Context, fh: IO[str], channel: str | None = None) -> int:
    """Write every opt-out (or one channel's) as CSV; returns the rows written. Pages through the table."""
    ch = parse_channels(channel)[0] if channel is not None else None
    w = csv.writer(fh)
    w.writerow(CSV_HEADER)
    written, after = 0, None
    while True:
        with reading(ctx.engine) as conn:
            page = guard_store.opt_outs(conn, channel=ch, after=after, limit=IMPORT_CHUNK)
        for r in page:
            w.writerow([r.number, r.channel, r.created_at.isoformat(), r.reason or "", r.source or ""])
        written += len(page)
        if len(page) < IMPORT_CHUNK:
            return written
        after = (page[-1].number, page[-1].channel)


# --------------------------------------------------------------------------- enqueue and send


def suppressed(ctx: Context, conn: Connection, numbers: Sequence[str], channel: str) -> dict[str, str]:
    """number -> refusal reason, for those of ``numbers`` that opted out of ``channel``."""
    found = guard_store.opted_out(conn, numbers, channel)
    tz = ctx.settings.timezone
    return {n: reason_text(channel, when, tz) for n, when in found.items()}


def drop_opted_out(ctx: Context, batch_id: str, channel: Channel,
                   messages: list[store.Outgoing]) -> list[store.Outgoing]:
    """Fail the batch's messages to numbers that opted out since they were enqueued; returns the rest.
    Called before credits are reserved, so none is reserved for them."""
    if not messages:
        return messages
    with reading(ctx.engine) as conn:
        hits = suppressed(ctx, conn, [m.number for m in messages], channel.value)
    if not hits:
        return messages
    now = ctx.clock()
    gone = [m for m in messages if m.number in hits]
    with transaction(ctx.engine) as conn:
        for m in gone:
            if store.move_messages(conn, [m.id], State.FAILED, now, last_error=hits[m.number]):
                store.add_events(conn, [m.id], State.FAILED, now, hits[m.number])
    log.warning("batch %s: %d message(s) not sent: the number opted out of %s", batch_id, len(gone),
                channel.value)
    return [m for m in messages if m.number not in hits]
