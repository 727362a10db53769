"""The gateway simulator over real loopback HTTP with ``requests``: every command and content type, every
documented error, credits, DLT rejections, the Rejected extension, lifecycle and clock, magic numbers,
report shapes, faults (including a dropped connection and a late answer after acceptance) and seeds."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from dispatcher.simulator import (
    MAGIC_DELIVERED,
    MAGIC_DND,
    MAGIC_INVALID,
    MAGIC_NEVER_FINAL,
    MAGIC_UNDELIVERED,
    SimulatorProcess,
)

pytestmark = pytest.mark.integration

SENDER, TEMPLATE = "SMSPNT", "1207161000000000002"
NUMBER = "919812345678"
LEDGER_FIELDS = {"job_id", "message_id", "number", "text", "sender_id", "template_id", "channel",
                 "is_unicode", "credits", "accepted_at", "status"}


def text(n: int = 1) -> str:
    return f"Payment of Rs {n}00 received for account AC{n:04d}. Thank you. - SMSPNT"


def call(sim: SimulatorProcess, command: str, *, method: str = "POST", key: str | None = None,
         **kw: Any) -> requests.Response:
    headers = {"Accept": "application/json", **kw.pop("headers", {})}
    if key is not None or "key" not in headers:
        headers["key"] = sim.api_key if key is None else key
    return requests.request(method, f"{sim.base_url}/{command}", headers=headers, timeout=10, **kw)


def single(number: str = NUMBER, message: str | None = None, **over: Any) -> dict[str, Any]:
    return {"recipient": number, "message": text() if message is None else message, "sender_id": SENDER,
            "template_id": TEMPLATE, "channel": 1, "is_unicode": 0, **over}


def bulk(rows: list[tuple[str, str]], **over: Any) -> dict[str, Any]:
    return {"recipient": json.dumps([{"number": n, "text": t} for n, t in rows]), "sender_id": SENDER,
            "template_id": TEMPLATE, "channel": "1", "is_unicode": "0", **over}


def quiet_lifecycle(sim: SimulatorProcess, **over: float) -> None:
    """Everything delivered after exactly 10 simulated seconds unless overridden."""
    sim.admin.set_lifecycle(**{"delivered_after_s": 10, "undelivered_after_s": 10, "jitter": 0,
                               "undelivered_rate": 0, "pending_rate": 0, **over})


# ----------------------------------------------------------------------------- reads and content types


def test_balance_answers_the_documented_shape_by_get_and_post(shared_simulator: SimulatorProcess) -> None:
    """get-sms-balance by POST (key header) and GET (apiKey parameter) gives the documented balance object."""
    shared_simulator.admin.set_credits(OTP=1, Promotional=2, Transactional=3)
    posted = call(shared_simulator, "get-sms-balance")
    got = requests.get(f"{shared_simulator.base_url}/get-sms-balance",
                       params={"apiKey": shared_simulator.api_key}, timeout=10)
    expected = {"status": "success", "message": "", "data": {"balance": {"OTP": 1, "Promotional": 2,
                                                                         "Transactional": 3}}}
    assert posted.status_code == got.status_code == 200
    assert posted.json() == got.json() == expected
    assert list(posted.json()["data"]["balance"]) == ["OTP", "Promotional", "Transactional"]


def test_catalog_commands_list_documented_fields(shared_simulator: SimulatorProcess) -> None:
    """get-sender-id and get-templates list rows with exactly the documented fields, approved and pending."""
    senders = call(shared_simulator, "get-sender-id").json()
    templates = call(shared_simulator, "get-templates").json()
    assert senders["status"] == templates["status"] == "success"
    assert all(set(row) == {"id", "entity_id", "type_value", "sender_id", "purpose_value", "approve_status"}
               for row in senders["data"])
    assert all(set(row) == {"id", "name", "template_id", "type", "sender_id", "message", "template_status"}
               for row in templates["data"])
    by_sender = {row["sender_id"]: row for row in senders["data"]}
    assert by_sender["SMSPNT"]["type_value"] == "Transactional"
    assert by_sender["123456"]["type_value"] == "Promotional"
    assert {row["approve_status"] for row in senders["data"]} == {"Approved", "Pending"}
    assert {row["template_status"] for row in templates["data"]} == {"Approved", "Pending"}
    assert {row["type"] for row in templates["data"]} == {"Transactional", "Promotional", "OTP"}
    assert all("{#var#}" in row["message"] for row in templates["data"])


@pytest.mark.parametrize("style", ["form", "multipart", "json", "get", "param-key"])
def test_single_send_accepts_every_client_encoding(shared_simulator: SimulatorProcess, style: str) -> None:
    """A single send works as form-urlencoded, multipart (PHP), JSON of strings (C#), GET, and key param."""
    sim = shared_simulator
    data = single()
    if style == "form":
        resp = call(sim, "send-single-sms", data=data)
    elif style == "multipart":
        resp = call(sim, "send-single-sms", files={k: (None, str(v)) for k, v in data.items()})
    elif style == "json":
        resp = call(sim, "send-single-sms", json={k: str(v) for k, v in data.items()})
    elif style == "get":
        resp = call(sim, "send-single-sms", method="GET", params=data)
    else:
        resp = requests.post(f"{sim.base_url}/send-single-sms", data={**data, "key": sim.api_key}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", body
    assert body["message"] == "SMS Sent Successfully" and body["code"] == 200
    data_ = body["data"]
    assert (data_["ErrorCode"], data_["ErrorMessage"]) == ("000", "Success")
    [row] = data_["MessageData"]
    assert row == {"Number": NUMBER, "message_id": row["message_id"], "message": text()}
    [entry] = sim.admin.ledger()
    assert LEDGER_FIELDS <= set(entry)
    assert (entry["job_id"], entry["message_id"]) == (data_["JobId"], row["message_id"])
    assert entry["number"] == NUMBER
    assert (entry["sender_id"], entry["template_id"]) == (SENDER, TEMPLATE)
    assert (entry["channel"], entry["credits"]) == (1, 1)
    assert entry["status"] == "Sent"


@pytest.mark.parametrize("style", ["form-json-string", "multipart-json-string", "json-string", "json-array"])
def test_bulk_send_accepts_recipient_as_json_string_or_array(shared_simulator: SimulatorProcess,
                                                             style: str) -> None:
    """Bulk recipient as a JSON string (form, multipart, C# JSON) or a JSON array; MessageData keeps order."""
    sim = shared_simulator
    numbers = ["919812345601", "919812345602", "919812345603"]
    data = bulk([(n, text(i)) for i, n in enumerate(numbers)])
    if style == "form-json-string":
        resp = call(sim, "send-bulk-sms", data=data)
    elif style == "multipart-json-string":
        resp = call(sim, "send-bulk-sms", files={k: (None, v) for k, v in data.items()})
    elif style == "json-string":
        resp = call(sim, "send-bulk-sms", json=data)
    else:
        resp = call(sim, "send-bulk-sms", json={**data, "recipient": json.loads(data["recipient"])})
    body = resp.json()
    assert body["status"] == "success", body
    assert [row["Number"] for row in body["data"]["MessageData"]] == numbers
    assert [row["message"] for row in body["data"]["MessageData"]] == [text(i) for i in range(3)]
    assert "Rejected" not in body["data"]
    ledger = sim.admin.ledger(body["data"]["JobId"])
    assert [e["message_id"] for e in ledger] == [row["message_id"] for row in body["data"]["MessageData"]]
    assert len({e["message_id"] for e in ledger}) == 3


# ----------------------------------------------------------------------------- documented errors


@pytest.mark.parametrize("command", ["get-sms-balance", "send-single-sms", "sms-delivery-status"])
def test_wrong_or_missing_key_is_api_key_does_not_exists(shared_simulator: SimulatorProcess,
                                                          command: str) -> None:
    """A wrong key (header or parameter) or none answers HTTP 200 "API Key Does Not Exists"."""
    expected = {"status": "error", "message": "API Key Does Not Exists"}
    wrong = call(shared_simulator, command, key="nope", data=single())
    wrong_param = requests.post(f"{shared_simulator.base_url}/{command}", data={"apiKey": "nope"}, timeout=10)
    missing = requests.post(f"{shared_simulator.base_url}/{command}", data=single(), timeout=10)
    assert wrong.status_code == wrong_param.status_code == missing.status_code == 200
    assert wrong.json() == wrong_param.json() == missing.json() == expected
    assert shared_simulator.admin.ledger() == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_request_type_not_allowed(shared_simulator: SimulatorProcess, method: str) -> None:
    """Methods other than GET and POST answer HTTP 200 "Request Type Not Allowed"."""
    resp = call(shared_simulator, "get-sms-balance", method=method)
    assert resp.status_code == 200
    assert resp.json() == {"status": "error", "message": "Request Type Not Allowed"}


def test_unknown_command_is_a_404(shared_simulator: SimulatorProcess) -> None:
    """A command the gateway does not have answers HTTP 404 with a JSON error."""
    resp = call(shared_simulator, "send-fax")
    assert resp.status_code == 404 and resp.json()["message"] == "Invalid API Command"


def test_unknown_job_is_invalid_message_id(shared_simulator: SimulatorProcess) -> None:
    """sms-delivery-status for an unknown job answers the documented "Invalid Message ID" with data null."""
    resp = call(shared_simulator, "sms-delivery-status", data={"job_id": "999"})
    assert resp.json() == {"status": "error", "message": "Invalid Message ID", "data": None}


def test_bulk_is_all_or_nothing_on_credits(shared_simulator: SimulatorProcess) -> None:
    """Not enough credits for the whole call: "SMS Credits Not Available", nothing accepted or charged."""
    sim = shared_simulator
    sim.admin.set_credits(Transactional=3, OTP=100, Promotional=100)
    rows = [(f"9198123456{i:02d}", text(i)) for i in range(4)]
    refused = call(sim, "send-bulk-sms", data=bulk(rows)).json()
    assert refused == {"status": "error", "message": "SMS Credits Not Available", "data": None}
    assert sim.admin.ledger() == [] and sim.admin.credits()["Transactional"] == 3
    accepted = call(sim, "send-bulk-sms", data=bulk(rows[:3])).json()
    assert accepted["status"] == "success" and sim.admin.credits()["Transactional"] == 0
    assert call(sim, "send-single-sms", data=single()).json()["message"] == "SMS Credits Not Available"


# ----------------------------------------------------------------------------- charging


def test_credits_follow_parts_and_long_texts_are_truncated_to_765(shared_simulator: SimulatorProcess) -> None:
    """1 credit up to 160 characters, then one per 153; past 765 characters the text is cut to 765 (5)."""
    sim = shared_simulator
    lengths = (160, 161, 306, 307, 612, 613, 765, 800)
    catalog = sim.admin.catalog()
    catalog["templates"] += [{"id": f"9{n}", "name": f"fixed_{n}", "template_id": f"LEN{n}",
                              "type": "Transactional", "sender_id": SENDER, "message": "x" * n,
                              "template_status": "Approved"} for n in lengths]
    sim.admin.set_catalog(catalog)
    before = sim.admin.credits()["Transactional"]
    for n in lengths:
        body = call(sim, "send-single-sms", data=single(message="x" * n, template_id=f"LEN{n}")).json()
        assert body["status"] == "success", (n, body)
    ledger = sim.admin.ledger()
    assert [e["credits"] for e in ledger] == [1, 2, 2, 3, 4, 5, 5, 5]
    assert len(ledger[-1]["text"]) == 765 and body["data"]["MessageData"][0]["message"] == "x" * 765
    assert sim.admin.credits()["Transactional"] == before - 27


def test_unicode_text_is_kept_and_charged_as_ucs2(shared_simulator: SimulatorProcess) -> None:
    """A Hindi text is echoed unescaped and costs UCS-2 parts (70 / 67 units)."""
    sim = shared_simulator
    hindi = "प्रिय ग्राहक, आपका ऑर्डर 42 भेज दिया गया है। - SMSPNT"
    resp = call(sim, "send-single-sms",
                data=single(message=hindi, template_id="1207161000000000003", is_unicode=1))
    assert resp.json()["data"]["MessageData"][0]["message"] == hindi
    assert hindi.encode() in resp.content
    [entry] = sim.admin.ledger()
    assert (entry["is_unicode"], entry["credits"]) == (1, 1)


def test_each_channel_charges_its_package(simulator_factory: Any) -> None:
    """Channel numbers map to packages (default 1/2/3; --channel-map changes it) and charge that package."""
    sim = simulator_factory("--channel-map", "transactional=3,promotional=2,otp=1", "--credits", "10")
    otp = "123456 is your OTP to log in. It is valid for 10 minutes. Do not share it with anyone. - OTPSMS"
    ok = call(sim, "send-single-sms", data=single(message=otp, sender_id="OTPSMS",
                                                   template_id="1207161000000000004", channel=1)).json()
    assert ok["status"] == "success"
    wrong = call(sim, "send-single-sms", data=single(channel=1)).json()
    assert wrong["message"] == "Template Type Does Not Match Channel"
    assert call(sim, "send-single-sms", data=single(channel=3)).json()["status"] == "success"
    assert sim.admin.credits() == {"OTP": 9, "Promotional": 10, "Transactional": 9}


# ----------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(("change", "message"), [
    ({"sender_id": "NOSUCH"}, "Invalid Sender ID"),
    ({"sender_id": "PNDSMS", "template_id": "1207161000000000007"}, "Sender ID Not Approved"),
    ({"template_id": "1207169999999999999"}, "Invalid Template ID"),
    ({"template_id": "1207161000000000006"}, "Template Not Approved"),
    ({"template_id": "1207161000000000004"}, "Template Does Not Belong To Sender ID"),
    ({"sender_id": "123456", "template_id": "1207161000000000005"}, "Template Type Does Not Match Channel"),
    ({"message": "Payment received. - SMSPNT"}, "Message Does Not Match Template"),
    ({"message": text().replace("AC0001", "A" * 31)}, "Message Does Not Match Template"),
    ({"recipient": "911234567890"}, "Invalid Mobile Number"),
    ({"recipient": MAGIC_INVALID}, "Invalid Mobile Number"),
    ({"message": ""}, "Missing Parameter: message"),
    ({"template_id": " "}, "Missing Parameter: template_id"),
    ({"is_unicode": 2}, "Invalid is_unicode: accepted values are 0, 1"),
    ({"channel": 4}, "Invalid Channel: accepted values are 1, 2, 3"),
])
def test_undocumented_rejections_have_clear_messages(shared_simulator: SimulatorProcess,
                                                     change: dict[str, Any], message: str) -> None:
    """Each undocumented rejection answers HTTP 200 status "error" with its message, and accepts nothing."""
    resp = call(shared_simulator, "send-single-sms", data=single(**change))
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "error" and body["message"] == message, body
    assert shared_simulator.admin.ledger() == []


def test_sender_and_template_may_be_named_by_id(shared_simulator: SimulatorProcess) -> None:
    """The rows' "id" works as well as sender_id / template_id (the documentation says both)."""
    body = call(shared_simulator, "send-single-sms", data=single(sender_id="1", template_id="2")).json()
    assert body["status"] == "success"
    assert shared_simulator.admin.ledger()[0]["template_id"] == TEMPLATE


def test_bulk_lists_rejected_recipients_and_accepts_the_rest(shared_simulator: SimulatorProcess) -> None:
    """Invalid numbers and mismatching texts go to data.Rejected; the valid ones are sent and charged."""
    sim = shared_simulator
    before = sim.admin.credits()["Transactional"]
    rows = [("919812345601", text(1)), ("12345", text(2)), ("919812345603", "hello"),
            ("919812345604", text(4))]
    body = call(sim, "send-bulk-sms", data=bulk(rows)).json()
    assert body["status"] == "success"
    assert [m["Number"] for m in body["data"]["MessageData"]] == ["919812345601", "919812345604"]
    rejected = body["data"]["Rejected"]
    assert [r["Number"] for r in rejected] == ["12345", "919812345603"]
    assert rejected[0]["reason"].startswith("Invalid Mobile Number: ")
    assert rejected[1]["reason"].startswith("Message Does Not Match Template: ")
    assert sim.admin.credits()["Transactional"] == before - 2 and len(sim.admin.ledger()) == 2


def test_bulk_with_no_valid_recipient_is_refused(shared_simulator: SimulatorProcess) -> None:
    """When every recipient is rejected the call fails with "No Valid Recipients" and lists them."""
    body = call(shared_simulator, "send-bulk-sms", data=bulk([(MAGIC_INVALID, text())])).json()
    assert body["status"] == "error" and body["message"] == "No Valid Recipients"
    assert body["data"]["Rejected"][0]["Number"] == MAGIC_INVALID


def test_bulk_takes_2000_recipients_and_refuses_2001(shared_simulator: SimulatorProcess) -> None:
    """2000 recipients are accepted in one job; 2001 are refused as a whole."""
    rows = [(f"91981{i:07d}", text(i)) for i in range(2001)]
    too_many = call(shared_simulator, "send-bulk-sms", data=bulk(rows)).json()
    assert too_many["message"] == "Maximum 2000 Recipients Allowed Per Request"
    body = call(shared_simulator, "send-bulk-sms", data=bulk(rows[:2000])).json()
    assert body["status"] == "success" and len(body["data"]["MessageData"]) == 2000
    assert len({m["message_id"] for m in body["data"]["MessageData"]}) == 2000


def test_bad_recipient_json_is_refused(shared_simulator: SimulatorProcess) -> None:
    """A bulk recipient that is not a JSON array of objects is refused with a clear message."""
    body = call(shared_simulator, "send-bulk-sms", data={**bulk([]), "recipient": "[1, 2"}).json()
    assert body["message"].startswith("Invalid Recipient Format")


def test_unreadable_body_is_refused(shared_simulator: SimulatorProcess) -> None:
    """A JSON body that does not parse answers "Invalid Request Body" instead of a server error."""
    resp = call(shared_simulator, "send-single-sms", data=b'{"recipient": "9198',
                headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json()["message"] == "Invalid Request Body"


# ----------------------------------------------------------------------------- lifecycle and reports


def status_of(report: dict[str, Any]) -> list[str]:
    """Status names of a report in either documented shape, lower-cased."""
    data = report["data"]
    if isinstance(data, dict):
        return [data["delivery_status_id"].lower()]
    return [row["status_name"].lower() for row in data]


def test_messages_are_sent_then_delivered_when_the_clock_advances(shared_simulator: SimulatorProcess) -> None:
    """A message is Sent, and Delivered once the simulated clock passes its delay."""
    sim = shared_simulator
    quiet_lifecycle(sim)
    job = call(sim, "send-single-sms", data=single()).json()["data"]["JobId"]
    assert status_of(call(sim, "sms-delivery-status", data={"job_id": job}).json()) == ["sent"]
    sim.admin.advance(9)
    assert sim.admin.ledger()[0]["status"] == "Sent"
    sim.admin.advance(2)
    assert status_of(call(sim, "sms-delivery-status", data={"job_id": job}).json()) == ["delivered"]
    assert sim.admin.ledger()[0]["status"] == "Delivered"


def test_magic_numbers_force_outcomes(shared_simulator: SimulatorProcess) -> None:
    """Magic numbers: always Delivered, always UnDelivered (Absent subscriber / DND), never final, invalid."""
    sim = shared_simulator
    quiet_lifecycle(sim, undelivered_rate=1)  # every other number would be undelivered
    numbers = [MAGIC_DELIVERED, MAGIC_UNDELIVERED, MAGIC_NEVER_FINAL, MAGIC_DND, MAGIC_INVALID]
    body = call(sim, "send-bulk-sms", data=bulk([(n, text(i)) for i, n in enumerate(numbers)])).json()
    assert [r["Number"] for r in body["data"]["Rejected"]] == [MAGIC_INVALID]
    sim.admin.advance(30 * 86400)
    got = {e["number"]: (e["status"], e["remark"]) for e in sim.admin.ledger()}
    assert got == {MAGIC_DELIVERED: ("Delivered", ""),
                   MAGIC_UNDELIVERED: ("UnDelivered", "Absent subscriber"),
                   MAGIC_NEVER_FINAL: ("Expired", "Message pending"), MAGIC_DND: ("UnDelivered", "DND")}


def test_pending_messages_stay_expired_for_the_hold_time(shared_simulator: SimulatorProcess) -> None:
    """With pending_rate 1 a message turns Expired, stays so for pending_hold_s, then UnDelivered."""
    sim = shared_simulator
    quiet_lifecycle(sim, pending_rate=1, pending_after_s=5, pending_hold_s=3600)
    call(sim, "send-single-sms", data=single())
    sim.admin.advance(6)
    assert sim.admin.ledger()[0]["status"] == "Expired"
    sim.admin.advance(3000)
    assert sim.admin.ledger()[0]["status"] == "Expired"
    sim.admin.advance(600)
    assert sim.admin.ledger()[0]["status"] == "UnDelivered"


def test_list_reports_mix_keys_casing_status_and_code(shared_simulator: SimulatorProcess) -> None:
    """The list shape mixes mobile_number/recipient and status casing; jobs vary top-level status and code."""
    sim = shared_simulator
    quiet_lifecycle(sim, undelivered_rate=0.5)
    sim.admin.set_shapes(report_shape="list")
    jobs = []
    for j in range(12):
        recipients = [(f"9198123{j:02d}{i:03d}", text(i)) for i in range(20)]
        jobs.append(call(sim, "send-bulk-sms", data=bulk(recipients)).json()["data"]["JobId"])
    sim.admin.advance(11)
    reports = [call(sim, "sms-delivery-status", data={"job_id": j}).json() for j in jobs]
    rows = [row for rep in reports for row in rep["data"]]
    assert {("recipient" in row, "mobile_number" in row) for row in rows} == {(True, False), (False, True)}
    assert {row["status_name"] for row in rows} >= {"delivered", "Delivered", "DELIVERED", "UnDelivered",
                                                    "undelivered"}
    assert {rep["status"] for rep in reports} == {"success", "error"}
    assert {type(rep["code"]) for rep in reports} == {str, int}
    assert all(rep["job_id"] == j and len(rep["data"]) == 20 for rep, j in zip(reports, jobs, strict=True))
    number = rows[0].get("mobile_number") or rows[0].get("recipient")
    assert len(number) == 10


def test_single_report_shape_for_one_message_jobs(shared_simulator: SimulatorProcess) -> None:
    """report_shape=single answers one-message jobs with delivery_status_id / delivery_status_remark."""
    sim = shared_simulator
    quiet_lifecycle(sim)
    sim.admin.set_shapes(report_shape="single")
    job = call(sim, "send-single-sms", data=single(MAGIC_DND)).json()["data"]["JobId"]
    sim.admin.advance(11)
    report = call(sim, "sms-delivery-status", data={"job_id": job}).json()
    assert report["status"] == "success" and report["message"] is None
    data = report["data"]
    assert set(data) == {"status", "recipient", "sender_id", "content", "delivery_status_id",
                         "delivery_status_remark"}
    assert (data["recipient"], data["sender_id"], data["content"]) == (MAGIC_DND[2:], SENDER, text())
    assert data["delivery_status_id"].lower() == "undelivered" and data["delivery_status_remark"] == "DND"


def test_mixed_report_shapes_use_both_for_single_message_jobs(shared_simulator: SimulatorProcess) -> None:
    """In the default mixed mode some one-message jobs answer the list shape and some the single shape."""
    sim = shared_simulator
    jobs = [call(sim, "send-single-sms", data=single(message=text(i))).json()["data"]["JobId"]
            for i in range(16)]
    kinds = {type(call(sim, "sms-delivery-status", data={"job_id": j}).json()["data"]) for j in jobs}
    assert kinds == {list, dict}


def test_csharp_send_shape_and_status_by_its_message_id(simulator_factory: Any) -> None:
    """--send-shape csharp answers bulk sends with data.message_id, which sms-delivery-status accepts."""
    sim = simulator_factory("--send-shape", "csharp", "--report-shape", "list")
    body = call(sim, "send-bulk-sms", data=bulk([(NUMBER, text(1)), ("919812345679", text(2))])).json()
    assert body == {"status": "success", "message": "SMS Sent Successfully",
                    "data": {"status": "success", "message_id": body["data"]["message_id"]}}
    report = call(sim, "sms-delivery-status", data={"job_id": body["data"]["message_id"]}).json()
    assert len(report["data"]) == 2
    one_id = sim.admin.ledger()[0]["message_id"]
    by_message = call(sim, "sms-delivery-status", data={"job_id": one_id}).json()
    assert [row["message_id"] for row in by_message["data"]] == [one_id]
    sim.admin.set_shapes(send_shape="php")
    assert "MessageData" in call(sim, "send-bulk-sms", data=bulk([(NUMBER, text())])).json()["data"]


def test_same_seed_same_story_other_seed_other_fates(simulator_factory: Any) -> None:
    """Two simulators with one seed give identical ids, fates and reports; another seed gives other fates."""
    sims = [simulator_factory(seed=11), simulator_factory(seed=11), simulator_factory(seed=12)]
    stories = []
    for sim in sims:
        quiet_lifecycle(sim, undelivered_rate=0.4, pending_rate=0.2, jitter=0.5)
        rows = [(f"919812{i:06d}", text(i)) for i in range(40)]
        job = call(sim, "send-bulk-sms", data=bulk(rows)).json()["data"]["JobId"]
        sim.admin.advance(1000)
        report = call(sim, "sms-delivery-status", data={"job_id": job}).json()
        stories.append(([(e["message_id"], e["fate"], e["status"]) for e in sim.admin.ledger()], report))
    assert stories[0] == stories[1]
    assert [f for _, f, _ in stories[0][0]] != [f for _, f, _ in stories[2][0]]


# ----------------------------------------------------------------------------- faults


def test_429_carries_retry_after(shared_simulator: SimulatorProcess) -> None:
    """rate_429 answers HTTP 429 with Retry-After and accepts nothing."""
    shared_simulator.admin.set_faults(rate_429=1, retry_after_s=7)
    resp = call(shared_simulator, "send-single-sms", data=single())
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert shared_simulator.admin.ledger() == []


def test_5xx_and_html_faults_can_target_only_sends(shared_simulator: SimulatorProcess) -> None:
    """rate_5xx gives HTTP 503, rate_html_error an HTML 502 page; a commands filter spares other commands."""
    sim = shared_simulator
    sim.admin.set_faults(rate_5xx=1, commands=["send-single-sms"])
    assert call(sim, "send-single-sms", data=single()).status_code == 503
    assert call(sim, "get-sms-balance").json()["status"] == "success"
    sim.admin.set_faults(clear=True, rate_html_error=1)
    resp = call(sim, "get-sms-balance")
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("text/html")
    assert "<html>" in resp.text
    assert sim.admin.ledger() == []


def test_latency_is_added(shared_simulator: SimulatorProcess) -> None:
    """latency_ms delays every answer by at least that much."""
    shared_simulator.admin.set_faults(latency_ms=300)
    resp = call(shared_simulator, "get-sms-balance")
    assert resp.elapsed.total_seconds() >= 0.3


def test_drop_before_read_is_a_connection_error_and_sends_nothing(shared_simulator: SimulatorProcess) -> None:
    """rate_drop_before_read aborts the TCP connection unread: the client gets a ConnectionError."""
    sim = shared_simulator
    sim.admin.set_faults(rate_drop_before_read=1, commands=["send-single-sms"])
    with pytest.raises(requests.ConnectionError):
        call(sim, "send-single-sms", data=single())
    assert call(sim, "get-sms-balance").json()["status"] == "success"
    assert sim.admin.ledger() == []
    assert [c["fault"] for c in sim.admin.calls()] == ["drop_before_read", None]
    sim.admin.clear_faults()
    assert call(sim, "send-single-sms", data=single()).json()["status"] == "success"


def test_read_timeout_after_accept_still_records_the_message(shared_simulator: SimulatorProcess) -> None:
    """A late answer after acceptance is a ReadTimeout for the client, yet the message is in the ledger."""
    sim = shared_simulator
    sim.admin.set_faults(rate_read_timeout_after_accept=1, read_timeout_s=2)
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sim.base_url}/send-single-sms", data=single(), headers={"key": sim.api_key},
                      timeout=(2, 0.5))
    [entry] = sim.admin.ledger()
    assert entry["number"] == NUMBER and entry["status"] == "Sent"
    assert sim.admin.calls()[-1]["fault"] == "read_timeout_after_accept"


def test_auth_failing_and_credits_exhausted(shared_simulator: SimulatorProcess) -> None:
    """auth_failing refuses the right key; credits_exhausted empties the balance and refuses sends."""
    sim = shared_simulator
    sim.admin.set_faults(auth_failing=True)
    assert call(sim, "get-sms-balance").json()["message"] == "API Key Does Not Exists"
    sim.admin.set_faults(auth_failing=False, credits_exhausted=True)
    assert call(sim, "get-sms-balance").json()["data"]["balance"] == {"OTP": 0, "Promotional": 0,
                                                                     "Transactional": 0}
    assert call(sim, "send-single-sms", data=single()).json()["message"] == "SMS Credits Not Available"


def test_seeded_fault_rates_fail_the_same_calls(simulator_factory: Any) -> None:
    """With the same seed a fractional fault rate hits the same calls of the same sequence."""
    patterns = []
    for _ in range(2):
        sim = simulator_factory("--rate-5xx", "0.5", seed=5)
        patterns.append([call(sim, "get-sms-balance").status_code for _ in range(30)])
    assert patterns[0] == patterns[1] and set(patterns[0]) == {200, 503}


# ----------------------------------------------------------------------------- control API


def test_calls_log_and_ledger_paging(shared_simulator: SimulatorProcess) -> None:
    """/_sim/calls records every call; /_sim/ledger pages with offset and limit."""
    sim = shared_simulator
    call(sim, "get-sms-balance", key="bad")
    call(sim, "send-bulk-sms", data=bulk([(f"9198123456{i:02d}", text(i)) for i in range(5)]))
    calls = sim.admin.calls()
    assert [(c["command"], c["recipients"], c["outcome"], c["http_status"]) for c in calls] == [
        ("get-sms-balance", 0, "error", 200), ("send-bulk-sms", 5, "success", 200)]
    page = sim.admin.ledger_page(offset=1, limit=2)
    assert page["total"] == 5 and [e["number"] for e in page["items"]] == ["919812345601", "919812345602"]


def test_flags_configure_lifecycle_faults_and_credits(simulator_factory: Any) -> None:
    """Command-line flags set lifecycle, faults and credits; reset returns to them."""
    sim = simulator_factory("--delivered-after-s", "100", "--rate-5xx", "1", "--fault-commands",
                            "send-bulk-sms", "--credits", "OTP=5,Transactional=7,Promotional=0")
    assert sim.admin.lifecycle()["delivered_after_s"] == 100
    assert sim.admin.faults()["rate_5xx"] == 1 and sim.admin.faults()["commands"] == ["send-bulk-sms"]
    sim.admin.set_credits(OTP=1)
    sim.admin.clear_faults()
    sim.admin.reset()
    assert sim.admin.credits() == {"OTP": 5, "Promotional": 0, "Transactional": 7}
    assert sim.admin.faults()["rate_5xx"] == 1


def test_control_api_refuses_bad_values(shared_simulator: SimulatorProcess) -> None:
    """Bad control values are refused with a message (HTTP 400) and change nothing."""
    with pytest.raises(ValueError, match="probability"):
        shared_simulator.admin.set_faults(rate_5xx=2)
    with pytest.raises(ValueError, match="unknown package"):
        shared_simulator.admin.set_credits(Gold=1)
    assert shared_simulator.admin.faults()["rate_5xx"] == 0


def test_reset_forgets_messages_and_restarts_ids(shared_simulator: SimulatorProcess) -> None:
    """reset empties ledger and call log, restores credits and clock, and restarts ids (seeded: 123456789)."""
    sim = shared_simulator
    first = call(sim, "send-single-sms", data=single()).json()["data"]["JobId"]
    sim.admin.advance(100)
    sim.admin.reset()
    assert sim.admin.ledger() == [] and sim.admin.calls() == []
    assert call(sim, "send-single-sms", data=single()).json()["data"]["JobId"] == first == "123456789"
