"""The HTTP API's contract on real SQLite and Redis (the app served by uvicorn over loopback): 202/200/409
with Idempotency-Key, 401/403, 413/415/400/422 (every rejected bulk row listed, nothing written), 429 with
Retry-After from the shared limiter, problem+json bodies, the status and catalogue reads, health checks."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from dispatcher.db import reading
from dispatcher.httpapi import keyring
from dispatcher.httpapi.keys import Scope
from dispatcher.models import MESSAGE
from dispatcher.simulator.samples import TXN, number, txn_text
from tests.fixtures.httpapi import ApiServer

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def one(i: int, **extra: object) -> dict[str, object]:
    return {"to": number(i), "text": txn_text(i), **TXN, **extra}


def rows_written(api: ApiServer) -> int:
    with reading(api.ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one())


def problem(resp: object, status: int) -> dict[str, object]:
    """The response is a problem+json of ``status`` with RFC 9457's members."""
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["title"] and body["detail"]
    assert str(body["type"]).startswith("urn:smsdispatch:problem:")
    return body  # type: ignore[no-any-return]


def test_post_then_read_status(api: ApiServer) -> None:
    """POST /v1/messages answers 202 {id, state}; GET returns the library's status with the number masked."""
    key = api.key()
    resp = api.post("/v1/messages", key, json=one(1, metadata={"order": 7}))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["state"] == "queued" and len(body["id"]) == 32
    status = api.get(f"/v1/messages/{body['id']}", key).json()
    assert status["id"] == body["id"] and status["state"] == "queued"
    assert status["metadata"] == {"order": 7} and number(1) not in json.dumps(status)
    assert status["number_masked"].endswith(number(1)[-4:])
    problem(api.get("/v1/messages/0123456789abcdef0123456789abcdef", key), 404)


def test_idempotency_key_replay_and_conflict(api: ApiServer) -> None:
    """Same Idempotency-Key and body: the first id with 200; same key, other text: 409; one row written."""
    key = api.key()
    first = api.post("/v1/messages", key, json=one(2), headers={"Idempotency-Key": "order-2"})
    again = api.post("/v1/messages", key, json=one(2), headers={"Idempotency-Key": "order-2"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    other = problem(api.post("/v1/messages", key, json=one(3), headers={"Idempotency-Key": "order-2"}), 409)
    assert first.json()["id"] in str(other["detail"])
    assert rows_written(api) == 1


def test_authentication_and_scopes(api: ApiServer) -> None:
    """No key, a malformed or unknown key, a revoked key: 401; a read-only key may not send: 403."""
    body = one(4)
    missing = api.post("/v1/messages", None, json=body)
    problem(missing, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    problem(api.post("/v1/messages", "not-a-key", json=body), 401)
    good = api.key("sender")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    problem(api.post("/v1/messages", forged, json=body), 401)
    problem(api.post("/v1/messages", None, json=body, headers={"Authorization": f"Basic {good}"}), 401)
    reader = api.key("reader", frozenset({Scope.READ}))
    forbidden = problem(api.post("/v1/messages", reader, json=body), 403)
    assert forbidden["errors"] == [{"field": "scope", "reason": "needs send"}]
    assert api.get("/v1/balance", reader).status_code == 200
    keyring.revoke(api.ctx, "sender")
    assert "revoked" in str(problem(api.post("/v1/messages", good, json=body), 401)["detail"])
    assert rows_written(api) == 0


def test_bulk_all_or_nothing_lists_every_bad_row(api: ApiServer) -> None:
    """A bulk POST with invalid rows is 422 listing each (index, field, reason) and writes nothing;
    with skip_invalid the valid rows are enqueued and the others returned as rejects."""
    key = api.key()
    messages = [{"to": number(10), "text": txn_text(10)}, {"to": "12345", "text": txn_text(11)},
                {"to": number(12), "text": txn_text(12)}, {"to": number(13), "text": ""}]
    bad = problem(api.post("/v1/messages/bulk", key, json={**TXN, "messages": messages}), 422)
    assert [(e["index"], e["field"]) for e in bad["errors"]] == [(1, "to"), (3, "text")]  # type: ignore[union-attr]
    assert rows_written(api) == 0
    ok = api.post("/v1/messages/bulk", key, json={**TXN, "messages": messages, "skip_invalid": True})
    assert ok.status_code == 202, ok.text
    assert len(ok.json()["ids"]) == 2 and [r["index"] for r in ok.json()["rejects"]] == [1, 3]
    assert rows_written(api) == 2


def test_request_shape_errors(api: ApiServer) -> None:
    """Wrong types, unknown fields, a bad channel and library-level mistakes are 422 naming each field;
    malformed and absurdly nested JSON are 400; a form body is 415; nothing is written."""
    key = api.key()
    mistakes = {**one(5), "text": 5, "bogus": 1, "channel": "x"}
    wrong = problem(api.post("/v1/messages", key, json=mistakes), 422)
    assert {e["field"] for e in wrong["errors"]} == {"text", "bogus", "channel"}  # type: ignore[union-attr]
    lib = problem(api.post("/v1/messages", key, json=one(5, to="12")), 422)
    assert lib["errors"][0]["field"] == "to"  # type: ignore[index]
    sender = problem(api.post("/v1/messages", key, json=one(5, sender_id="")), 422)
    assert sender["errors"][0]["field"] == "sender_id"  # type: ignore[index]
    headers = {"Content-Type": "application/json"}
    problem(api.post("/v1/messages", key, data=b'{"to": ', headers=headers), 400)
    deep = b"[" * 100_000 + b"]" * 100_000
    problem(api.post("/v1/messages", key, data=deep, headers=headers), 400)
    problem(api.post("/v1/messages", key, data={"to": number(5)}), 415)
    problem(api.post("/v1/messages", key, data=b"{}", headers={"Content-Type": "text/plain"}), 415)
    assert rows_written(api) == 0


def test_size_limits(api_settings_factory, api_factory) -> None:  # type: ignore[no-untyped-def]
    """Past API_MAX_BODY_BYTES (declared or chunked) and past API_MAX_BULK_ROWS: 413, nothing written."""
    from dispatcher.context import Context

    api = api_factory(Context(api_settings_factory(api_max_body_bytes=4096, api_max_bulk_rows=3)))
    key = api.key()
    big = one(6, metadata={"pad": "x" * 5000})
    problem(api.post("/v1/messages", key, json=big), 413)
    chunked = (json.dumps(big)[i:i + 500].encode() for i in range(0, len(json.dumps(big)), 500))
    problem(api.post("/v1/messages", key, data=chunked, headers={"Content-Type": "application/json"}), 413)
    rows = [{"to": number(i), "text": txn_text(i)} for i in range(4)]
    too_many = problem(api.post("/v1/messages/bulk", key, json={**TXN, "messages": rows}), 413)
    assert too_many["errors"] == [{"field": "messages", "reason": "at most 3 rows"}]
    assert api.post("/v1/messages/bulk", key, json={**TXN, "messages": rows[:3]}).status_code == 202
    assert rows_written(api) == 3


def test_rate_limit_answers_429_with_retry_after(api: ApiServer) -> None:
    """A key limited to 1 request/s gets 429 with Retry-After on its next request; other keys do not."""
    slow = api.key("slow", rate=1.0)
    other = api.key("other")
    answers = [api.get("/v1/balance", slow) for _ in range(3)]
    codes = [a.status_code for a in answers]
    assert codes[0] == 200 and 429 in codes, codes
    limited = next(a for a in answers if a.status_code == 429)
    problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert api.get("/v1/balance", other).status_code == 200


def test_reads_and_health(api: ApiServer) -> None:
    """Balance, sender ids and templates (fetched from the simulator once, then shared); healthz, readyz."""
    key = api.key()
    balance = api.get("/v1/balance", key).json()
    assert set(balance["packages"]) >= {"OTP", "Promotional", "Transactional"}
    senders = api.get("/v1/senders", key).json()
    assert "SMSPNT" in {s["sender_id"] for s in senders}
    templates = api.get("/v1/templates", key).json()
    assert TXN["template_id"] in {t["template_id"] for t in templates}
    assert api.get("/healthz", None).json() == {"status": "ok"}
    assert api.get("/readyz", None).json() == {"status": "ready", "database": True, "redis": True}
    doc = api.get("/openapi.json", None).json()
    assert {"/v1/messages", "/v1/messages/bulk", "/v1/messages/{message_id}"} <= set(doc["paths"])
    assert "swagger" in api.get("/docs", None).text.lower()


def test_catalog_checks_apply_over_http(api: ApiServer) -> None:
    """Once the catalogue is known, a text that does not match its DLT template is refused with the reason."""
    key = api.key()
    api.get("/v1/templates", key)  # fetches and shares the catalogue
    api.ctx.catalog.invalidate_local()
    wrong = problem(api.post("/v1/messages", key, json=one(7, text="Free money, click here")), 422)
    assert wrong["errors"][0]["field"] == "text" and "template" in wrong["errors"][0]["reason"]  # type: ignore[index]
