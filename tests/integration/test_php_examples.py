"""The documentation's PHP cURL examples, run with ``php`` exactly as written (only the URL and the key value
replaced) against the simulator, asserting on the JSON they print. The bulk example is not valid PHP (it
writes ``"sender_id" = ...`` inside an array), so it is only shown to fail ``php -l``.

Skipped, with the reason, when ``php`` or its curl module is missing (CI installs php-cli and php-curl).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dispatcher.simulator import SimulatorProcess

pytestmark = pytest.mark.integration

DOCS_URL = "https://thesmspoint.com/api/v1"
DOCS_KEY = "'Your apiKey'"

# ----------------------------------------------------------------------------- the examples, verbatim

BALANCE_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/get-sms-balance');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''

SENDER_IDS_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/get-sender-id');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''

TEMPLATES_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/get-templates');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''

SEND_SINGLE_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$data = [
"recipient" => 919954654365,
"message" => "This is Message",
"sender_id" => "SENDER",
"template_id" => "TEMPLATE",
"channel" => 1,
"is_unicode" => 0
];
//Headers
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/send-single-sms');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_POSTFIELDS, $data);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''

SEND_BULK_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$recipient = array(
array(
"number" => 911234567890,
"text" => "This is Message"
),
array(
"number" => 911234567891,
"text" => "This is Message"
)
);
$data = [
"recipient" => json_encode($recipient),
"sender_id" = "Your SENDER ID",
"template_id" = "Your TEMPLATE ID",
"channel" = "1",
"is_unicode" = "0"
];
//Headers
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/send-bulk-sms');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_POSTFIELDS, $data);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''

DELIVERY_STATUS_PHP = r'''<?php
// Account details
$apiKey = 'Your apiKey';
$data = [
"job_id" => 123456789
];
//Headers
$headers = [
"key: {$apiKey}",
"Accept: application/json"
];
// Send the POST request with cURL
$ch = curl_init('https://thesmspoint.com/api/v1/sms-delivery-status');
curl_setopt($ch, CURLOPT_POST, true);
curl_setopt($ch, CURLOPT_POSTFIELDS, $data);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
$response = curl_exec($ch);
curl_close($ch);
// Process your response here
echo $response;
?>
'''


# ----------------------------------------------------------------------------- running them


@pytest.fixture(scope="module")
def php() -> str:
    """The php binary, with the curl module; skips the module's tests with the reason otherwise."""
    binary = shutil.which("php")
    if binary is None:
        pytest.skip("php is not installed (apt-get install php-cli php-curl)")
    probe = subprocess.run([binary, "-r", "exit(function_exists('curl_init') ? 0 : 3);"], capture_output=True,
                           timeout=30)
    if probe.returncode != 0:
        pytest.skip("php's curl module is missing (apt-get install php-curl)")
    return binary


def run_example(php: str, source: str, sim: SimulatorProcess, tmp_path: Path) -> Any:
    """Run one example with the simulator's URL and key swapped in; return the JSON it printed."""
    assert source.count(DOCS_URL) == 1 and source.count(DOCS_KEY) == 1
    script = tmp_path / "example.php"
    script.write_text(source.replace(DOCS_URL, sim.base_url).replace(DOCS_KEY, f"'{sim.api_key}'"))
    done = subprocess.run([php, str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


#: What the single-send example needs in the catalog to succeed: its sender "SENDER" and template "TEMPLATE".
EXAMPLE_SENDER = {"id": "50", "entity_id": "1201159100000000050", "type_value": "Transactional",
                  "sender_id": "SENDER", "purpose_value": "Documentation example",
                  "approve_status": "Approved"}
EXAMPLE_TEMPLATE = {"id": "50", "name": "docs_example", "template_id": "TEMPLATE", "type": "Transactional",
                    "sender_id": "SENDER", "message": "This is Message", "template_status": "Approved"}


def add_example_catalog(sim: SimulatorProcess) -> None:
    catalog = sim.admin.catalog()
    catalog["senders"].append(EXAMPLE_SENDER)
    catalog["templates"].append(EXAMPLE_TEMPLATE)
    sim.admin.set_catalog(catalog)


def test_balance_example(php: str, shared_simulator: SimulatorProcess, tmp_path: Path) -> None:
    """The balance example (POST without a body, key header) prints the documented balance object."""
    shared_simulator.admin.set_credits(OTP=10, Promotional=20, Transactional=30)
    out = run_example(php, BALANCE_PHP, shared_simulator, tmp_path)
    assert out == {"status": "success", "message": "",
                   "data": {"balance": {"OTP": 10, "Promotional": 20, "Transactional": 30}}}


def test_sender_id_example(php: str, shared_simulator: SimulatorProcess, tmp_path: Path) -> None:
    """The sender id example prints the account's sender ids with the documented fields."""
    out = run_example(php, SENDER_IDS_PHP, shared_simulator, tmp_path)
    assert out["status"] == "success"
    assert {row["sender_id"] for row in out["data"]} >= {"SMSPNT", "OTPSMS", "123456"}
    assert set(out["data"][0]) == {"id", "entity_id", "type_value", "sender_id", "purpose_value",
                                   "approve_status"}


def test_templates_example(php: str, shared_simulator: SimulatorProcess, tmp_path: Path) -> None:
    """The templates example prints the templates with the documented fields."""
    out = run_example(php, TEMPLATES_PHP, shared_simulator, tmp_path)
    assert out["status"] == "success"
    assert set(out["data"][0]) == {"id", "name", "template_id", "type", "sender_id", "message",
                                   "template_status"}


def test_single_send_example_needs_its_sender_and_template(php: str, shared_simulator: SimulatorProcess,
                                                           tmp_path: Path) -> None:
    """Unchanged, the send example names sender "SENDER" and template "TEMPLATE", which the account lacks."""
    out = run_example(php, SEND_SINGLE_PHP, shared_simulator, tmp_path)
    assert out == {"status": "error", "message": "Invalid Sender ID", "data": None}
    assert shared_simulator.admin.ledger() == []


def test_single_send_example_sends(php: str, shared_simulator: SimulatorProcess, tmp_path: Path) -> None:
    """With its sender and template registered, the send example (multipart POST) prints the success shape."""
    sim = shared_simulator
    add_example_catalog(sim)
    out = run_example(php, SEND_SINGLE_PHP, sim, tmp_path)
    assert out["status"] == "success" and out["message"] == "SMS Sent Successfully" and out["code"] == 200
    data = out["data"]
    assert (data["ErrorCode"], data["ErrorMessage"]) == ("000", "Success")
    [row] = data["MessageData"]
    assert (row["Number"], row["message"]) == ("919954654365", "This is Message")
    [entry] = sim.admin.ledger()
    assert (entry["message_id"], entry["job_id"], entry["channel"], entry["is_unicode"]) == (
        row["message_id"], data["JobId"], 1, 0)


def test_delivery_status_example(php: str, shared_simulator: SimulatorProcess, tmp_path: Path) -> None:
    """The report example asks for job 123456789: unknown at first, then the seeded simulator's first job."""
    sim = shared_simulator
    before = run_example(php, DELIVERY_STATUS_PHP, sim, tmp_path)
    assert before == {"status": "error", "message": "Invalid Message ID", "data": None}
    add_example_catalog(sim)
    sent = run_example(php, SEND_SINGLE_PHP, sim, tmp_path)
    assert sent["data"]["JobId"] == "123456789"
    sim.admin.advance(3600)
    report = run_example(php, DELIVERY_STATUS_PHP, sim, tmp_path)
    data = report["data"]
    if isinstance(data, dict):  # the second documented shape
        assert data["recipient"] == "9954654365" and data["content"] == "This is Message"
        status = data["delivery_status_id"]
    else:
        assert report["job_id"] == "123456789" and data[0]["content"] == "This is Message"
        status = data[0]["status_name"]
    assert status.lower() in {"delivered", "undelivered", "expired"}


def test_bulk_example_is_not_valid_php(php: str, tmp_path: Path) -> None:
    """The documentation's bulk example does not even parse, which is why it is not run."""
    script = tmp_path / "bulk.php"
    script.write_text(SEND_BULK_PHP)
    lint = subprocess.run([php, "-l", str(script)], capture_output=True, text=True, timeout=30)
    assert lint.returncode != 0 and "syntax error" in (lint.stdout + lint.stderr)
