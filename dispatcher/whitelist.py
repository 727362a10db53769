"""The account's URL / call-back number whitelist (DLT): from settings, an optional file re-read on change,
and the database, where operators add and remove entries at run time (``smsdispatch whitelist``).

Every process reads the file and the database again at most every ``DLT_WHITELIST_RELOAD_S`` seconds, so
an entry added or removed anywhere is honoured everywhere within seconds, without a restart. The rules
themselves (what an entry is, how a URL or number is compared) are :mod:`dispatcher.links`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .context import Context, get_context
from .db import reading, transaction
from .errors import BulkValidationError, ConfigurationError, RowError, StorageUnavailable, ValidationError
from .links import LinkRules, check_entry, parse_whitelist, whitelist_lines
from .optout import SOURCE_MAX, clean_text
from .settings import Settings
from .store import guards as guard_store
from .where import cause

log = logging.getLogger(__name__)

#: Longest note an entry keeps (the column's size).
NOTE_MAX = 200
KINDS = ("url", "cbn")

Entries = tuple[tuple[str, ...], tuple[str, ...]]  # (URL entries, call-back number entries)


class WhitelistSource:
    """``get()`` returns the current LinkRules: the settings' entries, the file's (``DLT_WHITELIST_FILE``,
    re-read when its modification time or size changed) and the database's (``DLT_WHITELIST_DB``, read
    again in the background), looked at again at most every ``DLT_WHITELIST_RELOAD_S`` seconds.

    A source that cannot be read keeps the entries it last gave (a warning is logged); one that was never
    read refuses, typed, so nothing is checked against a list that is missing part of itself."""

    def __init__(self, settings: Settings, engine: Callable[[], Engine] | None = None) -> None:
        self.settings = settings
        self.path = settings.dlt_whitelist_file
        self.check_every_s = settings.dlt_whitelist_reload_s
        self._engine = engine if settings.dlt_whitelist_db else None
        self._rules: LinkRules | None = None
        self._built_from: tuple[Entries, Entries] | None = None
        self._file: Entries | None = None
        self._stamp: tuple[float, int] | None = None
        self._db: Entries | None = None
        self._refreshing = threading.Lock()
        self._checked = 0.0

    def get(self) -> LinkRules:
        if self.settings.dlt_links == "off":  # nothing is checked: no source is read
            if self._rules is None:
                self._rules = LinkRules.build((), (), "off")
            return self._rules
        now = time.monotonic()
        if self._rules is not None and now - self._checked < self.check_every_s:
            return self._rules
        self._checked = now
        sources = (self._read_file(), self._read_database())
        if self._rules is None or sources != self._built_from:
            s = self.settings
            (furls, fcbns), (durls, dcbns) = sources
            self._rules = LinkRules.build([*s.dlt_url_whitelist, *furls, *durls],
                                          [*s.dlt_cbn_whitelist, *fcbns, *dcbns], s.dlt_links)
            self._built_from = sources
            log.info("whitelist loaded: %d URL prefix(es), %d call-back number(s)", len(self._rules.urls),
                     len(self._rules.cbns))
        return self._rules

    def _read_file(self) -> Entries:
        if self.path is None:
            return (), ()
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime, st.st_size)
            if stamp == self._stamp and self._file is not None:
                return self._file
            with open(self.path, encoding="utf-8") as fh:
                urls, cbns = parse_whitelist(fh.read(), self.path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if self._file is None:  # nothing to check against yet: refuse, typed, before anything is written
                raise ConfigurationError(f"dlt_whitelist_file: {exc}") from exc
            log.warning("whitelist file not re-read (%s); keeping the previous entries", exc)
            return self._file
        self._file, self._stamp = (tuple(urls), tuple(cbns)), stamp
        return self._file

    def _read_database(self) -> Entries:
        """The database's entries: read here the first time; after that, what the last read gave, while
        a background thread reads them again (a producer's hot path, an API server's event loop, never
        waits for the database or its outage here)."""
        if self._engine is None:
            return (), ()
        if self._db is None:
            try:
                self._db = self._fetch()
            except (StorageUnavailable, SQLAlchemyError) as exc:
                raise StorageUnavailable(f"whitelist not read from the database: {cause(exc)}") from exc
            return self._db
        if self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_database, name="whitelist-reload", daemon=True).start()
        return self._db

    def _fetch(self) -> Entries:
        assert self._engine is not None
        with reading(self._engine()) as conn:
            rows = guard_store.whitelist(conn)
        return (tuple(r.entry for r in rows if r.kind == "url"),
                tuple(r.entry for r in rows if r.kind == "cbn"))

    def _refresh_database(self) -> None:
        try:
            entries = self._fetch()
        except (StorageUnavailable, SQLAlchemyError) as exc:
            log.warning("whitelist not re-read from the database (%s); keeping the previous entries",
                        cause(exc))
            return
        finally:
            self._refreshing.release()
        if entries != self._db:
            self._db = entries
            self._checked = 0.0  # the next get() builds the rules with them


# --------------------------------------------------------------------------- library


def _keyed(kind: object, entry: object, field: str = "entry") -> tuple[str, str, str]:
    """(kind, compared key, entry as given) of a valid entry (ValidationError naming the field and the
    reason)."""
    if not isinstance(kind, str) or kind.strip().lower() not in KINDS:
        raise ValidationError("kind", f"must be url or cbn, got {kind!r}")
    kind = kind.strip().lower()
    if not isinstance(entry, str):
        raise ValidationError(field, f"must be a string, got {type(entry).__name__}")
    text = entry.strip()
    try:
        return kind, check_entry(kind, text), text
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None


def _row(kind: object, entry: object, note: object, source: object, ctx: Context,
         field: str = "entry") -> dict[str, object]:
    """A validated row (ValidationError naming the field and the reason)."""
    kind, key, text = _keyed(kind, entry, field)
    return {"kind": kind, "key": key, "entry": text, "created_at": ctx.clock(),
            "note": clean_text(note, "note", NOTE_MAX) or None,
            "source": clean_text(source, "source", SOURCE_MAX) or None}


def add(kind: str, entry: str, note: str = "", source: str = "", *, ctx: Context | None = None) -> bool:
    """List ``entry`` (``kind`` url: a URL prefix such as example.in/path; cbn: a call-back number);
    False when it was already listed (it keeps its first date and note)."""
    ctx = ctx or get_context()
    row = _row(kind, entry, note, source, ctx)
    with transaction(ctx.engine) as conn:
        added = guard_store.add_whitelist(conn, [row]) == 1
    log.info("whitelist: %s %s %s", "added" if added else "already listed", row["kind"], row["key"])
    return added


def remove(kind: str, entry: str, *, ctx: Context | None = None) -> bool:
    """Take ``entry`` off the database's whitelist (compared as links compares it: ``https://www.X`` is
    ``X``; ``+91 98...`` is ``98...``); False when it was not there. Entries from settings or the file
    stay where they are."""
    ctx = ctx or get_context()
    kind, key, _ = _keyed(kind, entry)
    with transaction(ctx.engine) as conn:
        removed = guard_store.remove_whitelist(conn, kind, key) == 1
    log.info("whitelist: %s %s %s", "removed" if removed else "not listed", kind, key)
    return removed


def entries(ctx: Context, kind: str | None = None) -> list[guard_store.WhitelistRow]:
    if kind is not None and kind not in KINDS:
        raise ValidationError("kind", f"must be url or cbn, got {kind!r}")
    with reading(ctx.engine) as conn:
        return guard_store.whitelist(conn, kind)


@dataclass(frozen=True)
class ImportResult:
    rows: int
    added: int


def import_file(ctx: Context, path: Path, source: str = "") -> ImportResult:
    """Add every entry of a whitelist file (the ``DLT_WHITELIST_FILE`` format: ``url X`` / ``cbn N``
    lines, # comments). All or nothing: any invalid line refuses the whole file (BulkValidationError
    names each one by its line number)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("file", f"{path} cannot be read: {exc}") from exc
    who = source or f"import {path.name}"
    rows: list[dict[str, object]] = []
    rejects: list[RowError] = []
    lines = whitelist_lines(text)
    for n, (kind, entry) in lines:
        try:
            rows.append(_row(kind, entry, "", who[:SOURCE_MAX], ctx, field=f"line {n}"))
        except ValidationError as exc:
            rejects.append(RowError(n, exc.field, exc.reason))
    if rejects:
        raise BulkValidationError(rejects, len(lines))
    with transaction(ctx.engine) as conn:
        added = guard_store.add_whitelist(conn, rows)
    log.info("whitelist imported from %s: %d entr(ies), %d new", path.name, len(rows), added)
    return ImportResult(len(rows), added)


def export(ctx: Context, fh: IO[str]) -> int:
    """Write the database's entries in the whitelist file format (``import_file`` reads it back)."""
    rows = entries(ctx)
    fh.write("# smsdispatch whitelist export: kind entry\n")
    for r in rows:
        fh.write(f"{r.kind} {r.entry}\n")
    return len(rows)
