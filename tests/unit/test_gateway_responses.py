"""Every response example of the gateway's documentation (verbatim, with the few JSON fixes noted), plus
casing variants and malformed bodies, parses to a typed result or the right error class (no network)."""

from __future__ import annotations

import json

import pytest

from dispatcher.channels import Channel
from dispatcher.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    GatewayRejected,
    InsufficientCredits,
    InvalidJobId,
    RequestNotAllowed,
    UnexpectedResponse,
)
from dispatcher.gateway.client import interpret
from dispatcher.gateway.responses import (
    Balance,
    DeliveryEntry,
    DeliveryReport,
    Recipient,
    RejectedRecipient,
    SenderId,
    SendResult,
    SentMessage,
    Template,
)

BALANCE, SENDERS, TEMPLATES = "get-sms-balance", "get-sender-id", "get-templates"
SINGLE, BULK, STATUS = "send-single-sms", "send-bulk-sms", "sms-delivery-status"
ALL_COMMANDS = (BALANCE, SENDERS, TEMPLATES, SINGLE, BULK, STATUS)


def fixed(verbatim: str, *fixes: tuple[str, str]) -> str:
    """Apply each (old, new) fix to a verbatim example; each old text must occur, and the result be JSON."""
    with pytest.raises(ValueError):
        json.loads(verbatim)  # the fix is needed: the documented text itself is not JSON
    text = verbatim
    for old, new in fixes:
        assert old in text, old
        text = text.replace(old, new)
    json.loads(text)
    return text


MISSING_COMMA = ('"message": ""\n"data"', '"message": "",\n"data"')

# ----------------------------------------------------------------------------- verbatim examples

# "Responses" section (and first balance example): only the missing comma after "message": "" is fixed.
DOC_BALANCE_INTRO = fixed('''{
"status": "success",
"message": ""
"data": {
"balance": {
"OTP": 0,
"Promotional": 0,
"Transactional": 0
}
}
}''', MISSING_COMMA)

# Balance API (PHP and C# examples, identical): missing comma fixed; trailing comma after data's "}," removed.
DOC_BALANCE = fixed('''{
"status": "success",
"message": ""
"data": {
"balance": {
"OTP": 0,
"Promotional": 0,
"Transactional": 0
}
},
}''', MISSING_COMMA, ("}\n},\n}", "}\n}\n}"))

# The error objects every command documents (valid JSON as written).
DOC_NO_KEY = '''{
"status": "error",
"message" : "API Key Does Not Exists"
}'''
DOC_NOT_ALLOWED = '''{
"status": "error",
"message" : "Request Type Not Allowed"
}'''
DOC_NO_CREDITS = '''{
"status": "error",
"message": "SMS Credits Not Available",
"data": null
}'''
DOC_INVALID_ID = '''{
"status": "error",
"message": "Invalid Message ID",
"data": null
}'''

# Sender ID API (PHP and C#): missing comma after "message": "" fixed.
DOC_SENDERS = fixed('''{
"status": "success",
"message": ""
"data": [
{
"id": "",
"entity_id": "",
"type_value": "",
"sender_id": "",
"purpose_value": "",
"approve_status": ""
},
{
"id": "",
"entity_id": "",
"type_value": "",
"sender_id": "",
"purpose_value": "",
"approve_status": ""
}
]
}''', MISSING_COMMA)

# Template ID API (PHP and C#): missing comma fixed; trailing comma after the last array element removed.
DOC_TEMPLATES = fixed('''{
"status": "success",
"message": ""
"data": [
{
"id": "",
"name": "",
"template_id": "",
"type": "",
"sender_id": "",
"message": "",
"template_status": ""
},
{
"id": "",
"name": "",
"template_id": "",
"type": "",
"sender_id": "",
"message": "",
"template_status": ""
},
]
}''', MISSING_COMMA, ("},\n]", "}\n]"))

TRAILING_IN_ROW = ('"message": "message to be sent",\n}', '"message": "message to be sent"\n}')

# send-single-sms, PHP example: trailing comma after the row's last member removed.
DOC_SINGLE_PHP = fixed('''{
"status": "success",
"message": "SMS Sent Successfully",
"data": {
"ErrorCode": "000",
"ErrorMessage": "Success",
"JobId": "xxxxxx",
"MessageData": [
{
"Number": "xxxxxxxx",
"message_id": "12345",
"message": "message to be sent",
}
]
},
"code":200
}''', TRAILING_IN_ROW)

# send-single-sms, C# example (no "code"): the same trailing comma removed.
DOC_SINGLE_CSHARP = fixed('''{
"status": "success",
"message": "SMS Sent Successfully",
"data": {
"ErrorCode": "000",
"ErrorMessage": "Success",
"JobId": "xxxxxx",
"MessageData": [
{
"Number": "xxxxxxxx",
"message_id": "12345",
"message": "message to be sent",
}
]
}
}''', TRAILING_IN_ROW)

# send-bulk-sms, PHP example: the trailing comma inside each of the two rows removed.
DOC_BULK_PHP = fixed('''{
"status": "success",
"message": "SMS Sent Successfully",
"data": {
"ErrorCode": "000",
"ErrorMessage": "Success",
"JobId": "xxxxxx",
"MessageData": [
{
"Number": "xxxxxxxx",
"message_id": "12345",
"message": "message to be sent",
},
{
"Number": "xxxxxxxx",
"message_id": "675676",
"message": "message to be sent",
}
]
},
"code":200
}''', TRAILING_IN_ROW)

# send-bulk-sms, C# example: trailing comma after "message_id" removed.
DOC_BULK_CSHARP = fixed('''{
"status": "success",
"message": "SMS Sent Successfully",
"data": {
"status": "success",
"message_id": "12345",
}
}''', ('"message_id": "12345",\n}', '"message_id": "12345"\n}'))

# sms-delivery-status, PHP example: a success that says "status": "error" (valid JSON as written).
DOC_STATUS_PHP = '''{
"status": "error",
"job_id": "xxxxxxxx",
"data": [
{
"status_name": "delivered",
"mobile_number": "xxxxxxxxxx",
"content": "This is message",
"message_id": "your message_id"
},
{
"status_name": "delivered",
"recipient": "xxxxxxxxxx",
"content": "This is message",
"message_id": "your message_id"
}
],
"code": "200"
}'''

# sms-delivery-status, C# example: the second shape (valid JSON as written).
DOC_STATUS_CSHARP = '''{
"status": "success",
"message": null,
"data": {
"status": "success",
"recipient": "9999999999",
"sender_id": "SENDER",
"content": "This is message",
"delivery_status_id": "Delivered",
"delivery_status_remark": ""
}
}'''


# ----------------------------------------------------------------------------- documented successes


@pytest.mark.parametrize("body", [DOC_BALANCE_INTRO, DOC_BALANCE])
def test_documented_balance(body: str) -> None:
    """Both documented balance examples parse to a Balance with per-package lookup."""
    balance = interpret(BALANCE, 200, body, {})
    assert balance == Balance(otp=0, promotional=0, transactional=0)
    assert balance.for_package("Promotional") == 0 and balance.for_package(Channel.OTP) == 0


def test_documented_sender_ids() -> None:
    """The documented sender-id list (all values empty) parses to unapproved SenderIds without a channel."""
    rows = interpret(SENDERS, 200, DOC_SENDERS, {})
    assert rows == [SenderId("", "", "", None, "", "", "", False)] * 2


def test_documented_templates() -> None:
    """The documented template list parses to unapproved Templates without a channel."""
    rows = interpret(TEMPLATES, 200, DOC_TEMPLATES, {})
    assert rows == [Template("", "", "", "", None, "", "", "", False)] * 2


@pytest.mark.parametrize("body", [DOC_SINGLE_PHP, DOC_SINGLE_CSHARP])
def test_documented_single_send(body: str) -> None:
    """Both send-single-sms examples (with and without "code") give the JobId and the message id."""
    result = interpret(SINGLE, 200, body, {}, recipients=[Recipient("xxxxxxxx", "message to be sent")])
    assert result == SendResult("xxxxxx", [SentMessage("xxxxxxxx", "12345", "message to be sent")], [],
                                "SMS Sent Successfully", "000")


def test_documented_bulk_send_php_shape() -> None:
    """The PHP bulk example gives one SentMessage per MessageData row under the JobId."""
    result = interpret(BULK, 200, DOC_BULK_PHP, {})
    assert result.job_id == "xxxxxx" and result.error_code == "000" and result.rejected == []
    assert [m.message_id for m in result.messages] == ["12345", "675676"]


def test_documented_bulk_send_csharp_shape_one_recipient() -> None:
    """The C# bulk shape's single message_id becomes the job id, never a recipient's message id (the
    report gives that), even for a lone recipient."""
    result = interpret(BULK, 200, DOC_BULK_CSHARP, {}, recipients=[Recipient("919812345678", "hi")])
    assert result == SendResult("12345", [], [], "SMS Sent Successfully", "", listed=False)


def test_documented_bulk_send_csharp_shape_many_recipients() -> None:
    """With several recipients the C# shape gives only the job id (per-number ids come from reports)."""
    result = interpret(BULK, 200, DOC_BULK_CSHARP, {}, recipients=[Recipient("1", "a"), Recipient("2", "b")])
    assert result.job_id == "12345" and result.messages == [] and result.rejected == []


def test_documented_delivery_report_with_error_status_is_success() -> None:
    """The first delivery-status example ("status": "error" with data) is a report, both number keys kept."""
    report = interpret(STATUS, 200, DOC_STATUS_PHP, {}, job_id="asked")
    entry = DeliveryEntry("xxxxxxxxxx", "your message_id", "delivered", None, "This is message")
    assert report == DeliveryReport("xxxxxxxx", [entry, entry])


def test_documented_delivery_report_second_shape() -> None:
    """The second shape (delivery_status_id / remark, no job_id) keeps status and remark verbatim."""
    report = interpret(STATUS, 200, DOC_STATUS_CSHARP, {}, job_id="77")
    entry = DeliveryEntry("9999999999", None, "Delivered", "", "This is message")
    assert report == DeliveryReport("77", [entry])


# ----------------------------------------------------------------------------- documented errors


@pytest.mark.parametrize("command", ALL_COMMANDS)
@pytest.mark.parametrize(("body", "error"), [(DOC_NO_KEY, AuthenticationFailed),
                                             (DOC_NOT_ALLOWED, RequestNotAllowed)])
def test_documented_errors_of_every_command(command: str, body: str, error: type[Exception]) -> None:
    """Every command maps the two documented error objects to their classes."""
    with pytest.raises(error) as info:
        interpret(command, 200, body, {})
    assert info.value.command == command and info.value.status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [SINGLE, BULK])
def test_documented_no_credits(command: str) -> None:
    """"SMS Credits Not Available" with data null is InsufficientCredits on both sends."""
    with pytest.raises(InsufficientCredits):
        interpret(command, 200, DOC_NO_CREDITS, {})


def test_documented_invalid_message_id() -> None:
    """"Invalid Message ID" with data null is InvalidJobId."""
    with pytest.raises(InvalidJobId):
        interpret(STATUS, 200, DOC_INVALID_ID, {})


# ----------------------------------------------------------------------------- casing and type variants


@pytest.mark.parametrize("status", ["Success", "SUCCESS", " success "])
def test_status_casing_success(status: str) -> None:
    """The success status is read in any casing."""
    body = json.loads(DOC_BALANCE) | {"status": status}
    assert interpret(BALANCE, 200, json.dumps(body), {}).otp == 0


@pytest.mark.parametrize(("status", "message"), [("Error", "api key does not exist"),
                                                 ("FAILURE", "API KEY DOES NOT EXISTS"),
                                                 ("failure", "Api Key Does Not Exists")])
def test_error_status_and_message_casing(status: str, message: str) -> None:
    """Error status and the known messages are matched in any casing."""
    with pytest.raises(AuthenticationFailed):
        interpret(BALANCE, 200, json.dumps({"status": status, "message": message}), {})


def test_values_as_numbers_and_key_casing() -> None:
    """Credits as numbers or numeric strings and lower-case package keys are accepted."""
    body = {"status": "success", "data": {"balance": {"otp": "12", "Promotional": 7.0, "TRANSACTIONAL": 3}}}
    assert interpret(BALANCE, 200, json.dumps(body), {}) == Balance(12, 7, 3)


def test_catalog_types_map_to_channels() -> None:
    """Raw type and approval values are kept; channel and approved are derived in any casing."""
    senders = {"status": "success", "data": [
        {"id": 1, "entity_id": 1101, "type_value": "TRANSACTIONAL", "sender_id": "ACMEIN",
         "purpose_value": "alerts", "approve_status": "APPROVED"},
        {"id": "2", "entity_id": None, "type_value": "Service", "sender_id": "ACMEOT",
         "purpose_value": "", "approve_status": "Pending"}]}
    rows = interpret(SENDERS, 200, json.dumps(senders), {})
    assert rows[0] == SenderId("1", "1101", "TRANSACTIONAL", Channel.TRANSACTIONAL, "ACMEIN", "alerts",
                               "APPROVED", True)
    assert rows[1].channel is None and rows[1].approved is False and rows[1].entity_id == ""
    templates = {"status": "success", "data": [{"id": 9, "name": "otp", "template_id": "1107", "type": "otp",
                                                 "sender_id": "ACMEOT", "message": "Code {#var#}",
                                                 "template_status": "approved"}]}
    assert interpret(TEMPLATES, 200, json.dumps(templates), {})[0].channel is Channel.OTP


def test_send_numbers_as_numbers_and_rejected_rows() -> None:
    """Numeric Number / message_id / ErrorCode are read as strings; data.Rejected becomes rejections."""
    body = {"status": "success", "message": "SMS Sent Successfully", "code": "200",
            "data": {"ErrorCode": 0, "ErrorMessage": "Success", "JobId": 42,
                     "MessageData": [{"Number": 919812345678, "message_id": 7, "message": "hi"}],
                     "Rejected": [{"Number": "919000000004", "reason": "Invalid Mobile Number"}]}}
    result = interpret(BULK, 200, json.dumps(body), {})
    assert result == SendResult("42", [SentMessage("919812345678", "7", "hi")],
                                [RejectedRecipient("919000000004", "Invalid Mobile Number")],
                                "SMS Sent Successfully", "000")


def test_delivery_statuses_kept_verbatim() -> None:
    """Status casing in reports is not normalised here (the sync module maps statuses)."""
    rows = [{"status_name": s, "mobile_number": "98", "message_id": "1"}
            for s in ("UnDelivered", "EXPIRED", "sent")]
    body = {"status": "success", "job_id": 5, "data": rows, "code": 200}
    report = interpret(STATUS, 200, json.dumps(body), {})
    assert [e.status for e in report.entries] == ["UnDelivered", "EXPIRED", "sent"] and report.job_id == "5"


# ----------------------------------------------------------------------------- refusals and malformed bodies


@pytest.mark.parametrize("command", [SINGLE, BULK])
def test_other_send_error_is_rejected(command: str) -> None:
    """An undocumented error message without data on a send is a permanent GatewayRejected."""
    with pytest.raises(GatewayRejected, match="Invalid Template ID"):
        interpret(command, 200, json.dumps({"status": "error", "message": "Invalid Template ID"}), {})


def test_error_code_other_than_000_is_rejected() -> None:
    """A send whose data.ErrorCode is not "000" is GatewayRejected carrying the code and message."""
    body = {"status": "success", "data": {"ErrorCode": "013", "ErrorMessage": "Invalid Sender"}}
    with pytest.raises(GatewayRejected, match="013: Invalid Sender"):
        interpret(SINGLE, 200, json.dumps(body), {})


MALFORMED = [
    "<html><body>502 Bad Gateway</body></html>",
    DOC_BALANCE[:40],  # truncated JSON
    "[]",
    json.dumps({"status": 1}),
    json.dumps({"status": "pending", "data": {}}),
    json.dumps({"status": "success", "data": None}),
    json.dumps({"status": "success", "data": {"balance": {"OTP": [], "Promotional": 0, "Transactional": 0}}}),
    json.dumps({"status": "success", "data": {"balance": {"OTP": 0}}, "code": {"x": 1}}),
    json.dumps({"status": "success", "data": [{"id": {"nested": 1}}]}),
    json.dumps({"status": "success", "data": {"JobId": "9", "MessageData": [{"Number": "9"}]}}),
    json.dumps({"status": "success", "data": [{"mobile_number": "98"}]}),
]


@pytest.mark.parametrize("command", [BALANCE, SENDERS, TEMPLATES, STATUS])
@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_read_is_unexpected(command: str, body: str) -> None:
    """On a read, HTML, truncated JSON or wrong types are UnexpectedResponse with status and excerpt."""
    with pytest.raises(UnexpectedResponse) as info:
        interpret(command, 200, body, {})
    assert info.value.status_code == 200 and info.value.body == body[:200]


@pytest.mark.parametrize("command", [SINGLE, BULK])
@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_send_is_ambiguous(command: str, body: str) -> None:
    """On a send the same bodies are AmbiguousOutcome raised from the UnexpectedResponse."""
    with pytest.raises(AmbiguousOutcome) as info:
        interpret(command, 200, body, {})
    assert isinstance(info.value.__cause__, UnexpectedResponse)


def test_excerpt_is_at_most_200_characters() -> None:
    """A long body is cut to a 200-character excerpt on the error."""
    with pytest.raises(UnexpectedResponse) as info:
        interpret(BALANCE, 200, "x" * 5000, {})
    assert len(info.value.body) == 200
