"""The producer API: ``send_sms``, ``send_bulk``, ``get_status``.

A request is validated completely before anything is written. The message row is committed first (the
record of truth), then its id is pushed into its lane in Redis. If Redis is briefly unreachable after
the commit, the message is still accepted: the sweeper pushes queued messages it has not seen move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from . import optout, store, wakeup
from .bulkrows import FIELD as KEY_FIELD
from .bulkrows import check_key, conflict_reason, extras, repeated
from .channels import Channel
from .context import Context, get_context
from .db import reading, transaction
from .errors import (
    BulkValidationError,
    DispatcherError,
    IdempotencyConflict,
    MessageNotFound,
    OptedOut,
    RowError,
    ValidationError,
)
from .estimate import Estimate, Tally, available_credits
from .ids import new_id, new_ids
from .numbers import mask, normalize
from .schedule import effective_send_at
from .segments import measure, smart_encode
from .states import State

log = logging.getLogger(__name__)

BULK_CHUNK = 5000
PUSH_CHUNK = 20_000
#: In send_bulk's per-row push flags: the row's key named an existing message; nothing to push.
EXISTING = 2


@dataclass(frozen=True)
class Duplicate:
    """A bulk row whose idempotency key an earlier request used for the same message: nothing was
    written for it; ``id`` is that message's."""

    index: int
    id: str


class BulkResult(list[str]):
    """The message id of every accepted row, in input order (for a row in ``duplicates``, the id its key
    already named); ``rejects`` lists the rows that were skipped."""

    def __init__(self, ids: Iterable[str] = (), rejects: list[RowError] | None = None) -> None:
        super().__init__(ids)
        self.rejects: list[RowError] = rejects or []
        self.duplicates: list[Duplicate] = []

    @property
    def created(self) -> int:
        """How many rows this call wrote (the accepted rows that were not duplicates)."""
        return len(self) - len(self.duplicates)


@dataclass(frozen=True)
class MessageStatus:
    id: str
    state: str
    hold_reason: str | None
    channel: str
    number_masked: str
    parts: int
    credits: int
    credits_charged: int | None
    created_at: datetime
    send_at: datetime | None
    sending_at: datetime | None
    sent_at: datetime | None
    final_at: datetime | None
    gateway_job_id: str | None
    gateway_message_id: str | None
    status_raw: str | None
    status_remark: str | None
    last_error: str | None
    attempts: int
    metadata: dict[str, Any] | None
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class PendingSms:
    """A validated send_sms request not yet written (``Dispatcher.prepare_sms``): its new row, and the
    lane group it is pushed into once committed (None when it is scheduled for later)."""

    row: dict[str, Any]
    group: str | None


@dataclass(frozen=True)
class Submitted:
    """What ``submit_sms`` did: the message id, its state, and whether this call created it."""

    id: str
    state: str
    created: bool


class Dispatcher:
    """Validates and enqueues messages; safe to share between threads of one process."""

    def __init__(self, context: Context | None = None) -> None:
        self.ctx = context or get_context()
        self.settings = self.ctx.settings

    # ------------------------------------------------------------------ validation

    def _prepare(self, to: object, text: object, channel: Channel, sender_id: str, template_id: str,
                 *, field_prefix: str = "") -> dict[str, Any]:
        number = normalize(to, self.settings.default_region, field=f"{field_prefix}to")  # type: ignore[arg-type]
        if not isinstance(text, str):
            raise ValidationError(f"{field_prefix}text", f"must be a string, got {type(text).__name__}")
        if self.settings.smart_encoding:
            m0 = measure(text)
            if m0.smart_credits is not None:
                text = smart_encode(text)
        m = measure(text)
        catalog = self.ctx.catalog.get()
        slots = catalog.check(channel, sender_id, template_id, text) if catalog is not None else []
        self.ctx.whitelist.get().check(text, slots)
        return {"number": number, "text": text, "parts": m.parts, "credits": m.credits,
                "is_unicode": m.is_unicode}

    @staticmethod
    def _check_common(channel: object, sender_id: object, template_id: object,
                      send_at: datetime | None) -> Channel:
        try:
            ch = Channel.parse(channel)
        except ValueError as exc:
            raise ValidationError("channel", str(exc)) from exc
        for name, value, longest in (("sender_id", sender_id, 32), ("template_id", template_id, 64)):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(name, "is required (a non-empty string from the gateway's catalogue)")
            if "|" in value or len(value) > longest:  # longest: the column's length
                raise ValidationError(name, f"must be at most {longest} characters and contain no '|'")
            if not value.isprintable():  # NUL or a lone surrogate cannot even be stored in PostgreSQL
                raise ValidationError(name, "must not contain control or unprintable characters")
        if send_at is not None and (not isinstance(send_at, datetime) or send_at.utcoffset() is None):
            raise ValidationError("send_at", "must be a timezone-aware datetime")
        return ch

    def _when(self, ch: Channel, send_at: datetime | None, now: datetime) -> datetime | None:
        s = self.settings
        return effective_send_at(now, send_at, ch, start=s.promo_window_start, end=s.promo_window_end,
                                 tz=s.timezone)

    # ------------------------------------------------------------------ send_sms

    def send_sms(self, to: str | int, text: str, *, channel: Channel | str, sender_id: str,
                 template_id: str, idempotency_key: str | None = None, send_at: datetime | None = None,
                 metadata: Mapping[str, Any] | None = None) -> str:
        """Validate and enqueue one message; returns its id at once."""
        return self.submit_sms(to, text, channel=channel, sender_id=sender_id, template_id=template_id,
                               idempotency_key=idempotency_key, send_at=send_at, metadata=metadata).id

    def submit_sms(self, to: str | int, text: str, *, channel: Channel | str, sender_id: str,
                   template_id: str, idempotency_key: str | None = None, send_at: datetime | None = None,
                   metadata: Mapping[str, Any] | None = None) -> Submitted:
        """send_sms, also telling whether this call made the message or found it by its idempotency key."""
        pending = self.prepare_sms(to, text, channel=channel, sender_id=sender_id, template_id=template_id,
                                   idempotency_key=idempotency_key, send_at=send_at, metadata=metadata)
        done = self.commit_sms([pending])[0]
        if isinstance(done, DispatcherError):
            raise done
        return done

    def prepare_sms(self, to: str | int, text: str, *, channel: Channel | str, sender_id: str,
                    template_id: str, idempotency_key: str | None = None, send_at: datetime | None = None,
                    metadata: Mapping[str, Any] | None = None) -> PendingSms:
        """Validate one send_sms request completely (ValidationError names the field); nothing is written.
        ``commit_sms`` writes it."""
        ch = self._check_common(channel, sender_id, template_id, send_at)
        prepared = self._prepare(to, text, ch, sender_id, template_id)
        if idempotency_key is not None:
            check_key(idempotency_key)
        meta = _meta_json(metadata)
        now = self.ctx.clock()
        when = self._when(ch, send_at, now)
        row = _row(new_id(), prepared, ch, sender_id, template_id, now, when, meta)
        row["idempotency_key"] = idempotency_key
        group = None if when else store.group_key(ch.value, sender_id, template_id, prepared["is_unicode"])
        return PendingSms(row, group)

    def commit_sms(self, items: Sequence[PendingSms]) -> list[Submitted | DispatcherError]:
        """Write prepared messages in one transaction, then push the new ones into their lanes. Per item,
        what ``submit_sms`` returns or raises for it alone: Submitted, OptedOut (nothing written for it) or
        IdempotencyConflict (nothing written for it). Of two items with one key, the first is written and
        the second is its repeat (or a conflict). A database failure raises StorageUnavailable and writes
        nothing. Callers that gather concurrent requests (the HTTP API) pay one transaction for many."""
        done: list[Submitted | DispatcherError | None] = [None] * len(items)
        channels: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            channels.setdefault(item.row["channel"], []).append(i)
        with transaction(self.ctx.engine) as conn:
            # The opt-out look-up shares the insert's transaction (one connection checkout); a refused
            # item is not written.
            for channel, which in channels.items():
                hits = optout.suppressed(self.ctx, conn, [items[i].row["number"] for i in which], channel)
                for i in which:
                    reason = hits.get(items[i].row["number"])
                    if reason is not None:
                        done[i] = OptedOut(reason)
            write = [i for i, d in enumerate(done) if d is None]
            taken = store.insert_messages(conn, [items[i].row for i in write])
        pushes = []
        for j, i in enumerate(write):
            row, held = items[i].row, taken.get(j)
            if held is None:
                done[i] = Submitted(str(row["id"]), str(row["state"]), True)
                if items[i].group is not None:
                    pushes.append((str(row["id"]), str(items[i].group)))
            elif held.repeats(row["number"], row["text"], row["channel"]):
                done[i] = Submitted(held.id, held.state, False)
            else:
                done[i] = IdempotencyConflict(str(row["idempotency_key"]), held.id)
        if pushes:
            self._push(pushes)
        return [d for d in done if d is not None]

    def _push(self, items: list[tuple[str, str]]) -> None:
        try:
            wakeup.push(self.ctx, items)
        except Exception as exc:  # noqa: BLE001 - the rows are committed; the sweeper pushes them later
            log.warning("enqueue: %d message(s) committed but not pushed (%s); the sweeper will push them",
                        len(items), exc.__class__.__name__)

    # ------------------------------------------------------------------ send_bulk

    def send_bulk(self, rows: Iterable[Any], *, channel: Channel | str, sender_id: str, template_id: str,
                  send_at: datetime | None = None, skip_invalid: bool = False,
                  chunk_size: int = BULK_CHUNK) -> BulkResult:
        """Validate and enqueue many (number, text) rows (or mappings with number/to and text, and
        optionally ``idempotency_key`` and ``metadata``).

        Streams through the input in chunks (bounded memory besides the returned ids). By default
        nothing is enqueued if any row is invalid and BulkValidationError lists every invalid row;
        with ``skip_invalid`` the valid rows are enqueued and the result's ``rejects`` lists the others.
        A row's idempotency key behaves as send_sms's: a key already used for the same number, text and
        channel gives that message's id (listed in ``duplicates``; nothing written); a key used for
        another message, or given by two rows of the request, is an invalid row (field idempotency_key).
        """
        ch = self._check_common(channel, sender_id, template_id, send_at)
        now = self.ctx.clock()
        when = self._when(ch, send_at, now)
        common = {**_shared(ch, sender_id, template_id, now, when, None), "bulk_id": new_id()}
        ids = BulkResult()
        push = bytearray()  # per accepted row: 0/1 new (is_unicode, for its group key), EXISTING: not pushed
        seen: dict[str, int] = {}  # idempotency key -> the first row that gave it
        total = 0
        chunk: list[store.NewRow] = []
        where: list[int] = []  # each chunk row's index in the input (for rejects found at write)
        # One transaction: every row is written or none is (a crash or an invalid row rolls it all
        # back). Rows stream to the database chunk by chunk, so memory stays bounded.
        # Opt-outs are looked up on a second connection: on PostgreSQL the first one carries the COPY.
        with transaction(self.ctx.engine) as conn, reading(self.ctx.engine) as look, \
                store.MessageWriter(conn, common) as out:
            for index, raw in enumerate(rows):
                total += 1
                try:
                    key, metadata = extras(raw)
                    if key is not None and (again := repeated(seen, key, index)):
                        raise ValidationError(KEY_FIELD, again)
                    number, text = _unpack(raw)
                    p = self._prepare(number, text, ch, sender_id, template_id)
                    meta = _meta_json(metadata)
                except ValidationError as exc:
                    ids.rejects.append(RowError(index, exc.field, exc.reason))
                    continue
                chunk.append((p["number"], p["text"], p["parts"], p["credits"], p["is_unicode"], meta, key))
                where.append(index)
                if len(chunk) >= chunk_size:
                    self._write(out, ch, *self._suppress(look, ch, chunk, where, ids), ids, push)
                    chunk, where = [], []
            self._write(out, ch, *self._suppress(look, ch, chunk, where, ids), ids, push)
            ids.rejects.sort(key=lambda e: e.index)
            if ids.rejects and not skip_invalid:
                raise BulkValidationError(ids.rejects, total)
        if when is None:
            keys = [store.group_key(ch.value, sender_id, template_id, False),
                    store.group_key(ch.value, sender_id, template_id, True), ""]  # by push flag
            for start in range(0, len(ids), PUSH_CHUNK):
                batch = [(mid, keys[push[i]]) for i, mid in enumerate(ids[start:start + PUSH_CHUNK], start)]
                if ids.duplicates:  # their messages were pushed by the request that made them
                    batch = [item for item in batch if item[1]]
                if batch:
                    self._push(batch)
        return ids

    def _suppress(self, conn: Connection, ch: Channel, chunk: list[store.NewRow], where: list[int],
                  ids: BulkResult) -> tuple[list[store.NewRow], list[int]]:
        """The chunk (and its input indexes) without rows to numbers that opted out of the channel (each
        a reject)."""
        hits = optout.suppressed(self.ctx, conn, [r[0] for r in chunk], ch.value) if chunk else {}
        if not hits:
            return chunk, where
        ids.rejects.extend(RowError(i, "to", hits[r[0]]) for i, r in zip(where, chunk, strict=True)
                           if r[0] in hits)
        kept = [(r, i) for r, i in zip(chunk, where, strict=True) if r[0] not in hits]
        return [r for r, _ in kept], [i for _, i in kept]

    @staticmethod
    def _write(out: store.MessageWriter, ch: Channel, chunk: list[store.NewRow], where: list[int],
               ids: BulkResult, push: bytearray) -> None:
        mids = new_ids(len(chunk))
        taken = out.write(mids, chunk)
        if not taken:
            ids.extend(mids)
            push.extend(1 if r[4] else 0 for r in chunk)
            return
        for pos, (mid, r) in enumerate(zip(mids, chunk, strict=True)):
            held = taken.get(pos)
            if held is None:
                ids.append(mid)
                push.append(1 if r[4] else 0)
            elif held.repeats(r[0], r[1], ch.value):
                ids.append(held.id)
                push.append(EXISTING)
                ids.duplicates.append(Duplicate(where[pos], held.id))
            else:
                ids.rejects.append(RowError(where[pos], KEY_FIELD, conflict_reason(held.id)))

    # ------------------------------------------------------------------ estimate

    def estimate(self, rows: Iterable[Any], *, channel: Channel | str, sender_id: str, template_id: str,
                 chunk_size: int = BULK_CHUNK) -> Estimate:
        """What ``send_bulk`` of these rows would enqueue, refuse and cost, and the balance left after;
        validated exactly as send_bulk validates (opt-outs included). Nothing is written or enqueued."""
        ch = self._check_common(channel, sender_id, template_id, None)
        tally = Tally(ch.value, ch.package, smart_encoding=self.settings.smart_encoding)
        pending: list[tuple[int, str, str, str]] = []
        with reading(self.ctx.engine) as look:
            for index, raw in enumerate(rows):
                try:
                    number, text = _unpack(raw)
                    p = self._prepare(number, text, ch, sender_id, template_id)
                except ValidationError as exc:
                    tally.refuse(RowError(index, exc.field, exc.reason))
                    continue
                pending.append((index, p["number"], p["text"], text))
                if len(pending) >= chunk_size:
                    self._tally(look, ch, pending, tally)
                    pending = []
            self._tally(look, ch, pending, tally)
        return tally.result(available_credits(self.ctx, ch.package))

    def _tally(self, conn: Connection, ch: Channel, pending: list[tuple[int, str, str, str]],
               tally: Tally) -> None:
        hits = optout.suppressed(self.ctx, conn, [r[1] for r in pending], ch.value) if pending else {}
        for index, number, text, given in pending:
            if number in hits:
                tally.refuse(RowError(index, "to", hits[number]))
                continue
            m = measure(text)
            try:
                original = measure(given) if given != text else m
            except ValidationError:  # only smart encoding made it fit
                original = m
            tally.accept(index, text, m, original)

    # ------------------------------------------------------------------ get_status

    def get_status(self, message_id: str) -> MessageStatus:
        """The message's state, timestamps, gateway ids, credits and last error."""
        if not isinstance(message_id, str) or len(message_id) > 32 or not message_id.isprintable():
            raise MessageNotFound(f"no message with id {message_id!r}")  # not an id we could have made
        with reading(self.ctx.engine) as conn:
            row = store.get_message(conn, message_id)
            history = store.events_of(conn, message_id) if row else []
        if row is None:
            raise MessageNotFound(f"no message with id {message_id!r}")
        return MessageStatus(
            id=row.id, state=row.state, hold_reason=row.hold_reason, channel=row.channel,
            number_masked=mask(row.number), parts=row.parts, credits=row.credits,
            credits_charged=row.credits_charged, created_at=row.created_at, send_at=row.send_at,
            sending_at=row.sending_at, sent_at=row.sent_at, final_at=row.final_at,
            gateway_job_id=row.gateway_job_id, gateway_message_id=row.gateway_message_id,
            status_raw=row.status_raw, status_remark=row.status_remark, last_error=row.last_error,
            attempts=row.attempts, metadata=json.loads(row.meta) if row.meta else None,
            history=history)


def _unpack(raw: Any) -> tuple[Any, Any]:
    if isinstance(raw, Mapping):
        number = raw.get("number", raw.get("to"))
        if number is None:
            raise ValidationError("number", "missing (give 'number' or 'to')")
        if "text" not in raw:
            raise ValidationError("text", "missing")
        return number, raw["text"]
    if isinstance(raw, (tuple, list)) and len(raw) >= 2:
        return raw[0], raw[1]
    raise ValidationError("row", "must be (number, text) or a mapping with number and text")


def _meta_json(metadata: Mapping[str, Any] | None) -> str | None:
    if metadata is None:
        return None
    try:
        out = json.dumps(dict(metadata), separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError("metadata", f"must be JSON-serialisable: {exc}") from exc
    if len(out) > 4000:
        raise ValidationError("metadata", "must be at most 4000 characters as JSON")
    return out


def _shared(ch: Channel, sender_id: str, template_id: str, now: datetime, when: datetime | None,
            meta: str | None) -> dict[str, Any]:
    """The columns of a new message that do not depend on its number and text (store.VARYING)."""
    return {"state": (State.SCHEDULED if when else State.QUEUED).value, "hold_reason": None,
            "channel": ch.value, "sender_id": sender_id, "template_id": template_id,
            "idempotency_key": None, "meta": meta, "bulk_id": None, "batch_id": None, "attempts": 0,
            "created_at": now, "send_at": when, "pushed_at": None if when else now, "updated_at": now}


def _row(mid: str, p: dict[str, Any], ch: Channel, sender_id: str, template_id: str, now: datetime,
         when: datetime | None, meta: str | None) -> dict[str, Any]:
    return {"id": mid, "number": p["number"], "text": p["text"], "parts": p["parts"], "credits": p["credits"],
            "is_unicode": p["is_unicode"], **_shared(ch, sender_id, template_id, now, when, meta)}


_default: Dispatcher | None = None


def _dispatcher() -> Dispatcher:
    global _default
    ctx = get_context()
    if _default is None or _default.ctx is not ctx:
        _default = Dispatcher(ctx)
    return _default


def send_sms(to: str | int, text: str, *, channel: Channel | str, sender_id: str, template_id: str,
             idempotency_key: str | None = None, send_at: datetime | None = None,
             metadata: Mapping[str, Any] | None = None) -> str:
    """Validate and enqueue one SMS; returns the message id. See Dispatcher.send_sms."""
    return _dispatcher().send_sms(to, text, channel=channel, sender_id=sender_id, template_id=template_id,
                                  idempotency_key=idempotency_key, send_at=send_at, metadata=metadata)


def send_bulk(rows: Iterable[Any], *, channel: Channel | str, sender_id: str, template_id: str,
              send_at: datetime | None = None, skip_invalid: bool = False) -> BulkResult:
    """Validate and enqueue many rows; see Dispatcher.send_bulk."""
    return _dispatcher().send_bulk(rows, channel=channel, sender_id=sender_id, template_id=template_id,
                                   send_at=send_at, skip_invalid=skip_invalid)


def get_status(message_id: str) -> MessageStatus:
    """The current status of one message; see Dispatcher.get_status."""
    return _dispatcher().get_status(message_id)
