"""The six gateway commands over the simulator's state. Pure request -> response logic (no HTTP here).

A send is checked in this order: parameters, channel, is_unicode, sender id, template, recipient count,
then each recipient (number, text against the template); then (with the ``drop_rate`` variant) the
recipients the gateway silently loses are set aside; then credits for all the others at once
(all-or-nothing), then acceptance. Per-recipient problems do not fail a bulk call: the other recipients
are accepted and the rejected ones listed in ``data.Rejected`` (an extension).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import InvalidNumber, InvalidText
from ..numbers import normalize
from ..segments import GATEWAY_MAX_CHARS, measure, truncate_text
from . import responses as r
from .catalog import Template
from .lifecycle import MAGIC_INVALID, decide
from .state import Message, SimState
from .variants import kept

MAX_RECIPIENTS = 2000
_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command answered, for the response and the call log."""

    body: dict[str, Any]
    recipients: int = 0
    job_id: str | None = None


class Reject(Exception):
    """A whole call is refused with this message."""

    def __init__(self, message: str, data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)


@lru_cache(maxsize=1 << 18)
def gateway_number(raw: str) -> str:
    """The recipient as the gateway keeps it (91 + 10 digits); raises InvalidNumber."""
    digits = _NON_DIGITS.sub("", normalize(raw, default_region="IN"))
    number = "91" + digits if len(digits) == 10 else digits
    if number == MAGIC_INVALID:
        raise InvalidNumber("rejected by the gateway (magic number)")
    return number


@lru_cache(maxsize=1 << 16)
def cost(text: str) -> tuple[str, int]:
    """The text as sent (truncated past 765 characters) and its credits; raises InvalidText."""
    if len(text) <= GATEWAY_MAX_CHARS:  # the common case: truncate_text would return it unchanged
        try:
            return text, measure(text).credits
        except InvalidText:
            pass
    sent = truncate_text(text)
    return sent, measure(sent).credits


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _required(params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if _text(params.get(name)).strip() == "" and not isinstance(params.get(name), list):
            raise Reject(r.MISSING_PARAMETER.format(name=name))


def _flag(value: Any, allowed: tuple[int, ...], message: str) -> int:
    if isinstance(value, bool):
        value = int(value)
    try:
        number = int(_text(value).strip())
    except ValueError:
        raise Reject(message) from None
    if number not in allowed:
        raise Reject(message)
    return number


def _template(state: SimState, params: dict[str, Any], channel: int) -> tuple[str, Template]:
    sender = state.catalog.sender(_text(params["sender_id"]).strip())
    if sender is None:
        raise Reject(r.INVALID_SENDER)
    if not sender.approved:
        raise Reject(r.SENDER_NOT_APPROVED)
    template = state.catalog.template(_text(params["template_id"]).strip())
    if template is None:
        raise Reject(r.INVALID_TEMPLATE)
    if not template.approved:
        raise Reject(r.TEMPLATE_NOT_APPROVED)
    if template.sender_id != sender.sender_id:
        raise Reject(r.TEMPLATE_OTHER_SENDER)
    if template.type.lower() != state.channel_map[channel].lower():
        raise Reject(r.TEMPLATE_OTHER_CHANNEL)
    return sender.sender_id, template


def _bulk_recipients(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Reject(r.INVALID_RECIPIENTS) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Reject(r.INVALID_RECIPIENTS)
    if not value:
        raise Reject(r.MISSING_PARAMETER.format(name="recipient"))
    if len(value) > MAX_RECIPIENTS:
        raise Reject(r.TOO_MANY_RECIPIENTS)
    return value


def _check(state: SimState, template: Template, raw_number: Any, raw_text: Any) -> tuple[str, str, int]:
    """(number, text as sent, credits) for one recipient; raises Reject with the per-recipient reason."""
    try:
        number = gateway_number(_text(raw_number).strip())
    except InvalidNumber as exc:
        raise Reject(r.INVALID_NUMBER, exc.reason) from None
    text = _text(raw_text)
    try:
        sent, credits = cost(text)
    except InvalidText as exc:
        raise Reject(r.INVALID_TEXT, exc.reason) from None
    reason = state.catalog.mismatch(template, text)
    if reason is not None:
        raise Reject(r.TEXT_MISMATCH, reason)
    return number, sent, credits


def send(state: SimState, params: dict[str, Any], *, bulk: bool) -> Outcome:
    """send-single-sms / send-bulk-sms."""
    names = ("recipient", "sender_id", "template_id", "channel", "is_unicode")
    _required(params, names if bulk else names[:1] + ("message",) + names[1:])
    channel = _flag(params["channel"], tuple(state.channel_map), r.INVALID_CHANNEL)
    is_unicode = _flag(params["is_unicode"], (0, 1), r.INVALID_UNICODE)
    sender_id, template = _template(state, params, channel)
    if template.template_id in (state.faults.faults.reject_templates or ()):
        raise Reject(r.TEMPLATE_NOT_APPROVED)
    items = (_bulk_recipients(params["recipient"]) if bulk
             else [{"number": params["recipient"], "text": params["message"]}])
    accepted: list[tuple[str, str, int]] = []
    positions: list[int] = []
    rejected: list[dict[str, str]] = []
    for position, item in enumerate(items):
        try:
            accepted.append(_check(state, template, item.get("number"), item.get("text")))
            positions.append(position)
        except Reject as exc:
            if not bulk:
                raise Reject(exc.message, {"Rejected": [{"Number": _text(item.get("number")),
                                                         "reason": f"{exc.message}: {exc.data}"}]}) from None
            rejected.append({"Number": _text(item.get("number")), "reason": f"{exc.message}: {exc.data}"})
    if not accepted:
        raise Reject(r.NO_VALID_RECIPIENTS, {"Rejected": rejected})
    variants, seed = state.variants, state.seed
    if variants.drop_rate > 0:  # silently lost: never charged, never in the ledger, yet "success"
        keep = kept(variants.drop_rate, seed, state.peek_job_id(), positions)
        accepted = [a for a, k in zip(accepted, keep, strict=True) if k]
    package = state.channel_map[channel]
    needed = sum(c for _, _, c in accepted)
    if state.faults.faults.credits_exhausted or needed > state.credits[package]:
        raise Reject(r.NO_CREDITS)
    state.credits[package] -= needed
    state.spent[package] += needed
    job_id = state.new_job_id()
    now = state.now()
    lifecycle = state.lifecycle
    messages = []
    for number, text, credits in accepted:
        mid = state.new_message_id()
        messages.append(Message(mid, job_id, number, text, sender_id, template.template_id, channel,
                                is_unicode, credits, now, decide(lifecycle, seed, mid, number, now)))
    state.add_job(job_id, messages)
    body = r.sent(job_id, messages, rejected, shape=state.send_shape, bulk=bulk, variants=variants, seed=seed)
    return Outcome(body, len(items), job_id)


def delivery_status(state: SimState, params: dict[str, Any]) -> Outcome:
    """sms-delivery-status by job id (or, as the C# shape suggests, by a message id)."""
    key = _text(params.get("job_id") or params.get("message_id")).strip()
    if not key:
        raise Reject(r.MISSING_PARAMETER.format(name="job_id"))
    messages = state.jobs.get(key)
    if messages is None:
        single = state.messages.get(key)
        if single is None:
            raise Reject(r.INVALID_MESSAGE_ID)
        messages = [single]
    body = r.report(state.seed, key, messages, state.now(), state.report_shape,
                    state.variants.report_number_format)
    return Outcome(body, len(messages), key)


def run(state: SimState, command: str, params: dict[str, Any]) -> Outcome:
    """Answer one authenticated command (the command name is known to be valid)."""
    try:
        if command == "get-sms-balance":
            return Outcome(r.balance(state.balances()))
        if command == "get-sender-id":
            return Outcome(r.listing(state.catalog.sender_rows()))
        if command == "get-templates":
            return Outcome(r.listing(state.catalog.template_rows()))
        if command == "sms-delivery-status":
            return delivery_status(state, params)
        return send(state, params, bulk=command == "send-bulk-sms")
    except Reject as exc:
        return Outcome(r.error(exc.message, data=exc.data))
