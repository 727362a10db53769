"""The client's answer mapping under random input (no network): random bytes, truncated and deeply nested
JSON, documented shapes with wrong types, huge bodies and odd Retry-After headers only ever give a typed
result or a DispatcherError; on a send, an unclear answer is AmbiguousOutcome, never a plain crash."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatcher.errors import AmbiguousOutcome, DispatcherError, GatewayError
from dispatcher.gateway import Recipient, interpret, parse_retry_after
from dispatcher.gateway import responses as r

COMMANDS = sorted(r.PARSERS)
SEND = sorted(r.SEND_COMMANDS)
RECIPIENTS = [Recipient("919995000001", "one"), Recipient("919995000002", "two"),
              Recipient("919995000001", "three")]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)
KEYS = ["status", "message", "data", "code", "balance", "OTP", "Promotional", "Transactional", "JobId",
        "job_id", "MessageData", "Number", "number", "message_id", "ErrorCode", "ErrorMessage", "Rejected",
        "reason", "status_name", "mobile_number", "recipient", "content", "delivery_status_id",
        "delivery_status_remark", "type_value", "approve_status", "template_id", "template_status", "id",
        "entity_id", "sender_id", "purpose_value", "name", "type"]
#: Documents built from the gateway's own key names, with values of any type (wrong types on purpose).
shaped = st.recursive(
    st.one_of(json_scalars, st.sampled_from(["success", "error", "Success", "failed", "000", "001"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=30)


def _check(command: str, status: int, body: bytes, headers: dict[str, str]) -> Any:
    try:
        return interpret(command, status, body, headers, recipients=RECIPIENTS, job_id="123")
    except AmbiguousOutcome:
        assert command in r.SEND_COMMANDS
        return None
    except GatewayError as exc:  # typed, with its context, body excerpt bounded
        assert exc.command == command and len(exc.body) <= 200
        return None
    except DispatcherError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(COMMANDS), st.integers(100, 599), st.binary(max_size=300))
def test_random_bytes_give_only_typed_errors(command, status, body):
    """Random bytes with any HTTP status: a typed result or a DispatcherError, never anything else."""
    _check(command, status, body, {})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(COMMANDS), st.sampled_from([200, 200, 200, 201, 400, 404, 500]), shaped,
       st.integers(0, 400), st.booleans())
def test_documented_keys_with_wrong_types_and_truncation(command, status, doc, cut, truncate):
    """Documents made of the gateway's own key names with values of the wrong types, whole or truncated."""
    raw = json.dumps(doc).encode()
    _check(command, status, raw[:cut] if truncate else raw, {})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SEND), st.sampled_from([200, 500, 502, 503, 504]), st.binary(max_size=200))
def test_send_answers_that_are_not_documented_are_ambiguous(command, status, body):
    """On a send, a 5xx or a non-JSON 200 is never mistaken for a refusal: it is AmbiguousOutcome."""
    try:
        json.loads(body)
        is_json = True
    except ValueError:
        is_json = False
    if status == 200 and is_json:
        return
    try:
        interpret(command, status, body, {}, recipients=RECIPIENTS)
    except AmbiguousOutcome:
        return
    except DispatcherError as exc:
        raise AssertionError(f"{type(exc).__name__} for HTTP {status} {body[:40]!r}") from exc
    raise AssertionError("an undocumented send answer was taken as a success")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=40), st.sampled_from([
    "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
    "1e400", "-5", "nan", "inf", "  3.5 ", "Tue, 99 Foo 2015 99:99:99 GMT"])))
def test_retry_after_is_seconds_or_none(value):
    """Retry-After of any shape is a finite number of seconds >= 0, or None."""
    seconds = parse_retry_after(value)
    assert seconds is None or (seconds >= 0 and seconds != float("inf"))
    _check("send-bulk-sms", 429, b'{"status":"error","message":"Too Many Requests"}',
           {"Retry-After": value} if value is not None else {})


@example(depth=100_000)
@settings(max_examples=10, deadline=None)
@given(st.integers(1, 200_000))
def test_deeply_nested_json_is_a_typed_error(depth):
    """A body nested thousands deep (the JSON parser's recursion limit) is a typed error, not a crash."""
    for command in COMMANDS:
        _check(command, 200, b"[" * depth + b"]" * depth, {})
        _check(command, 200, b'{"status":"success","data":' * depth, {})


def test_huge_bodies_are_handled_quickly():
    """A 20 MB answer is parsed or refused in bounded time, the error keeping only a short excerpt."""
    junk = b"x" * 20_000_000
    started = time.monotonic()
    for command in COMMANDS:
        _check(command, 200, junk, {})
    big = {"status": "success", "message": "ok", "pad": "y" * 5_000_000,
           "data": {"ErrorCode": "000", "JobId": "1", "MessageData": [
               {"Number": f"9199950{i:05d}", "message_id": str(i), "message": "t"} for i in range(2000)]}}
    result = interpret("send-bulk-sms", 200, json.dumps(big).encode(), {})
    assert len(result.messages) == 2000
    assert time.monotonic() - started < 20


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COMMANDS), json_values)
def test_parsers_raise_only_malformed(command, doc):
    """The per-command parsers either return a result or raise Malformed (which interpret maps)."""
    try:
        r.PARSERS[command](doc if isinstance(doc, dict) else {"data": doc}, RECIPIENTS, "1")
    except r.Malformed:
        pass


#: MessageData rows in every spelling the documentation allows and a few it does not: keys in any case,
#: numbers and ids as numbers, text echoed, absent or null, and wrong types.
row_values = st.one_of(st.text(max_size=14), st.integers(0, 10**12), st.none(), st.booleans(),
                       st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=2))
row_keys = st.sampled_from(["Number", "number", "NUMBER", "mobile_number", "message_id", "Message_Id",
                            "message", "Message", "text", "other"])
message_rows = st.lists(st.one_of(st.dictionaries(row_keys, row_values, max_size=5),
                                  st.fixed_dictionaries({"Number": st.text(max_size=14),
                                                         "message_id": st.text(max_size=10),
                                                         "message": st.text(max_size=20)}),
                                  row_values), max_size=6)


@settings(max_examples=500, deadline=None)
@given(message_rows, st.randoms(use_true_random=False))
def test_send_rows_read_as_the_general_rules_read_them(rows, rnd):
    """parse_send reads the documented MessageData row ({Number, message_id, message}, strings) without
    the general key rules; every row it reads must give what the general rules give, and a row they
    refuse refuses the answer."""
    rnd.shuffle(rows)
    doc = {"status": "success", "data": {"JobId": "7", "MessageData": rows}}
    try:
        expected: Any = [r._sent_row(r._dict(row, "row"), i) for i, row in enumerate(rows)]
    except r.Malformed:
        expected = r.Malformed
    try:
        got: Any = r.parse_send(doc).messages
    except r.Malformed:
        got = r.Malformed
    assert got == expected
