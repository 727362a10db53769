"""POST /v1/messages/bulk with per-row metadata and idempotency_key, served over loopback on SQLite and
PostgreSQL: 202 when the request wrote messages, 200 for a full replay, 409 when only keys conflict, 422
for a key repeated inside the request, and two concurrent requests with the same keys make each message
once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatcher.context import Context
from dispatcher.db import reading
from dispatcher.models import MESSAGE
from dispatcher.simulator.samples import TXN, number, txn_text
from tests.fixtures.httpapi import ApiServer

pytestmark = pytest.mark.integration


@pytest.fixture
def api_db(database_url, api_settings_factory, api_factory) -> ApiServer:  # type: ignore[no-untyped-def]
    """The API over SQLite or PostgreSQL."""
    return api_factory(Context(api_settings_factory(database_url=database_url, api_key_cache_s=0.0)))  # type: ignore[no-any-return]


def msg(i: int, **extra: Any) -> dict[str, Any]:
    return {"to": number(i), "text": txn_text(i), **extra}


def written(api: ApiServer) -> int:
    with reading(api.ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one())


def test_bulk_rows_with_metadata_and_keys_then_replay(api_db: ApiServer) -> None:
    """202 with ids; each row's metadata is in its status; the same body again is 200 with the same ids,
    every row listed in duplicates, nothing written; a new row beside replays makes it 202 again."""
    key = api_db.key()
    rows = [msg(i, metadata={"order": i}, idempotency_key=f"o-{i}") for i in range(3)]
    first = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": rows})
    assert first.status_code == 202, first.text
    ids = first.json()["ids"]
    assert first.json()["duplicates"] == [] and len(ids) == 3
    assert api_db.get(f"/v1/messages/{ids[1]}", key).json()["metadata"] == {"order": 1}
    again = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": rows})
    assert again.status_code == 200, again.text
    assert again.json()["ids"] == ids
    assert again.json()["duplicates"] == [{"index": i, "id": mid} for i, mid in enumerate(ids)]
    more = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": [*rows, msg(9)]})
    assert more.status_code == 202 and more.json()["ids"][:3] == ids and len(more.json()["duplicates"]) == 3
    assert written(api_db) == 4


def test_bulk_key_conflict_is_409_and_repeat_is_422(api_db: ApiServer) -> None:
    """A key used before for another text: 409 listing the row with the first message's id, nothing
    written (skip_invalid: 202 with the row in rejects); a key given twice in one request: 422."""
    key = api_db.key()
    first = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": [msg(1, idempotency_key="a")]})
    held = first.json()["ids"][0]
    clash = [msg(2), msg(3, idempotency_key="a")]
    resp = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": clash})
    assert resp.status_code == 409, resp.text
    [error] = resp.json()["errors"]
    assert (error["index"], error["field"]) == (1, "idempotency_key") and held in error["reason"]
    assert written(api_db) == 1
    skipped = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": clash, "skip_invalid": True})
    assert skipped.status_code == 202 and [r["index"] for r in skipped.json()["rejects"]] == [1]
    twice = [msg(4, idempotency_key="b"), msg(5, idempotency_key="b"), msg(6, to="12345")]
    bad = api_db.post("/v1/messages/bulk", key, json={**TXN, "messages": twice})
    assert bad.status_code == 422, bad.text
    assert [(e["index"], e["field"]) for e in bad.json()["errors"]] == [(1, "idempotency_key"), (2, "to")]
    assert written(api_db) == 2


def test_concurrent_bulk_posts_with_the_same_keys(api_db: ApiServer) -> None:
    """Three clients post the same 200 keyed rows at once: all get 200/202 with the same ids, one row each."""
    key = api_db.key()
    rows = [msg(i, idempotency_key=f"r-{i}") for i in range(200)]
    answers: list[Any] = []
    barrier = threading.Barrier(3)

    def go() -> None:
        barrier.wait()
        answers.append(api_db.request("POST", "/v1/messages/bulk", key, json={**TXN, "messages": rows}))

    threads = [threading.Thread(target=go) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 202} and 202 in codes, [a.text for a in answers]
    assert all(a.json()["ids"] == answers[0].json()["ids"] for a in answers)
    assert written(api_db) == 200
