"""The simulator's answer variants over real loopback HTTP: each variant as a client sees it (send answers,
PHP single sends, delivery reports), the ledger and /_sim/spent as the truth of what was taken and charged,
the control API (merge, clear, 400s naming the key), flags restored by reset, and the demo's option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from rich.console import Console

from dispatcher.demo import DemoOptions, infra
from dispatcher.demo.procs import Children
from dispatcher.demo.runner import Demo
from dispatcher.errors import ConfigurationError
from dispatcher.settings import Settings
from dispatcher.simulator import DEFAULT_API_KEY, AdminClient, SimulatorProcess
from dispatcher.simulator.samples import otp_text
from dispatcher.simulator.variants import Variants
from tests.integration.test_demo import clean_env, demo_argv
from tests.integration.test_simulator import bulk, call, quiet_lifecycle, single, text

pytestmark = pytest.mark.integration

DEFAULTS = Variants().to_dict()


def numbers(n: int, base: int = 0) -> list[str]:
    return [f"9199546{base + i:05d}" for i in range(n)]


def send_bulk(sim: SimulatorProcess, nums: list[str]) -> dict[str, Any]:
    body = call(sim, "send-bulk-sms", data=bulk([(n, text(i)) for i, n in enumerate(nums)])).json()
    assert body["status"] == "success", body
    return body  # type: ignore[no-any-return]


def report(sim: SimulatorProcess, job_id: Any) -> dict[str, Any]:
    return call(sim, "sms-delivery-status", data={"job_id": job_id}).json()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- control API


def test_get_shows_defaults_post_merges_and_clear_restores(shared_simulator: SimulatorProcess) -> None:
    """GET /_sim/variants lists every variant; POST merges the keys given; {"clear": true} resets them."""
    admin = shared_simulator.admin
    assert admin.variants() == DEFAULTS
    assert admin.variants(order="reversed") == DEFAULTS | {"order": "reversed"}
    assert admin.variants(omit_rate=0.5, text_in_answer=False) == DEFAULTS | {
        "order": "reversed", "omit_rate": 0.5, "text_in_answer": False}
    assert admin.variants(clear=True) == DEFAULTS
    assert admin.variants(clear=True, code="str") == DEFAULTS | {"code": "str"}
    admin.reset()
    assert admin.variants() == DEFAULTS


@pytest.mark.parametrize(("body", "named"), [
    ({"colour": "red"}, "colour"), ({"order": "random"}, "order"),
    ({"number_format": "e164"}, "number_format"),
    ({"report_number_format": None}, "report_number_format"), ({"omit_rate": 2}, "omit_rate"),
    ({"drop_rate": "0.1"}, "drop_rate"), ({"repeat_rate": -1}, "repeat_rate"),
    ({"text_in_answer": 1}, "text_in_answer"), ({"code": 200}, "code"), ({"message_id_type": "uuid"},
                                                                       "message_id_type"),
    ({"clear": "yes"}, "clear"), ({"order": "reversed", "omit_rate": 7}, "omit_rate"),
])
def test_bad_variants_answer_400_naming_the_key(shared_simulator: SimulatorProcess, body: dict[str, Any],
                                                named: str) -> None:
    """An unknown key or a bad value is HTTP 400 {"error": ...} naming the key, and nothing changes."""
    resp = requests.post(f"{shared_simulator.root_url}/_sim/variants", json=body, timeout=10)
    assert resp.status_code == 400
    assert named in resp.json()["error"]
    assert shared_simulator.admin.variants() == DEFAULTS


def test_non_object_body_is_a_400(shared_simulator: SimulatorProcess) -> None:
    """A JSON array or broken JSON for /_sim/variants is HTTP 400, not a 500."""
    for data in (b"[1]", b"{order"):
        resp = requests.post(f"{shared_simulator.root_url}/_sim/variants", data=data, timeout=10)
        assert resp.status_code == 400 and "error" in resp.json()


def test_flags_set_variants_and_reset_returns_to_them(simulator_factory: Any) -> None:
    """Flags (each variant's own, and --variants name=value,...) are the start-up values reset restores."""
    sim = simulator_factory("--variants", "omit_rate=0.25,code=str", "--order", "reversed",
                            "--no-text-in-answer", "--report-number-format", "plus", "--drop-rate", "0.5",
                            "--message-id-type", "int", "--number-format", "mixed", "--repeat-rate", "0.1")
    started = DEFAULTS | {"omit_rate": 0.25, "code": "str", "order": "reversed", "text_in_answer": False,
                          "report_number_format": "plus", "drop_rate": 0.5, "message_id_type": "int",
                          "number_format": "mixed", "repeat_rate": 0.1}
    assert sim.admin.variants() == started
    sim.admin.variants(clear=True)
    sim.admin.reset()
    assert sim.admin.variants() == started


def test_bad_variant_flag_stops_the_simulator_at_start() -> None:
    """A variant flag out of range makes python -m dispatcher.simulator exit with an error naming it."""
    proc = subprocess.run([sys.executable, "-m", "dispatcher.simulator", "--port", "0", "--omit-rate", "3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "omit_rate" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dispatcher.simulator", "--variants", "order=up"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "order must be one of" in proc.stderr


# ----------------------------------------------------------------------------- send answers


def test_order_reversed_and_shuffled(shared_simulator: SimulatorProcess) -> None:
    """reversed lists MessageData last recipient first; shuffled is a permutation that a reset (same seed,
    same job ids) repeats exactly."""
    sim = shared_simulator
    nums = numbers(30)
    sim.admin.variants(order="reversed")
    assert [e["Number"] for e in send_bulk(sim, nums)["data"]["MessageData"]] == nums[::-1]
    sim.admin.reset()
    sim.admin.variants(order="shuffled")
    first = [e["Number"] for e in send_bulk(sim, nums)["data"]["MessageData"]]
    assert sorted(first) == sorted(nums) and first != nums
    sim.admin.reset()
    sim.admin.variants(order="shuffled")
    assert [e["Number"] for e in send_bulk(sim, nums)["data"]["MessageData"]] == first


@pytest.mark.parametrize(("fmt", "written"), [("cc", "919954600007"), ("national", "9954600007"),
                                               ("plus", "+919954600007")])
def test_number_format_in_bulk_and_php_single_answers(shared_simulator: SimulatorProcess, fmt: str,
                                                      written: str) -> None:
    """number_format writes MessageData Numbers as 91..., 10 digits or +91..., in bulk and single sends."""
    sim = shared_simulator
    sim.admin.variants(number_format=fmt)
    [row] = send_bulk(sim, ["919954600007"])["data"]["MessageData"]
    assert row["Number"] == written
    single_body = call(sim, "send-single-sms", data=single("919954600007")).json()
    assert [e["Number"] for e in single_body["data"]["MessageData"]] == [written]
    assert {e["number"] for e in sim.admin.ledger()} == {"919954600007"}


def test_mixed_number_format_uses_all_three(shared_simulator: SimulatorProcess) -> None:
    """number_format=mixed writes some Numbers each way, each normalising to its recipient."""
    sim = shared_simulator
    sim.admin.variants(number_format="mixed")
    nums = numbers(40)
    rows = send_bulk(sim, nums)["data"]["MessageData"]
    written = [e["Number"] for e in rows]
    assert {len(n) for n in written} == {10, 12, 13}
    assert [n[-10:] for n in written] == [n[2:] for n in nums]


def test_omitted_recipients_are_taken_charged_and_reported(shared_simulator: SimulatorProcess) -> None:
    """omit_rate: left out of MessageData, yet in the ledger (in_answer 0), charged and in reports."""
    sim = shared_simulator
    sim.admin.variants(omit_rate=0.5)
    quiet_lifecycle(sim)
    sim.admin.set_shapes(report_shape="list")
    nums = numbers(40)
    body = send_bulk(sim, nums)
    listed = {e["message_id"] for e in body["data"]["MessageData"]}
    ledger = sim.admin.ledger()
    omitted = {e["message_id"] for e in ledger if e["in_answer"] == 0}
    assert 10 <= len(omitted) <= 30 and len(listed) + len(omitted) == len(ledger) == 40
    assert sim.admin.spent() == {"OTP": 0, "Promotional": 0, "Transactional": 40}
    reported = {row["message_id"] for row in report(sim, body["data"]["JobId"])["data"]}
    assert reported == listed | omitted


def test_dropped_recipients_are_never_taken_yet_the_answer_says_success(
        shared_simulator: SimulatorProcess) -> None:
    """drop_rate: absent from MessageData, ledger and delivery reports, and not charged; status success."""
    sim = shared_simulator
    before = sim.admin.credits()["Transactional"]
    sim.admin.variants(drop_rate=0.5)
    sim.admin.set_shapes(report_shape="list")
    nums = numbers(40)
    body = send_bulk(sim, nums)
    assert body["message"] == "SMS Sent Successfully"
    ledger = sim.admin.ledger()
    taken = [e["number"] for e in ledger]
    assert 10 <= len(taken) <= 30
    assert [e["Number"] for e in body["data"]["MessageData"]] == taken
    assert sim.admin.spent()["Transactional"] == len(taken) == before - sim.admin.credits()["Transactional"]
    rows = report(sim, body["data"]["JobId"])["data"]
    assert {row["message_id"] for row in rows} == {e["message_id"] for e in ledger}
    assert [c["recipients"] for c in sim.admin.calls() if c["command"] == "send-bulk-sms"] == [40]


def test_repeated_entries_keep_their_message_id(shared_simulator: SimulatorProcess) -> None:
    """repeat_rate: some entries appear twice with the same message_id; the ledger holds each once."""
    sim = shared_simulator
    sim.admin.variants(repeat_rate=0.5)
    rows = send_bulk(sim, numbers(30))["data"]["MessageData"]
    ids = [e["message_id"] for e in rows]
    twice = {i for i in ids if ids.count(i) == 2}
    assert twice and max(ids.count(i) for i in ids) == 2
    ledger = sim.admin.ledger()
    assert len(ledger) == 30 and {e["message_id"] for e in ledger if e["in_answer"] == 2} == twice
    assert all(rows.count(e) == 2 for e in rows if e["message_id"] in twice)


def test_text_code_and_id_types(shared_simulator: SimulatorProcess) -> None:
    """text_in_answer=false drops 'message'; code str/absent; message_id_type=int gives numeric ids, and a
    numeric job id still finds the job in sms-delivery-status."""
    sim = shared_simulator
    sim.admin.variants(text_in_answer=False, code="str", message_id_type="int")
    body = send_bulk(sim, numbers(2))
    assert body["code"] == "200"
    job = body["data"]["JobId"]
    assert isinstance(job, int)
    assert all(set(e) == {"Number", "message_id"} and isinstance(e["message_id"], int)
               for e in body["data"]["MessageData"])
    resp = call(sim, "sms-delivery-status", json={"job_id": job})
    assert len(resp.json()["data"]) == 2
    sim.admin.variants(code="absent")
    single_body = call(sim, "send-single-sms", data=single()).json()
    assert "code" not in single_body and single_body["status"] == "success"


def test_csharp_shape_keeps_its_shape_and_drops_still_apply(shared_simulator: SimulatorProcess) -> None:
    """With send_shape=csharp the bulk answer stays {status, message_id}; drops still leave the ledger."""
    sim = shared_simulator
    sim.admin.set_shapes(send_shape="csharp")
    sim.admin.variants(drop_rate=1.0, code="str")
    body = send_bulk(sim, numbers(5))
    assert body == {"status": "success", "message": "SMS Sent Successfully",
                    "data": {"status": "success", "message_id": body["data"]["message_id"]}}
    assert [e["number"] for e in sim.admin.ledger()] == numbers(1)  # dropping keeps one per call


def test_same_number_twice_in_one_call_is_two_messages(shared_simulator: SimulatorProcess) -> None:
    """One number twice in a call (same text, then another text): separate messages, ids and charges."""
    sim = shared_simulator
    n = "919954654365"
    body = call(sim, "send-bulk-sms", data=bulk([(n, text(1)), (n, text(1)), (n, text(2))])).json()
    ids = [e["message_id"] for e in body["data"]["MessageData"]]
    assert len(set(ids)) == 3
    assert [(e["message_id"], e["number"], e["text"]) for e in sim.admin.ledger()] == [
        (ids[0], n, text(1)), (ids[1], n, text(1)), (ids[2], n, text(2))]
    assert sim.admin.spent()["Transactional"] == 3


# ----------------------------------------------------------------------------- reports and spent


@pytest.mark.parametrize(("fmt", "lengths"), [("national", {10}), ("cc", {12}), ("plus", {13}),
                                               ("mixed", {10, 12, 13})])
def test_report_number_format(shared_simulator: SimulatorProcess, fmt: str, lengths: set[int]) -> None:
    """report_number_format writes mobile_number/recipient in list and single reports as it says."""
    sim = shared_simulator
    sim.admin.variants(report_number_format=fmt)
    sim.admin.set_shapes(report_shape="list")
    nums = numbers(30)
    rows = report(sim, send_bulk(sim, nums)["data"]["JobId"])["data"]
    written = [row.get("mobile_number") or row.get("recipient") for row in rows]
    assert {len(w) for w in written} == lengths
    assert [w[-10:] for w in written] == [n[2:] for n in nums]
    sim.admin.set_shapes(report_shape="single")
    job = call(sim, "send-single-sms", data=single("919954600007")).json()["data"]["JobId"]
    assert report(sim, job)["data"]["recipient"][-10:] == "9954600007"


def test_spent_counts_charges_per_package_until_reset(shared_simulator: SimulatorProcess) -> None:
    """/_sim/spent (and health) count credits charged per package; refused calls add nothing; reset zeroes."""
    sim = shared_simulator
    zero = {"OTP": 0, "Promotional": 0, "Transactional": 0}
    assert sim.admin.spent() == zero
    send_bulk(sim, numbers(3))
    call(sim, "send-single-sms", data=single(message=text(1) + "x" * 200))  # mismatch: refused, not charged
    otp = {"recipient": numbers(1)[0], "message": otp_text(1), "sender_id": "OTPSMS",
           "template_id": "1207161000000000004", "channel": 3, "is_unicode": 0}
    assert call(sim, "send-single-sms", data=otp).json()["status"] == "success"
    assert sim.admin.spent() == {"OTP": 1, "Promotional": 0, "Transactional": 3}
    assert sim.admin.health()["spent"] == sim.admin.spent()
    sim.admin.reset()
    assert sim.admin.spent() == zero


# ----------------------------------------------------------------------------- the demo's option


def test_demo_starts_its_simulator_with_the_variants(tmp_path: Path) -> None:
    """The demo's simulator start passes --sim-variants through: the control API shows them."""
    children = Children(tmp_path / "logs")
    try:
        gw = infra.start_simulator(children, DEFAULT_API_KEY, "order=reversed,omit_rate=0.1")
        admin = AdminClient(gw.base_url.removesuffix("/api/v1"))
        assert admin.variants() == DEFAULTS | {"order": "reversed", "omit_rate": 0.1}
        admin.close()
    finally:
        assert children.stop_all(grace_s=5) == []


def test_demo_refuses_a_bad_sim_variants_value(tmp_path: Path, redis_url: str) -> None:
    """smsdispatch demo --sim-variants with a bad value stops at once with a message naming the key."""
    proc = subprocess.run(demo_argv("--messages", "5", "--no-flower", "--sim-variants", "order=sideways"),
                          cwd=tmp_path, env=clean_env(REDIS_URL=redis_url), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "order must be one of" in proc.stdout


def test_demo_sets_the_variants_on_a_simulator_it_did_not_start(tmp_path: Path,
                                                               shared_simulator: SimulatorProcess) -> None:
    """With SMSPOINT_BASE_URL at a running simulator, the demo sets --sim-variants through its control API;
    with a real gateway it refuses them."""
    def demo(url: str) -> Demo:
        base = Settings(smspoint_base_url=url, smspoint_api_key=shared_simulator.api_key)
        return Demo(DemoOptions(sim_variants="code=absent,repeat_rate=0.5"), base, tmp_path,
                    Children(tmp_path / "logs"), Console(file=None, quiet=True), flower_password="unused",
                    sync=False)

    gw = demo(shared_simulator.base_url)._gateway()
    assert gw.simulator and not gw.started
    assert shared_simulator.admin.variants() == DEFAULTS | {"code": "absent", "repeat_rate": 0.5}
    with pytest.raises(ConfigurationError, match="--sim-variants needs the simulator"):
        demo("http://127.0.0.1:9/api/v1")._gateway()
