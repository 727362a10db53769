"""The response bodies the simulator sends: documented shapes and messages, plus the messages it chose for
rejections the documentation does not describe (all listed in docs/simulator.md)."""

from __future__ import annotations

from typing import Any

from .lifecycle import DELIVERED, EXPIRED, SENT, UNDELIVERED, message_hash
from .state import Message
from .variants import Variants, an_id, message_data, report_number, with_code

# --------------------------------------------------------------------------- documented messages
API_KEY_UNKNOWN = "API Key Does Not Exists"
REQUEST_TYPE_NOT_ALLOWED = "Request Type Not Allowed"
NO_CREDITS = "SMS Credits Not Available"
INVALID_MESSAGE_ID = "Invalid Message ID"
SENT_OK = "SMS Sent Successfully"

# --------------------------------------------------------------------------- chosen for undocumented cases
INVALID_COMMAND = "Invalid API Command"
MISSING_PARAMETER = "Missing Parameter: {name}"
INVALID_CHANNEL = "Invalid Channel: accepted values are 1, 2, 3"
INVALID_UNICODE = "Invalid is_unicode: accepted values are 0, 1"
INVALID_SENDER = "Invalid Sender ID"
SENDER_NOT_APPROVED = "Sender ID Not Approved"
INVALID_TEMPLATE = "Invalid Template ID"
TEMPLATE_NOT_APPROVED = "Template Not Approved"
TEMPLATE_OTHER_SENDER = "Template Does Not Belong To Sender ID"
TEMPLATE_OTHER_CHANNEL = "Template Type Does Not Match Channel"
INVALID_RECIPIENTS = "Invalid Recipient Format: expected a JSON array of {number, text}"
TOO_MANY_RECIPIENTS = "Maximum 2000 Recipients Allowed Per Request"
NO_VALID_RECIPIENTS = "No Valid Recipients"
INVALID_NUMBER = "Invalid Mobile Number"
TEXT_MISMATCH = "Message Does Not Match Template"
INVALID_TEXT = "Invalid Message"
INVALID_BODY = "Invalid Request Body"
#: Fault bodies.
UNAVAILABLE = "Service Temporarily Unavailable"
TOO_MANY_REQUESTS = "Too Many Requests"

_CASINGS = {
    SENT: ("Sent", "sent", "SENT"),
    DELIVERED: ("Delivered", "delivered", "DELIVERED"),
    UNDELIVERED: ("UnDelivered", "undelivered", "UNDELIVERED"),
    EXPIRED: ("Expired", "expired", "EXPIRED"),
}


def error(message: str, **extra: Any) -> dict[str, Any]:
    """``{"status": "error", "message": ...}`` plus extra keys (``data=None`` for the documented ones)."""
    return {"status": "error", "message": message, **extra}


def balance(balances: dict[str, int]) -> dict[str, Any]:
    return {"status": "success", "message": "", "data": {"balance": balances}}


def listing(rows: list[dict[str, str]]) -> dict[str, Any]:
    return {"status": "success", "message": "", "data": rows}


def sent(job_id: str, messages: list[Message], rejected: list[dict[str, str]], *, shape: str,
         bulk: bool, variants: Variants, seed: int) -> dict[str, Any]:
    """The send answer: the PHP shape, or with ``shape='csharp'`` the C# examples' shapes (bulk:
    ``data: {status, message_id}`` where message_id is the job id; single: the PHP shape without ``code``).
    ``variants`` decides how MessageData is written (and sets each message's ``in_answer``), the ids' JSON
    type and the PHP shape's ``code``."""
    if shape == "csharp" and bulk:
        data: dict[str, Any] = {"status": "success", "message_id": an_id(job_id, variants.message_id_type)}
        for m in messages:
            m.in_answer = 0
    else:
        rows, counts = message_data(variants, seed, job_id, messages)
        if not variants.plain_answer:
            for m, n in zip(messages, counts, strict=True):
                m.in_answer = n
        data = {"ErrorCode": "000", "ErrorMessage": "Success",
                "JobId": an_id(job_id, variants.message_id_type), "MessageData": rows}
    if rejected:
        data["Rejected"] = rejected
    body: dict[str, Any] = {"status": "success", "message": SENT_OK, "data": data}
    if shape != "csharp":
        with_code(body, variants.code)
    return body


def report(seed: int, key: str, messages: list[Message], now: float, shape: str,
           number_format: str = "national") -> dict[str, Any]:
    """sms-delivery-status for a job (or one message id): the documented list shape, varying per message
    ``mobile_number``/``recipient`` and status casing, and per job the top-level status ("error" as in the
    documentation's success example) and ``code`` as string or number; or, for one message, the second
    documented shape (``delivery_status_id``/``delivery_status_remark``). Numbers are written as
    ``number_format`` says (variants.report_number)."""
    job_bits = message_hash(seed, f"job:{key}")
    use_single = len(messages) == 1 and (shape == "single" or (shape == "mixed" and job_bits & 4))
    if use_single:
        m = messages[0]
        status, remark = m.status(now)
        return {"status": "success", "message": None,
                "data": {"status": "success",
                         "recipient": report_number(m.number, number_format, seed, m.message_id),
                         "sender_id": m.sender_id, "content": m.text,
                         "delivery_status_id": _cased(status, m.fate.variant),
                         "delivery_status_remark": remark}}
    rows = []
    for m in messages:
        status, _ = m.status(now)
        v = m.fate.variant
        number_key = "recipient" if v & 1 else "mobile_number"
        rows.append({"status_name": _cased(status, v),
                     number_key: report_number(m.number, number_format, seed, m.message_id),
                     "content": m.text, "message_id": m.message_id})
    return {"status": "error" if job_bits & 1 else "success", "job_id": key, "data": rows,
            "code": "200" if job_bits & 2 else 200}


def _cased(status: str, variant: int) -> str:
    options = _CASINGS[status]
    return options[(variant >> 1) % len(options)]
