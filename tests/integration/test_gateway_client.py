"""SmsPointClient against the real gateway simulator over loopback HTTP: every command, every error class,
and what the simulator's ledger says really happened when the client could not know."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from dispatcher.channels import Channel
from dispatcher.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    InsufficientCredits,
    InvalidJobId,
    RateLimited,
    RequestNotAllowed,
    UnexpectedResponse,
)
from dispatcher.gateway import Recipient, SendResult, SmsPointClient, interpret, unsent_retry
from dispatcher.simulator import SimulatorProcess

pytestmark = pytest.mark.integration

SENDER, TEMPLATE = "SMSPNT", "1207161000000000002"
OTP_SENDER, OTP_TEMPLATE = "OTPSMS", "1207161000000000004"
NUMBER, OTHER, INVALID, DELIVERED = "919812345678", "919812345679", "919000000004", "919000000001"


def text(n: int = 1) -> str:
    return f"Payment of Rs {n}00 received for account AC{n:04d}. Thank you. - SMSPNT"


@pytest.fixture
def sim(shared_simulator: SimulatorProcess) -> SimulatorProcess:
    """The session's simulator, reset to its start-up state (no faults, default credits) for this test."""
    return shared_simulator


@pytest.fixture
def client(sim: SimulatorProcess) -> Iterator[SmsPointClient]:
    with SmsPointClient(sim.base_url, sim.api_key, connect_timeout=2.0, read_timeout=5.0) as c:
        yield c


def send_one(client: SmsPointClient, number: str = NUMBER) -> SendResult:
    return client.send_single(number, text(), sender_id=SENDER, template_id=TEMPLATE,
                              channel=Channel.TRANSACTIONAL, is_unicode=False)


# ----------------------------------------------------------------------------- every command


def test_balance_follows_the_simulator_credits(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """balance() returns the simulator's packages, and changes when the credits change."""
    sim.admin.set_credits(OTP=5, Promotional=6, Transactional=7)
    balance = client.balance()
    assert (balance.otp, balance.promotional, balance.transactional) == (5, 6, 7)
    assert balance.for_package(Channel.TRANSACTIONAL.package) == 7


def test_catalog_reads(client: SmsPointClient) -> None:
    """sender_ids() and templates() give typed rows with channel and approval derived."""
    senders = {s.sender_id: s for s in client.sender_ids()}
    assert senders["OTPSMS"].channel is Channel.OTP and senders["OTPSMS"].approved
    assert senders["PNDSMS"].approved is False and senders["PNDSMS"].approve_status == "Pending"
    templates = {t.template_id: t for t in client.templates()}
    assert templates[TEMPLATE].channel is Channel.TRANSACTIONAL and templates[TEMPLATE].sender_id == SENDER
    assert templates["1207161000000000006"].approved is False


def test_send_single_is_in_the_ledger(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """A single send returns the job and message id that the simulator recorded."""
    result = send_one(client)
    assert result.error_code == "000" and len(result.messages) == 1 and result.rejected == []
    ledger = sim.admin.ledger(result.job_id)
    assert [(m["number"], m["message_id"]) for m in ledger] == [(NUMBER, result.messages[0].message_id)]


def test_send_bulk_with_a_rejected_number(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """Per-recipient rejections come back as data, the others are sent under one job."""
    rows = [Recipient(NUMBER, text(1)), Recipient(INVALID, text(2)), Recipient(OTHER, text(3))]
    result = client.send_bulk(rows, sender_id=SENDER, template_id=TEMPLATE, channel=Channel.TRANSACTIONAL,
                              is_unicode=False)
    assert sorted(m.number for m in result.messages) == [NUMBER, OTHER]
    assert [r.number for r in result.rejected] == [INVALID] and result.rejected[0].reason
    assert len(sim.admin.ledger(result.job_id)) == 2


def test_bulk_csharp_shape_gives_the_job_id(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """With the C# send shape the single message_id is the job id, usable for delivery_status, and no
    recipient's message id (the report gives those)."""
    sim.admin.set_shapes(send_shape="csharp")
    one = client.send_bulk([Recipient(NUMBER, text())], sender_id=SENDER, template_id=TEMPLATE,
                           channel=Channel.TRANSACTIONAL, is_unicode=False)
    assert one.job_id and one.messages == [] and not one.listed
    two = client.send_bulk([Recipient(NUMBER, text()), Recipient(OTHER, text(2))], sender_id=SENDER,
                           template_id=TEMPLATE, channel=Channel.TRANSACTIONAL, is_unicode=False)
    assert two.job_id and two.messages == []
    assert sorted(e.number or "" for e in client.delivery_status(two.job_id).entries) == sorted(
        [NUMBER[2:], OTHER[2:]])


def test_delivery_status_reports(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """delivery_status() gives one verbatim entry per message, final after the clock moves on."""
    result = client.send_bulk([Recipient(DELIVERED, text()), Recipient(NUMBER, text(2))], sender_id=SENDER,
                              template_id=TEMPLATE, channel=Channel.TRANSACTIONAL, is_unicode=False)
    assert result.job_id
    sim.admin.advance(4 * 3600)
    report = client.delivery_status(result.job_id)
    assert report.job_id == result.job_id and len(report.entries) == 2
    by_id = {e.message_id: e for e in report.entries}
    delivered = next(m for m in result.messages if m.number == DELIVERED)
    assert by_id[delivered.message_id].status.lower() == "delivered"


def test_delivery_status_second_shape(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """The single-message report shape keeps delivery_status_id and its remark verbatim."""
    sim.admin.set_shapes(report_shape="single")
    result = send_one(client, DELIVERED)
    sim.admin.advance(4 * 3600)
    report = client.delivery_status(result.messages[0].message_id)
    assert [e.status.lower() for e in report.entries] == ["delivered"]
    assert report.entries[0].remark is not None and report.entries[0].number == DELIVERED[2:]


def test_otp_channel_number(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """The named channel is sent as the gateway's number (otp -> 3), recorded by the simulator."""
    otp = "123456 is your OTP to log in. It is valid for 10 minutes. Do not share it with anyone. - OTPSMS"
    result = client.send_single(NUMBER, otp, sender_id=OTP_SENDER, template_id=OTP_TEMPLATE,
                                channel=Channel.OTP, is_unicode=False)
    assert [m["channel"] for m in sim.admin.ledger(result.job_id)] == [3]


# ----------------------------------------------------------------------------- documented errors


def test_bad_key_is_authentication_failed(sim: SimulatorProcess) -> None:
    """A key the gateway does not know raises AuthenticationFailed on reads and sends."""
    with SmsPointClient(sim.base_url, "not-the-key") as bad:
        with pytest.raises(AuthenticationFailed):
            bad.balance()
        with pytest.raises(AuthenticationFailed):
            send_one(bad)
    assert sim.admin.ledger() == []


def test_credits_exhausted(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """Without credits a send raises InsufficientCredits and nothing is recorded."""
    sim.admin.set_credits(Transactional=0)
    with pytest.raises(InsufficientCredits):
        send_one(client)
    sim.admin.set_credits(Transactional=100)
    sim.admin.set_faults(credits_exhausted=True)
    with pytest.raises(InsufficientCredits):
        send_one(client)
    assert sim.admin.ledger() == []


def test_unknown_template_is_rejected(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """An undocumented refusal (unknown template, invalid lone number) is a permanent GatewayRejected."""
    with pytest.raises(GatewayRejected, match="Template"):
        client.send_single(NUMBER, text(), sender_id=SENDER, template_id="999",
                           channel=Channel.TRANSACTIONAL, is_unicode=False)
    with pytest.raises(GatewayRejected, match="Invalid Mobile Number"):
        send_one(client, INVALID)
    assert sim.admin.ledger() == []


def test_unknown_job_id(client: SmsPointClient) -> None:
    """An unknown job id raises InvalidJobId."""
    with pytest.raises(InvalidJobId):
        client.delivery_status("no-such-job")


def test_request_type_not_allowed(sim: SimulatorProcess) -> None:
    """The simulator's answer to a PUT maps to RequestNotAllowed (the client itself only POSTs)."""
    resp = requests.put(f"{sim.base_url}/get-sms-balance", headers={"key": sim.api_key}, timeout=5)
    with pytest.raises(RequestNotAllowed):
        interpret("get-sms-balance", resp.status_code, resp.content, resp.headers)


# ----------------------------------------------------------------------------- faults


def test_rate_limited_with_retry_after(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """HTTP 429 raises RateLimited carrying the Retry-After seconds."""
    sim.admin.set_faults(rate_429=1, retry_after_s=2)
    with pytest.raises(RateLimited) as info:
        send_one(client)
    assert info.value.retry_after == 2.0 and sim.admin.ledger() == []


def test_html_502(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """An nginx HTML 502 is AmbiguousOutcome on a send, retryable GatewayUnavailable on a read."""
    sim.admin.set_faults(rate_html_error=1)
    with pytest.raises(AmbiguousOutcome) as info:
        send_one(client)
    assert isinstance(info.value.__cause__, UnexpectedResponse) and "502" in info.value.body
    with pytest.raises(GatewayUnavailable):
        client.templates()


def test_503(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """A 503 is AmbiguousOutcome on a send and GatewayUnavailable on a read."""
    sim.admin.set_faults(rate_5xx=1)
    with pytest.raises(AmbiguousOutcome):
        send_one(client)
    with pytest.raises(GatewayUnavailable):
        client.delivery_status("1")


def test_read_timeout_after_accept_is_ambiguous_and_was_sent(sim: SimulatorProcess) -> None:
    """A late answer is AmbiguousOutcome, and the simulator's ledger shows the message was accepted."""
    sim.admin.set_faults(rate_read_timeout_after_accept=1, read_timeout_s=2)
    with SmsPointClient(sim.base_url, sim.api_key, read_timeout=0.5) as hasty:
        with pytest.raises(AmbiguousOutcome):
            send_one(hasty)
        with pytest.raises(GatewayUnavailable):
            hasty.balance()
    assert [m["number"] for m in sim.admin.ledger()] == [NUMBER]


def test_drop_before_read_is_ambiguous_to_the_client(simulator: SimulatorProcess) -> None:
    """A connection dropped after the request was written is ambiguous for a send (here: not recorded)."""
    # A fresh process: the drop fault does not survive admin.reset() (see the report on the simulator).
    simulator.admin.set_faults(rate_drop_before_read=1)
    with SmsPointClient(simulator.base_url, simulator.api_key) as client:
        with pytest.raises(AmbiguousOutcome) as info:
            send_one(client)
        assert isinstance(info.value.__cause__, requests.ConnectionError)
        with pytest.raises(GatewayUnavailable):
            client.sender_ids()
    assert [c["fault"] for c in simulator.admin.calls()] == ["drop_before_read"] * 2
    assert simulator.admin.ledger() == []


def test_auth_failing_fault(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """The auth_failing fault makes every command raise AuthenticationFailed."""
    sim.admin.set_faults(auth_failing=True)
    for call in (client.balance, client.sender_ids, client.templates, lambda: client.delivery_status("1")):
        with pytest.raises(AuthenticationFailed):
            call()


def test_retry_policy_recovers_after_503(client: SmsPointClient, sim: SimulatorProcess) -> None:
    """unsent_retry retries a 503 on a read and succeeds once the fault is gone."""
    sim.admin.set_faults(rate_5xx=1, commands=["get-sms-balance"])

    def heal(seconds: float) -> None:  # the "sleep" between attempts removes the fault
        sim.admin.clear_faults()

    policy = unsent_retry(3, 30, sleep=heal)
    assert policy(client.balance).transactional > 0
    assert [c["http_status"] for c in sim.admin.calls()][-2:] == [503, 200]


# ----------------------------------------------------------------------------- no gateway, or a broken one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_unavailable() -> None:
    """A closed port raises GatewayUnavailable (provably unsent) for sends and reads alike."""
    with SmsPointClient(f"http://127.0.0.1:{free_port()}/api/v1", "k", connect_timeout=1) as nowhere:
        with pytest.raises(GatewayUnavailable):
            send_one(nowhere)
        with pytest.raises(GatewayUnavailable):
            nowhere.balance()


def http(status: str, body: bytes, length: int | None = None) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    size = len(body) if length is None else length
    return head.encode() + f"Content-Length: {size}\r\n\r\n".encode() + body


@pytest.mark.parametrize(("answer", "on_read", "on_send"), [
    (http("200 OK", b"<html>oops</html>"), UnexpectedResponse, AmbiguousOutcome),
    (http("200 OK", b'{"status": "success", "data": {"bal'), UnexpectedResponse, AmbiguousOutcome),
    (http("200 OK", b'{"status": "success", "da', length=400), GatewayUnavailable, AmbiguousOutcome),
    (http("200 OK", b'{"status": "success", "data": {"balance": 3}}'), UnexpectedResponse, AmbiguousOutcome),
])
def test_malformed_answers_over_http(answer: bytes, on_read: type[GatewayError],
                                     on_send: type[GatewayError]) -> None:
    """Non-JSON, truncated or mistyped answers over a real socket: unexpected on reads, ambiguous on sends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:  # a raw HTTP server: one canned answer per connection
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with SmsPointClient(f"http://127.0.0.1:{server.getsockname()[1]}/api/v1", "k", read_timeout=5) as odd:
            with pytest.raises(GatewayError) as read_info:
                odd.balance()
            with pytest.raises(GatewayError) as send_info:
                send_one(odd)
        assert type(read_info.value) is on_read and type(send_info.value) is on_send
    finally:
        thread.join(5)
        server.close()


TRICKY = ["5&00", "1=2", "a+b c", "100%", "\"q\"", "it's", "back\\slash", "₹500", "naïve", "ok 😀", "x%20y"]


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_both_documented_bulk_encodings_arrive_unchanged(sim: SimulatorProcess, encoding: str) -> None:
    """send-bulk-sms as the C# example's JSON body and as the PHP example's form fields: texts with every
    character that form or JSON encoding escapes reach the gateway exactly as sent, in one job."""
    rows = [Recipient(f"9198123456{i:02d}", f"Payment of Rs {v} received for account AC{i:02d}. Thank you. - "
                                            "SMSPNT") for i, v in enumerate(TRICKY)]
    with SmsPointClient(sim.base_url, sim.api_key, bulk_encoding=encoding) as client:
        result = client.send_bulk(rows, sender_id=SENDER, template_id=TEMPLATE,
                                  channel=Channel.TRANSACTIONAL, is_unicode=True)
    assert not result.rejected and len(result.messages) == len(rows)
    got = {(e["number"][-10:], e["text"]) for e in sim.admin.ledger(result.job_id)}
    assert got == {(r.number[-10:], r.text) for r in rows}


def test_an_unknown_bulk_encoding_is_refused_before_any_call(sim: SimulatorProcess) -> None:
    from dispatcher.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="encoding must be one of json, form"):
        SmsPointClient(sim.base_url, sim.api_key, bulk_encoding="xml")
