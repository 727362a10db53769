"""Error mapping of SmsPointClient through a fake requests transport (no network): every error class,
Retry-After parsing, the API key kept out of messages, logs and reprs, and the unsent-only retry policy."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from pydantic import SecretStr
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from dispatcher.channels import Channel
from dispatcher.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    ConfigurationError,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    InsufficientCredits,
    InvalidJobId,
    RateLimited,
    RequestNotAllowed,
    UnexpectedResponse,
    ValidationError,
)
from dispatcher.gateway import Recipient, SmsPointClient, parse_retry_after, unsent_retry
from dispatcher.settings import Settings

KEY = "sk-live-9f8e7d6c5b4a"
Reply = tuple[int, str, dict[str, str]] | BaseException
OK_SEND = {"status": "success", "message": "SMS Sent Successfully", "code": 200,
           "data": {"ErrorCode": "000", "ErrorMessage": "Success", "JobId": "J1",
                    "MessageData": [{"Number": "919812345678", "message_id": "M1", "message": "hi"}]}}
OK_BALANCE = {"status": "success", "message": "", "data": {"balance": {"OTP": 1, "Promotional": 2,
                                                                       "Transactional": 3}}}


class FakeAdapter(BaseAdapter):
    """Answers each request with the next canned reply (status, body, headers) or raises it."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__()
        self.replies = replies
        self.sent: list[tuple[requests.PreparedRequest, Any]] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        self.sent.append((request, timeout))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, BaseException):
            raise reply
        status, body, headers = reply
        resp = requests.Response()
        resp.status_code, resp._content = status, body.encode()
        resp.headers = CaseInsensitiveDict(headers)
        resp.request, resp.url = request, request.url or ""
        return resp

    def close(self) -> None:
        pass


def client_with(*replies: Reply) -> tuple[SmsPointClient, FakeAdapter]:
    session = requests.Session()
    adapter = FakeAdapter(list(replies))
    session.mount("http://", adapter)
    return SmsPointClient("http://gw.test/api/v1/", KEY, session=session, read_timeout=7.5), adapter


def send(client: SmsPointClient) -> Any:
    return client.send_single("919812345678", "hi", sender_id="ACMEIN", template_id="T1",
                              channel=Channel.TRANSACTIONAL, is_unicode=False)


def ok(body: dict[str, Any], status: int = 200, **headers: str) -> Reply:
    return status, json.dumps(body), headers


def refused() -> BaseException:
    conn_error = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/api/v1/x", conn_error))  # type: ignore[arg-type]


def connect_timeout() -> BaseException:
    reason = ConnectTimeoutError(None, "connect timed out")
    return requests.ConnectTimeout(MaxRetryError(None, "/api/v1/x", reason))  # type: ignore[arg-type]


def read_timeout() -> BaseException:
    return requests.ReadTimeout(ReadTimeoutError(None, "/api/v1/x", "Read timed out."))  # type: ignore[arg-type]


def reset() -> BaseException:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


def disconnected() -> BaseException:
    cause = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.ConnectionError(ProtocolError("Connection aborted.", cause))


def truncated() -> BaseException:
    return requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken: IncompleteRead"))


# ----------------------------------------------------------------------------- transport details


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_requests_are_posts_with_key_accept_and_explicit_timeouts(encoding: str) -> None:
    """Bulk sends POST the documented fields (recipient as a JSON list) as form fields (the PHP example) or
    as one JSON object of strings (the C# example), with the key header and (connect, read) timeouts."""
    client, adapter = client_with(ok(OK_SEND))
    client.bulk_encoding = encoding
    client.send_bulk([Recipient("919812345678", "hi"), Recipient("919812345679", "yo")], sender_id="ACMEIN",
                     template_id="T1", channel=Channel.OTP, is_unicode=True)
    request, timeout = adapter.sent[0]
    assert request.method == "POST" and request.url == "http://gw.test/api/v1/send-bulk-sms"
    assert request.headers["key"] == KEY and request.headers["Accept"] == "application/json"
    if encoding == "form":
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = {k: v[0] for k, v in parse_qs(str(request.body)).items()}
    else:
        assert request.headers["Content-Type"] == "application/json"
        fields = json.loads(request.body)
        assert all(isinstance(v, str) for v in fields.values())  # as the C# example: strings only
    assert KEY not in str(request.body)
    assert json.loads(fields.pop("recipient")) == [{"number": "919812345678", "text": "hi"},
                                                   {"number": "919812345679", "text": "yo"}]
    assert fields == {"sender_id": "ACMEIN", "template_id": "T1", "channel": "3", "is_unicode": "1"}
    assert timeout == (3.05, 7.5)


def test_channel_map_and_settings() -> None:
    """from_settings takes URL, key, timeouts and channel numbers from the one Settings object."""
    settings = Settings(smspoint_api_key=SecretStr(KEY), smspoint_base_url="http://gw.test/api/v1",
                        read_timeout=9, channel_map={"transactional": 7, "promotional": 8, "otp": 9})
    client = SmsPointClient.from_settings(settings)
    assert client.timeout == (3.05, 9.0) and client.channel_map["otp"] == 9
    client.close()


def test_more_than_2000_recipients_is_refused_before_http() -> None:
    """A bulk of 2001 raises ValidationError('recipients') (a ValueError) and makes no call."""
    client, adapter = client_with(ok(OK_SEND))
    with pytest.raises(ValidationError) as info:
        client.send_bulk([Recipient(f"9198{i:08d}", "x") for i in range(2001)], sender_id="S",
                         template_id="T", channel=Channel.PROMOTIONAL, is_unicode=False)
    assert info.value.field == "recipients" and isinstance(info.value, ValueError) and adapter.sent == []


def test_empty_key_is_a_configuration_error() -> None:
    """A client without an API key cannot be built."""
    with pytest.raises(ConfigurationError):
        SmsPointClient("http://gw.test", "")


# ----------------------------------------------------------------------------- HTTP and body mapping


@pytest.mark.parametrize(("reply", "error"), [
    (ok({"status": "error", "message": "API Key Does Not Exists"}), AuthenticationFailed),
    (ok({"status": "error", "message": "Unauthorized"}, 401), AuthenticationFailed),
    (ok({"status": "error", "message": "Forbidden"}, 403), AuthenticationFailed),
    (ok({"status": "error", "message": "Request Type Not Allowed"}), RequestNotAllowed),
    (ok({"status": "error", "message": "SMS Credits Not Available", "data": None}), InsufficientCredits),
    (ok({"status": "error", "message": "Invalid Sender ID"}), GatewayRejected),
    (ok({"status": "error", "message": "Invalid Sender ID"}, 422), GatewayRejected),
    ((400, "<html>Bad Request</html>", {}), GatewayRejected),
    (ok({"status": "success", "message": "", "data": {"ErrorCode": "021", "ErrorMessage": "DLT"}}),
     GatewayRejected),
    (ok({"message": "slow down"}, 429, **{"Retry-After": "3"}), RateLimited),
    ((500, "Internal Server Error", {}), AmbiguousOutcome),
    ((502, "<html><center>502 Bad Gateway</center></html>", {}), AmbiguousOutcome),
    ((200, "<html>502 Bad Gateway</html>", {}), AmbiguousOutcome),
    ((200, '{"status": "success", "data": {"JobId"', {}), AmbiguousOutcome),
    (ok({"status": "success", "data": {"JobId": "J", "MessageData": [{"Number": []}]}}), AmbiguousOutcome),
])
def test_send_answers(reply: Reply, error: type[GatewayError]) -> None:
    """Each kind of send answer maps to exactly its error class."""
    client, _ = client_with(reply)
    with pytest.raises(GatewayError) as info:
        send(client)
    assert type(info.value) is error and info.value.command == "send-single-sms"


@pytest.mark.parametrize(("reply", "error"), [
    ((503, "Service Unavailable", {}), GatewayUnavailable),
    ((502, "<html>502 Bad Gateway</html>", {}), GatewayUnavailable),
    ((200, "<html>502 Bad Gateway</html>", {}), UnexpectedResponse),
    ((200, '{"status": "success", "data": {"bal', {}), UnexpectedResponse),
    (ok({"status": "success", "data": {"balance": {"OTP": "x", "Promotional": 0, "Transactional": 0}}}),
     UnexpectedResponse),
    (ok({"status": "error", "message": "Invalid Message ID", "data": None}), InvalidJobId),
])
def test_read_answers(reply: Reply, error: type[GatewayError]) -> None:
    """On reads, 5xx is retryable GatewayUnavailable and malformed bodies UnexpectedResponse with status."""
    client, _ = client_with(reply)
    with pytest.raises(GatewayError) as info:
        client.delivery_status("J1") if error is InvalidJobId else client.balance()
    assert type(info.value) is error and info.value.status_code == reply[0]  # type: ignore[index]


def test_ambiguous_send_chains_the_unexpected_response() -> None:
    """An HTML 502 on a send is AmbiguousOutcome raised from an UnexpectedResponse with the excerpt."""
    client, _ = client_with((502, "<html>" + "x" * 500 + "</html>", {}))
    with pytest.raises(AmbiguousOutcome) as info:
        send(client)
    cause = info.value.__cause__
    assert isinstance(cause, UnexpectedResponse) and cause.status_code == 502 and len(cause.body) == 200


# ----------------------------------------------------------------------------- transport failures


@pytest.mark.parametrize(("failure", "on_send", "on_read"), [
    (refused, GatewayUnavailable, GatewayUnavailable),
    (connect_timeout, GatewayUnavailable, GatewayUnavailable),
    (lambda: requests.exceptions.SSLError("handshake failed"), GatewayUnavailable, GatewayUnavailable),
    (read_timeout, AmbiguousOutcome, GatewayUnavailable),
    (reset, AmbiguousOutcome, GatewayUnavailable),
    (disconnected, AmbiguousOutcome, GatewayUnavailable),
    (truncated, AmbiguousOutcome, GatewayUnavailable),
])
def test_transport_failures(failure: Callable[[], BaseException], on_send: type[GatewayError],
                            on_read: type[GatewayError]) -> None:
    """Unsent failures are GatewayUnavailable; after-sending failures are ambiguous on sends only."""
    exc = failure()
    client, _ = client_with(exc)
    with pytest.raises(GatewayError) as sent_info:
        send(client)
    with pytest.raises(GatewayError) as read_info:
        client.templates()
    assert type(sent_info.value) is on_send and sent_info.value.__cause__ is exc
    assert type(read_info.value) is on_read


# ----------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), (" 2.5 ", 2.5), ("-4", 0.0), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0), (None, None), ("", None), ("soon", None), ("nan", None),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """Retry-After is read as delta-seconds or an HTTP-date relative to now, else None."""
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == seconds


@pytest.mark.parametrize(("headers", "after"), [({"Retry-After": "7"}, 7.0), ({"retry-after": "1.5"}, 1.5),
                                                ({}, None)])
def test_rate_limited_carries_retry_after(headers: dict[str, str], after: float | None) -> None:
    """HTTP 429 is RateLimited with the header's seconds (or None), whatever the command."""
    client, _ = client_with((429, "Too Many Requests", headers))
    with pytest.raises(RateLimited) as info:
        client.sender_ids()
    assert info.value.retry_after == after


# ----------------------------------------------------------------------------- the key stays secret


def test_api_key_never_in_errors_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    """Even when the gateway echoes the key, no error message, body, cause, log line or repr shows it."""
    caplog.set_level(logging.DEBUG)
    echoes: list[Reply] = [
        ok({"status": "error", "message": f"API Key {KEY} Does Not Exists"}),
        ok({"status": "error", "message": f"key {KEY} unknown"}),
        (502, f"<html>{KEY}</html>", {}), (200, f"<html>{KEY}</html>", {}), (429, KEY, {"Retry-After": KEY}),
        refused(), read_timeout(),
    ]
    errors: list[BaseException] = []
    for reply in echoes:
        client, _ = client_with(reply)
        for call in (send, lambda c: c.balance()):
            with pytest.raises(GatewayError) as info:
                call(client)
            errors.append(info.value)
    texts = [caplog.text, repr(client), str(client)]
    for exc in errors:
        cause = exc.__cause__
        texts += [str(exc), repr(exc), getattr(exc, "body", ""), str(cause), getattr(cause, "body", "")]
    assert not [t for t in texts if KEY in t]
    assert "919812345678" not in caplog.text  # numbers are masked in logs


# ----------------------------------------------------------------------------- the retry policy


def test_retry_recovers_from_unsent_errors_with_backoff() -> None:
    """Refused and 503-on-read are retried with growing, jittered waits until the call succeeds."""
    client, adapter = client_with(refused(), (503, "down", {}), ok(OK_BALANCE))
    sleeps: list[float] = []
    policy = unsent_retry(5, 60, sleep=sleeps.append, rng=lambda: 1.0)
    assert policy(client.balance).transactional == 3
    assert len(adapter.sent) == 3 and sleeps == [0.5, 1.0]


@pytest.mark.parametrize("failure", [read_timeout, reset])
def test_retry_never_repeats_an_ambiguous_send(failure: Callable[[], BaseException]) -> None:
    """An AmbiguousOutcome is raised after one call: a send that may have gone is not repeated."""
    client, adapter = client_with(failure(), ok(OK_SEND))
    sleeps: list[float] = []
    with pytest.raises(AmbiguousOutcome):
        unsent_retry(5, 60, sleep=sleeps.append)(send, client)
    assert len(adapter.sent) == 1 and sleeps == []


@pytest.mark.parametrize("reply", [ok({"status": "error", "message": "Invalid Template ID"}),
                                   ok({"status": "error", "message": "SMS Credits Not Available"}),
                                   ok({"status": "error", "message": "API Key Does Not Exists"})])
def test_retry_never_repeats_permanent_errors(reply: Reply) -> None:
    """Rejections, missing credits and a bad key are raised at once."""
    client, adapter = client_with(reply, ok(OK_SEND))
    with pytest.raises(GatewayError):
        unsent_retry(5, 60, sleep=lambda s: None)(send, client)
    assert len(adapter.sent) == 1


def test_retry_waits_at_least_retry_after() -> None:
    """A 429's Retry-After is a floor under the jittered backoff."""
    client, adapter = client_with((429, "", {"Retry-After": "4"}), ok(OK_SEND))
    sleeps: list[float] = []
    assert unsent_retry(3, 60, sleep=sleeps.append, rng=lambda: 0.1)(send, client).job_id == "J1"
    assert sleeps == [4.0] and len(adapter.sent) == 2


def test_retry_stops_at_max_attempts_and_reraises() -> None:
    """After max_attempts calls the last error itself (not tenacity's RetryError) is raised."""
    client, adapter = client_with(refused())
    with pytest.raises(GatewayUnavailable):
        unsent_retry(3, 600, sleep=lambda s: None)(client.balance)
    assert len(adapter.sent) == 3


def test_retry_stops_before_the_elapsed_budget() -> None:
    """It gives up rather than sleep past max_elapsed_s (also when Retry-After exceeds the budget)."""
    client, adapter = client_with(refused())
    sleeps: list[float] = []
    with pytest.raises(GatewayUnavailable):
        unsent_retry(100, 10, sleep=sleeps.append, rng=lambda: 1.0)(client.balance)
    assert sleeps == [0.5, 1.0, 2.0, 4.0] and sum(sleeps) <= 10 and len(adapter.sent) == 5
    client, adapter = client_with((429, "", {"Retry-After": "30"}))
    with pytest.raises(RateLimited):
        unsent_retry(5, 10, sleep=sleeps.append)(client.balance)
    assert len(adapter.sent) == 1
