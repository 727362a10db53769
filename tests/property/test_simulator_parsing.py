"""The simulator's request parsing under random requests (real HTTP to a real simulator process): any
method, path, content type, body and parameters gives a JSON answer (an error body when it is wrong),
never a 500 with a traceback, and the process stays up."""

from __future__ import annotations

import json
import random

import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dispatcher.simulator.faults import COMMANDS

CTYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data",
          "multipart/form-data; boundary=xyz", "text/plain", "application/json; charset=latin-1", "", "*/*"]
NAMES = ["recipient", "message", "sender_id", "template_id", "channel", "is_unicode", "job_id", "message_id",
         "key", "apiKey"]
any_char = st.characters(codec=None, exclude_categories=())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(any_char, max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner,
                                                                          max_size=3)), max_leaves=12)
recipient_rows = st.lists(st.fixed_dictionaries({"number": json_values, "text": json_values}), max_size=4)


@st.composite
def bodies(draw: st.DrawFn, key: str) -> tuple[str, bytes]:
    """(content type, body): JSON objects with random values, forms, multipart, or raw bytes."""
    kind = draw(st.sampled_from(["json", "form", "multipart", "raw"]))
    params = draw(st.dictionaries(st.sampled_from(NAMES), json_values, max_size=6))
    if draw(st.booleans()):
        params["recipient"] = draw(recipient_rows)
    if draw(st.booleans()):
        params["key"] = key
    if kind == "json":
        return draw(st.sampled_from(CTYPES)), json.dumps(params).encode("utf-8", "surrogatepass")
    if kind == "form":
        data = "&".join(f"{k}={json.dumps(v)}" for k, v in params.items())
        return "application/x-www-form-urlencoded", data.encode("utf-8", "surrogatepass")
    if kind == "multipart":
        boundary = draw(st.sampled_from(["xyz", "", "a" * 80]))
        parts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                         .encode("utf-8", "surrogatepass") for k, v in params.items())
        tail = draw(st.sampled_from([f"--{boundary}--\r\n".encode(), b"", b"--"]))
        return f"multipart/form-data; boundary={boundary}", parts + tail
    return draw(st.sampled_from(CTYPES)), draw(st.binary(max_size=200))


def _check(sim, method: str, path: str, ctype: str, body: bytes, headers: dict[str, str]) -> None:
    hdrs = dict(headers)
    if ctype:
        hdrs["Content-Type"] = ctype
    resp = requests.request(method, f"{sim.root_url}{path}", data=body, headers=hdrs, timeout=10)
    assert resp.status_code != 500 and resp.status_code < 500, f"HTTP {resp.status_code}: {resp.text[:300]}"
    assert "Traceback" not in resp.text
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.text[:200]
    doc = resp.json()
    assert isinstance(doc, dict) and isinstance(doc.get("status", "x"), str)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(command="send-bulk-sms", method="POST", ctype="application/json",
         body=b"[" * 50_000 + b"]" * 50_000, with_key=True)  # nested past the JSON parser's recursion limit
@example(command="send-bulk-sms", method="POST", ctype="application/json",
         body=b'{"recipient": [{"number": "\\ud800", "text": "x"}], "channel": 1, "is_unicode": 0, '
              b'"sender_id": "SMSPNT", "template_id": "1207161000000000002"}',
         with_key=True)  # a lone surrogate echoed back in the Rejected list
@given(command=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=12)),
       method=st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "PATCH"]),
       ctype=st.sampled_from(CTYPES), body=st.binary(max_size=300), with_key=st.booleans())
def test_any_raw_request_gets_a_json_answer(shared_simulator, command, method, ctype, body, with_key):
    """Raw bytes of any content type to any command and method: a JSON answer below 500."""
    headers = {"key": shared_simulator.api_key} if with_key else {}
    _check(shared_simulator, method, f"/api/v1/{command}", ctype, body, headers)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), data=st.data())
def test_structured_requests_with_wrong_values_get_a_json_answer(shared_simulator, command, data):
    """Well-formed JSON, form and multipart bodies with values of every type: a JSON answer below 500."""
    ctype, body = data.draw(bodies(shared_simulator.api_key))
    query = data.draw(st.sampled_from(["", "?channel=1", "?key=" + shared_simulator.api_key, "?a=%ZZ&&=&b"]))
    _check(shared_simulator, "POST", f"/api/v1/{command}{query}", ctype, body, {})


def test_simulator_survives_and_binds_loopback_by_default(shared_simulator):
    """After the random requests the process is alive; by default it listens on 127.0.0.1 only."""
    from dispatcher.simulator.cli import build_parser

    assert shared_simulator.alive()
    assert build_parser().parse_args([]).host == "127.0.0.1"
    assert shared_simulator.root_url.startswith("http://127.0.0.1:")
    rng = random.Random(1)
    body = bytes(rng.randrange(256) for _ in range(10_000))
    _check(shared_simulator, "POST", "/api/v1/send-bulk-sms", "multipart/form-data; boundary=--", body, {})
