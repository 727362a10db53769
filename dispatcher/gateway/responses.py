"""Typed results of every gateway command, and parsers for every documented success shape.

The gateway's documented examples disagree with each other (status casing, ``mobile_number`` vs
``recipient``, a delivery report that says ``"status": "error"`` but carries data, two bulk-send shapes).
The parsers accept all of them and raise :class:`Malformed` for anything else; mapping that (and every
error body) to an exception is done in one place, :func:`dispatcher.gateway.client.interpret`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..channels import Channel

BALANCE = "get-sms-balance"
SENDER_IDS = "get-sender-id"
TEMPLATES = "get-templates"
SEND_SINGLE = "send-single-sms"
SEND_BULK = "send-bulk-sms"
DELIVERY_STATUS = "sms-delivery-status"
#: Commands with side effects: an unclear answer to these is ambiguous, never "unavailable".
SEND_COMMANDS = frozenset({SEND_SINGLE, SEND_BULK})

# --------------------------------------------------------------------------- typed results


@dataclass(frozen=True, slots=True)
class Balance:
    """Remaining credits per package (get-sms-balance)."""

    otp: int
    promotional: int
    transactional: int

    def for_package(self, package: str | Channel) -> int:
        """Credits of a package named as get-sms-balance spells it ("OTP", "Promotional"...), or a Channel."""
        name = package.package if isinstance(package, Channel) else package
        key = name.strip().lower()
        if key not in ("otp", "promotional", "transactional"):
            raise ValueError(f"unknown package {package!r}")
        value: int = getattr(self, key)
        return value


@dataclass(frozen=True, slots=True)
class SenderId:
    """One sender id of the account; ``type`` and ``approve_status`` are the gateway's raw values."""

    id: str
    entity_id: str
    type: str
    channel: Channel | None
    sender_id: str
    purpose: str
    approve_status: str
    approved: bool


@dataclass(frozen=True, slots=True)
class Template:
    """One DLT template of the account; ``type`` and ``template_status`` are the gateway's raw values."""

    id: str
    name: str
    template_id: str
    type: str
    channel: Channel | None
    sender_id: str
    message: str
    template_status: str
    approved: bool


@dataclass(frozen=True, slots=True)
class Recipient:
    """One row of a bulk send: a number (with country code, e.g. 91...) and its text."""

    number: str
    text: str


class Addressed(Protocol):
    """What a send reads of a recipient: a :class:`Recipient`, or any row with these fields (the sender
    passes a batch's rows as they are, without a copy per recipient)."""

    @property
    def number(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A recipient the gateway accepted, with the message id it gave; ``number`` as the answer wrote it
    (with or without 91), ``text`` None when the answer did not echo the message."""

    number: str
    message_id: str
    text: str | None


@dataclass(frozen=True, slots=True)
class RejectedRecipient:
    """A recipient the gateway refused inside an otherwise accepted bulk call (``data.Rejected``)."""

    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """An accepted send. ``listed`` is False for the single-id bulk shape, which names no recipient (see
    :func:`parse_send`); otherwise ``messages`` is MessageData as answered: in any order, possibly with
    recipients missing or listed twice (:mod:`dispatcher.matching` accounts for every recipient)."""

    job_id: str | None
    messages: list[SentMessage] = field(default_factory=list)
    rejected: list[RejectedRecipient] = field(default_factory=list)
    message: str = ""
    error_code: str = ""
    listed: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryEntry:
    """One recipient's report; ``status`` and ``remark`` are verbatim (the sync module maps them)."""

    number: str | None
    message_id: str | None
    status: str
    remark: str | None
    content: str | None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The reports of one job (sms-delivery-status)."""

    job_id: str
    entries: list[DeliveryEntry]


# --------------------------------------------------------------------------- field helpers


class Malformed(ValueError):
    """A success-shaped document whose data does not have a documented shape (internal)."""


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``obj``, matched exactly first and then ignoring case."""
    for name in names:
        if name in obj:
            return obj[name]
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _text(value: Any, what: str, *, required: bool = False) -> str | None:
    """A string field that the gateway may also send as a number; None stays None unless required."""
    if value is None:
        if required:
            raise Malformed(f"{what} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Malformed(f"{what} has type {type(value).__name__}")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


def _req(value: Any, what: str) -> str:
    text = _text(value, what, required=True)
    assert text is not None
    return text


def _field(row: Mapping[str, Any], name: str, what: str) -> str:
    """A catalog field: the key must be there; its value may be empty or null ("")."""
    if name not in row and name.lower() not in {str(k).lower() for k in row}:
        raise Malformed(f"{what} is missing")
    return _text(_get(row, name), what) or ""


def _credits(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise Malformed(f"{what} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise Malformed(f"{what} is not a number") from exc
    if not math.isfinite(number):
        raise Malformed(f"{what} is not finite")
    return math.floor(number)


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise Malformed(f"{what} is not a list")
    return [_dict(item, f"{what}[{i}]") for i, item in enumerate(value)]


def channel_of(type_value: str) -> Channel | None:
    """The Channel a raw sender-id / template type names ("Transactional", "OTP"...), or None."""
    try:
        return Channel.parse(type_value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- parsers (success data only)


def parse_balance(doc: Mapping[str, Any]) -> Balance:
    """``data.balance.{OTP,Promotional,Transactional}``; numbers or numeric strings."""
    bal = _dict(_get(_dict(_get(doc, "data"), "data"), "balance"), "data.balance")
    return Balance(*(_credits(_get(bal, k), f"balance.{k}") for k in ("OTP", "Promotional", "Transactional")))


def parse_sender_ids(doc: Mapping[str, Any]) -> list[SenderId]:
    """``data: [{id, entity_id, type_value, sender_id, purpose_value, approve_status}]``."""
    out = []
    for i, row in enumerate(_list(_get(doc, "data"), "data")):
        def f(name: str, row: Mapping[str, Any] = row, i: int = i) -> str:
            return _field(row, name, f"data[{i}].{name}")
        type_value, status = f("type_value"), f("approve_status")
        out.append(SenderId(id=f("id"), entity_id=f("entity_id"), type=type_value,
                            channel=channel_of(type_value), sender_id=f("sender_id"),
                            purpose=f("purpose_value"), approve_status=status,
                            approved=status.strip().lower() == "approved"))
    return out


def parse_templates(doc: Mapping[str, Any]) -> list[Template]:
    """``data: [{id, name, template_id, type, sender_id, message, template_status}]``."""
    out = []
    for i, row in enumerate(_list(_get(doc, "data"), "data")):
        def f(name: str, row: Mapping[str, Any] = row, i: int = i) -> str:
            return _field(row, name, f"data[{i}].{name}")
        type_value, status = f("type"), f("template_status")
        out.append(Template(id=f("id"), name=f("name"), template_id=f("template_id"), type=type_value,
                            channel=channel_of(type_value), sender_id=f("sender_id"), message=f("message"),
                            template_status=status, approved=status.strip().lower() == "approved"))
    return out


def error_message(data: Mapping[str, Any]) -> str:
    """``data.ErrorMessage`` of a send answer ("" when absent)."""
    return _text(_get(data, "ErrorMessage"), "ErrorMessage") or ""


def parse_send(doc: Mapping[str, Any], recipients: Sequence[Addressed] = ()) -> SendResult:
    """Both documented send shapes.

    * ``data: {ErrorCode, ErrorMessage, JobId, MessageData: [{Number, message_id, message}], Rejected?}``
    * ``data: {status: "success", message_id}`` (the C# bulk example): the single id is what
      sms-delivery-status takes as ``job_id``, so it becomes ``job_id``, even for a lone recipient (it is
      the call's id, not the recipient's); per-recipient ids come from the delivery report.
    """
    data = _dict(_get(doc, "data"), "data")
    message = _text(_get(doc, "message"), "message") or error_message(data)
    code = _get(data, "ErrorCode")
    error_code = f"{code:03d}" if type(code) is int else _text(code, "ErrorCode")
    job_id = _text(_get(data, "JobId", "job_id"), "JobId")
    rows = _get(data, "MessageData")
    rejected_rows = _list(_get(data, "Rejected") or [], "data.Rejected")
    rejected = [RejectedRecipient(_req(_get(x, "Number", "number"), f"Rejected[{i}].Number"),
                                  _text(_get(x, "reason", "message"), f"Rejected[{i}].reason") or "")
                for i, x in enumerate(rejected_rows)]
    messages = []
    if rows is None and job_id is None:  # the C# bulk shape: one id for the whole call
        if (_text(_get(data, "status"), "data.status") or "").strip().lower() != "success":
            raise Malformed("send data has neither MessageData nor a successful message_id")
        job_id = _req(_get(data, "message_id"), "data.message_id")
        return SendResult(job_id, [], rejected, message, error_code or "", listed=False)
    if rows is not None and not isinstance(rows, list):
        raise Malformed("data.MessageData is not a list")
    for i, row in enumerate(rows or ()):
        if type(row) is dict:  # the documented row as the examples write it: read without the general rules
            number, mid, text = row.get("Number"), row.get("message_id"), row.get("message")
            if type(number) is str and type(mid) is str and type(text) is str:
                messages.append(SentMessage(number, mid, text))
                continue
        messages.append(_sent_row(_dict(row, f"data.MessageData[{i}]"), i))
    if job_id is None:
        raise Malformed("MessageData without a JobId")
    return SendResult(job_id, messages, rejected, message, error_code or "")


def _sent_row(row: Mapping[str, Any], i: int) -> SentMessage:
    """One ``MessageData`` row in any documented spelling: keys in any case, numbers as numbers."""
    number = _req(_get(row, "Number", "number", "mobile_number"), f"MessageData[{i}].Number")
    text = _text(_get(row, "message", "text"), f"MessageData[{i}].message")
    return SentMessage(number, _req(_get(row, "message_id"), f"MessageData[{i}].message_id"), text)


def parse_delivery(doc: Mapping[str, Any], job_id: str = "") -> DeliveryReport:
    """``data`` as a list of ``{status_name, mobile_number|recipient, content, message_id}`` or one object
    ``{recipient, sender_id, content, delivery_status_id, delivery_status_remark}``."""
    data = _get(doc, "data")
    rows = _list([data] if isinstance(data, dict) else data, "data")
    entries = []
    for i, row in enumerate(rows):
        status = _req(_get(row, "status_name", "delivery_status_id", "delivery_status"),
                      f"data[{i}].status_name")
        entries.append(DeliveryEntry(
            number=_text(_get(row, "mobile_number", "recipient", "number"), f"data[{i}].mobile_number"),
            message_id=_text(_get(row, "message_id"), f"data[{i}].message_id"),
            status=status,
            remark=_text(_get(row, "delivery_status_remark", "remark"), f"data[{i}].remark"),
            content=_text(_get(row, "content"), f"data[{i}].content")))
    return DeliveryReport(_text(_get(doc, "job_id"), "job_id") or job_id, entries)


PARSERS: dict[str, Callable[[Mapping[str, Any], Sequence[Addressed], str], Any]] = {
    BALANCE: lambda doc, _r, _j: parse_balance(doc),
    SENDER_IDS: lambda doc, _r, _j: parse_sender_ids(doc),
    TEMPLATES: lambda doc, _r, _j: parse_templates(doc),
    SEND_SINGLE: lambda doc, recipients, _j: parse_send(doc, recipients),
    SEND_BULK: lambda doc, recipients, _j: parse_send(doc, recipients),
    DELIVERY_STATUS: lambda doc, _r, job_id: parse_delivery(doc, job_id),
}
"""The success parser of each command: ``(document, recipients sent, job id asked) -> typed result``."""
