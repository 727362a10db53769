"""Calling the application back once per message that reached a final state.

The sync (and, for `failed`, the sync's sweep of the sender's failures) writes one ``hook_outbox`` row per
message in the same transaction as its final transition; :func:`deliver_due` (the hooks beat task)
delivers due rows to each configured target:

* ``HOOK_CALLABLE="pkg.module:function"``: called in the worker with the payload dict;
* ``WEBHOOK_URL``: POSTed the payload as JSON, signed ``X-SMSPoint-Signature: sha256=<hex>`` (HMAC-SHA256
  of the raw body with ``WEBHOOK_SECRET``; check it with :func:`verify`). 2xx is success.

The payload carries the message id, final state, the recipient's number (unmasked: it is the
application's own data, sent only to targets the application configured), the gateway's raw status and
remark, timestamps and the application's metadata; never the API key. The body of a row is the same on
every attempt (the attempt number is the ``X-SMSPoint-Attempt`` header), so receivers can deduplicate on
``message_id``.

A row is leased to one run (its ``next_attempt_at`` moves to the lease's end) while it is delivered. A
failure retries with exponential backoff (``BASE_DELAY`` doubling to ``MAX_DELAY``); after
``MAX_ATTEMPTS`` the row is given up (``done`` with ``last_error``). A target that succeeded is remembered
in ``delivered_to`` and not called again when the other target is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from . import store
from .db import transaction
from .errors import ConfigurationError
from .settings import Settings
from .store import HookAttempt, HookRow, MessageRow

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SMSPoint-Signature"
#: Attempts per row before it is given up.
MAX_ATTEMPTS = 10
#: First retry delay; doubled per attempt up to MAX_DELAY (10 s, 20 s, 40 s ... 1 h).
BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
#: Rows taken per claim; their lease is long enough for every one of them to time out.
CHUNK = 50
#: (connect, read) timeout of a webhook POST, seconds.
WEBHOOK_TIMEOUT = (3.05, 10.0)

CALLABLE, WEBHOOK = "callable", "webhook"


def hooks_enabled(settings: Settings) -> bool:
    """Whether any hook target is configured (outbox rows are only written then)."""
    return bool(settings.hook_callable or settings.webhook_url)


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time); for receivers and tests."""
    return bool(header) and hmac.compare_digest(sign(secret, body), str(header))


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based)."""
    return min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)


def load_callable(path: str) -> Callable[[dict[str, Any]], object]:
    """``pkg.module:function`` (or ``pkg.module.function``) -> the function."""
    module, sep, name = path.partition(":")
    if not sep:
        module, _, name = path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name) if module and name else None
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"HOOK_CALLABLE {path!r} cannot be imported: {exc}") from exc
    if not callable(fn):
        raise ConfigurationError(f"HOOK_CALLABLE {path!r} is not a callable")
    return fn  # type: ignore[no-any-return]


def payload(msg: MessageRow, state: str) -> dict[str, Any]:
    """The JSON-able callback body of one message."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"event": "message.final", "message_id": msg.id, "state": state, "number": msg.number,
            "channel": msg.channel, "sender_id": msg.sender_id, "template_id": msg.template_id,
            "parts": msg.parts, "credits_charged": msg.credits_charged,
            "gateway_job_id": msg.gateway_job_id, "gateway_message_id": msg.gateway_message_id,
            "status_raw": msg.status_raw, "status_remark": msg.status_remark,
            "reason": msg.last_error, "created_at": iso(msg.created_at), "sent_at": iso(msg.sent_at),
            "final_at": iso(msg.final_at), "metadata": json.loads(msg.meta) if msg.meta else None}


@dataclass
class HookResult:
    """What one delivery run did."""

    delivered: int = 0
    retried: int = 0
    gave_up: int = 0
    released: int = 0


class _Targets:
    """The configured targets of one run (callable imported once, one HTTP session)."""

    def __init__(self, settings: Settings, session: requests.Session | None) -> None:
        self.fn = load_callable(settings.hook_callable) if settings.hook_callable else None
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret.get_secret_value()
        if self.url and not self.secret:
            raise ConfigurationError("WEBHOOK_URL is set but WEBHOOK_SECRET is empty: no unsigned hooks")
        self.session = session or requests.Session()
        self.names = [n for n, on in ((CALLABLE, self.fn), (WEBHOOK, self.url)) if on]

    def call(self, target: str, body: dict[str, Any], attempt: int) -> str | None:
        """Deliver to one target; None on success, else the error (short, no secrets)."""
        try:
            if target == CALLABLE:
                assert self.fn is not None
                self.fn(dict(body))
                return None
            raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
            assert self.url is not None
            resp = self.session.post(self.url, data=raw, timeout=WEBHOOK_TIMEOUT, allow_redirects=False,
                                     headers={"Content-Type": "application/json",
                                              SIGNATURE_HEADER: sign(self.secret, raw),
                                              "X-SMSPoint-Message-Id": body["message_id"],
                                              "X-SMSPoint-Attempt": str(attempt)})
            resp.close()
            return None if 200 <= resp.status_code < 300 else f"webhook: HTTP {resp.status_code}"
        except requests.RequestException as exc:
            return f"webhook: {type(exc).__name__}"
        except Exception as exc:  # noqa: BLE001 - the application's callable may raise anything
            return f"callable: {type(exc).__name__}: {exc}"


def deliver_due(ctx: Context, *, limit: int = 500, session: requests.Session | None = None) -> HookResult:
    """Deliver up to ``limit`` due hook rows to every configured target; never raises for a failing hook."""
    result = HookResult()
    if not hooks_enabled(ctx.settings):
        return result
    targets = _Targets(ctx.settings, session)
    try:
        while limit > 0:
            n = _deliver_chunk(ctx, targets, min(limit, CHUNK), result)
            if n == 0:
                break
            limit -= n
    finally:
        if session is None:
            targets.session.close()
    if result.delivered or result.retried or result.gave_up:
        log.info("hooks: %s", result)
    return result


def _lease_s() -> float:
    return CHUNK * (sum(WEBHOOK_TIMEOUT) + 5.0) + 60.0


def _deliver_chunk(ctx: Context, targets: _Targets, size: int, result: HookResult) -> int:
    now = ctx.clock()
    until = now + timedelta(seconds=_lease_s())
    with transaction(ctx.engine) as conn:
        rows = store.claim_hooks(conn, now, until, size)
        msgs = store.hook_messages(conn, [r.message_id for r in rows])
    started = time.monotonic()
    writes = []
    for row in rows:
        if time.monotonic() - started > _lease_s() / 2:  # leave the rest to the next run, still leased
            writes.append(_write(row, row.attempts, False, ctx.clock(), row.last_error,
                                 row.delivered_to))
            result.released += 1
            continue
        writes.append(_attempt(ctx, targets, row, msgs.get(row.message_id), result))
    with transaction(ctx.engine) as conn:
        store.write_hook_results(conn, writes, until)
    return len(rows)


def _attempt(ctx: Context, targets: _Targets, row: HookRow, msg: MessageRow | None,
             result: HookResult) -> HookAttempt:
    mid, attempts = row.message_id, int(row.attempts) + 1
    done_to = [t for t in (row.delivered_to or "").split(",") if t]
    if msg is None:
        log.error("hooks: message %s no longer exists; its hook is dropped", mid)
        return _write(row, attempts, True, ctx.clock(), "message not found", row.delivered_to)
    body = payload(msg, row.state)
    errors = []
    for target in targets.names:
        if target in done_to:
            continue
        error = targets.call(target, body, attempts)
        if error is None:
            done_to.append(target)
        else:
            errors.append(error)
    now = ctx.clock()
    to = ",".join(done_to) or None
    if not errors:
        result.delivered += 1
        return _write(row, attempts, True, now, None, to)
    error = "; ".join(errors)
    if attempts >= MAX_ATTEMPTS:
        result.gave_up += 1
        log.error("hooks: message %s: giving up after %d attempts: %s", mid, attempts, error)
        return _write(row, attempts, True, now, f"gave up: {error}", to)
    result.retried += 1
    log.warning("hooks: message %s: attempt %d failed (%s); next in %s", mid, attempts, error,
                backoff(attempts))
    return _write(row, attempts, False, now + backoff(attempts), error, to)


def _write(row: HookRow, attempts: int, done: bool, next_at: datetime, error: str | None,
           to: str | None) -> HookAttempt:
    return HookAttempt(row.message_id, done, attempts, next_at, error, to)
