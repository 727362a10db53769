"""Opt-outs and the cost preview over HTTP (real SQLite / PostgreSQL and Redis, the app served by uvicorn
over loopback): an opt-out made over HTTP refuses the next enqueue, opting back in lets it through, the
list pages, and an estimate equals the library's and writes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.db import dispose_all, reading
from dispatcher.httpapi.keys import Scope
from dispatcher.models import MESSAGE, OPT_OUT
from dispatcher.numbers import mask
from dispatcher.simulator.samples import PROMO, TXN, number, promo_text, txn_text
from tests.fixtures.httpapi import ApiServer, api_behind_proxy

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
def server(database_url: str, api_settings_factory: Callable[..., Any],
           api_factory: Callable[[Context], ApiServer]) -> Any:
    ctx = Context(api_settings_factory(database_url=database_url, api_key_cache_s=0.0))
    yield api_factory(ctx)
    ctx.redis.close()
    dispose_all()


def count(api: ApiServer, table: Any) -> int:
    with reading(api.ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_an_opt_out_over_http_refuses_the_next_enqueue_and_opting_in_lets_it_through(server: ApiServer):
    key = server.key()
    promo = {"to": number(7), "text": promo_text(7), **PROMO}
    created = server.post("/v1/opt-outs", key, json={"number": "+91 " + number(7)[2:], "reason": "STOP"})
    assert created.status_code == 201, created.text
    assert created.json() == {"number": number(7), "channels": ["promotional"], "changed": 1}
    again = server.post("/v1/opt-outs", key, json={"number": number(7)})
    assert again.status_code == 200 and again.json()["changed"] == 0  # nothing new

    refused = server.post("/v1/messages", key, json=promo)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    errors = refused.json()["errors"]
    assert errors[0]["field"] == "to" and errors[0]["reason"].startswith("opted out of promotional on ")
    txn = server.post("/v1/messages", key, json={"to": number(7), "text": txn_text(7), **TXN})
    assert txn.status_code == 202  # the opt-out covers promotional only
    assert count(server, MESSAGE) == 1

    listed = server.get("/v1/opt-outs", key).json()
    assert [(o["number"], o["channel"], o["reason"], o["source"]) for o in listed["opt_outs"]] == \
        [(number(7), "promotional", "STOP", "api:test")]
    assert listed["next"] is None

    gone = server.request("DELETE", f"/v1/opt-outs/{number(7)}", key)
    assert gone.status_code == 200 and gone.json()["changed"] == 1
    missing = server.request("DELETE", f"/v1/opt-outs/{number(7)}", key)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert server.post("/v1/messages", key, json=promo).status_code == 202


def test_opt_outs_page_with_a_cursor_and_bad_input_names_the_field(server: ApiServer):
    key = server.key()
    for i in range(5):
        assert server.post("/v1/opt-outs", key, json={"number": number(100 + i),
                                                      "channels": ["promotional", "transactional"]}
                           ).status_code == 201
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"after": after} if after else {})}
        page = server.get("/v1/opt-outs", key, params=params).json()
        seen += [(o["number"], o["channel"]) for o in page["opt_outs"]]
        after = page["next"]
        if after is None:
            break
    assert seen == sorted((number(100 + i), c) for i in range(5) for c in ("promotional", "transactional"))
    only = server.get("/v1/opt-outs", key, params={"channel": "transactional", "number": number(101)}).json()
    assert [(o["number"], o["channel"]) for o in only["opt_outs"]] == [(number(101), "transactional")]

    bad = server.post("/v1/opt-outs", key, json={"number": "12345"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "number"
    bad = server.post("/v1/opt-outs", key, json={"number": number(1), "channels": ["fax"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "channels"
    bad = server.post("/v1/opt-outs", key, json={"number": number(1), "reason": "x" * 201})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
    for cursor in ("garbage", f"{number(101)}:\x00", f"{number(101)}:fax", "\u0967\u0968:promotional"):
        bad = server.get("/v1/opt-outs", key, params={"after": cursor})  # NUL: PostgreSQL refuses it in text
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "after", (cursor, bad.text)
    assert count(server, OPT_OUT) == 10  # nothing half-written by the refused requests


def test_opt_out_scopes_and_keys(server: ApiServer):
    reader = server.key("reader", frozenset({Scope.READ}))
    sender = server.key("sender", frozenset({Scope.SEND}))
    estimate = {**PROMO, "messages": [{"to": number(1), "text": promo_text(1)}]}
    assert server.post("/v1/opt-outs", sender, json={"number": number(2)}).status_code == 201
    assert server.post("/v1/opt-outs", reader, json={"number": number(1)}).status_code == 403
    assert server.request("DELETE", f"/v1/opt-outs/{number(2)}", reader).status_code == 403
    assert server.get("/v1/opt-outs", sender).status_code == 403
    assert server.post("/v1/estimate", sender, json=estimate).status_code == 403
    assert server.post("/v1/estimate", reader, json=estimate).status_code == 200  # writes nothing: read
    for bad in (None, "not-a-key"):
        assert server.post("/v1/opt-outs", bad, json={"number": number(1)}).status_code == 401
        assert server.request("DELETE", f"/v1/opt-outs/{number(2)}", bad).status_code == 401
        assert server.get("/v1/opt-outs", bad).status_code == 401
        assert server.post("/v1/estimate", bad, json=estimate).status_code == 401
    with reading(server.ctx.engine) as conn:  # only the sender's opt-out exists
        assert conn.execute(select(OPT_OUT.c.number)).scalars().all() == [number(2)]


def test_a_key_with_a_long_name_can_record_opt_outs(server: ApiServer):
    """Key names take 100 characters, an opt-out's source 64: the recorded source is cut to fit
    instead of refusing a field the caller never sent."""
    name = "n" * 100
    resp = server.post("/v1/opt-outs", server.key(name), json={"number": number(4)})
    assert resp.status_code == 201, resp.text
    with reading(server.ctx.engine) as conn:
        assert conn.execute(select(OPT_OUT.c.source)).scalar_one() == f"api:{name}"[:64]


def test_an_estimate_over_http_is_the_librarys_and_writes_nothing(server: ApiServer):
    key = server.key()
    server.post("/v1/opt-outs", key, json={"number": number(3)})
    rows = [{"to": number(i), "text": promo_text(i)} for i in range(6)]
    rows.append({"to": number(50), "text": promo_text(50) + " ₹"})  # goes out as UCS-2
    rows.append({"to": "12", "text": promo_text(51)})  # not a number
    before = {t.name: count(server, t) for t in SQLModel.metadata.sorted_tables}
    resp = server.post("/v1/estimate", key, json={**PROMO, "messages": rows})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    lib = Dispatcher(server.ctx).estimate(rows, **PROMO).to_dict()
    lib["parts"] = {str(k): v for k, v in lib["parts"].items()}
    for k in ("rows", "accepted", "credits", "parts", "refused_count", "refused_by_reason", "ucs2_count",
              "smart_saving", "balance", "balance_after"):
        assert body[k] == lib[k], k
    assert body["rows"] == 8 and body["refused_count"] == 2 and body["accepted"] == 6
    refused = {r["index"]: (r["field"], r["reason"]) for r in body["refused"]}
    assert refused[3][0] == "to" and refused[3][1].startswith("opted out of promotional")
    assert refused[7][0] == "to" and set(refused) == {3, 7}
    assert [(u["index"], u["char"], u["code_point"]) for u in body["ucs2"]] == [(6, "₹", "U+20B9")]
    assert body["ucs2"][0]["position"] == len(promo_text(50)) + 2
    assert {t.name: count(server, t) for t in SQLModel.metadata.sorted_tables} == before  # nothing written
    assert before["message"] == 0 and before["opt_out"] == 1
    assert server.ctx.lanes.depth("promotional") == 0  # nothing enqueued


def test_an_estimate_takes_the_bulk_row_limit(api_settings_factory: Callable[..., Any],
                                              api_factory: Callable[[Context], ApiServer]):
    """API_MAX_BULK_ROWS bounds an estimate as it bounds a bulk POST: 413 naming `messages` past it."""
    api = api_factory(Context(api_settings_factory(api_max_bulk_rows=3)))
    key = api.key()
    rows = [{"to": number(i), "text": promo_text(i)} for i in range(4)]
    assert api.post("/v1/estimate", key, json={**PROMO, "messages": rows[:3]}).status_code == 200
    for path in ("/v1/estimate", "/v1/messages/bulk"):
        resp = api.post(path, key, json={**PROMO, "messages": rows})
        assert resp.status_code == 413 and resp.headers["content-type"] == PROBLEM, (path, resp.text)
        assert resp.json()["errors"] == [{"field": "messages", "reason": "at most 3 rows"}]
    assert count(api, MESSAGE) == 0


def test_a_failed_delete_logs_the_number_masked(redis_url: str, redis_prefix: str, pg_url: str,
                                                shared_simulator: Any, tcp_proxy: Any,
                                                api_factory: Callable[[Context], ApiServer],
                                                caplog: pytest.LogCaptureFixture):
    """DELETE /v1/opt-outs/{number} with PostgreSQL away is 503, and the log line masks the number that
    the path carries (the caller gets its own number back in `instance`)."""
    api, proxy = api_behind_proxy(pg_url, redis_url, redis_prefix, shared_simulator, tcp_proxy, api_factory)
    ctx = api.ctx
    key = api.key()
    assert api.post("/v1/opt-outs", key, json={"number": number(9)}).status_code == 201  # caches the key
    proxy.down()
    try:
        with caplog.at_level(logging.WARNING, logger="dispatcher.httpapi.problems"):
            resp = api.request("DELETE", f"/v1/opt-outs/{number(9)}", key)
        assert resp.status_code == 503, resp.text
        assert resp.json()["instance"] == f"/v1/opt-outs/{number(9)}"
    finally:
        proxy.up()
    lines = [r.getMessage() for r in caplog.records if r.name == "dispatcher.httpapi.problems"]
    assert lines and all(number(9) not in line for line in lines), lines
    assert any(f"/v1/opt-outs/{mask(number(9))}" in line for line in lines), lines
    ctx.redis.close()
    dispose_all()
