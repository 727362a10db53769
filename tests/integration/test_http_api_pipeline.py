"""The HTTP API on the whole pipeline: real SQLite / PostgreSQL, Redis, Celery worker processes and the
simulator over loopback. A POSTed message reaches the gateway exactly once and its status is read over
HTTP; a SIGKILLed ``smsdispatch api`` process loses nothing it answered 202 for; with PostgreSQL down the
API answers 503 and writes nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from bench.harness import settings_env
from dispatcher.db import dispose_all, reading
from dispatcher.httpapi import keyring
from dispatcher.httpapi.keys import Scope
from dispatcher.httpapi.server import start_background
from dispatcher.models import MESSAGE
from dispatcher.simulator.samples import TXN, number, txn_text
from tests.fixtures.httpapi import api_behind_proxy
from tests.integration.pipeline_helpers import FAST_REPAIR

pytestmark = pytest.mark.integration

ALL = frozenset(Scope)
DONE = ("sent", "delivered", "undelivered", "expired")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_posted_messages_reach_the_gateway_once(make_stack, api_factory) -> None:  # type: ignore[no-untyped-def]
    """One single and one bulk POST are each sent once (simulator ledger) and read back as sent over HTTP."""
    stack = make_stack()
    api = api_factory(stack.ctx)
    key = api.key()
    single = api.post("/v1/messages", key, json={"to": number(1), "text": txn_text(1), **TXN})
    bulk = api.post("/v1/messages/bulk", key, json={**TXN, "messages": [
        {"to": number(i), "text": txn_text(i)} for i in range(2, 6)]})
    assert single.status_code == 202 and bulk.status_code == 202, (single.text, bulk.text)
    ids = [single.json()["id"], *bulk.json()["ids"]]
    stack.start_worker(concurrency=2)
    stack.wait_settled(5)
    ledger = Counter(e["number"] for e in stack.sim.admin.ledger())
    assert ledger == Counter(number(i) for i in range(1, 6))
    for mid in ids:
        status = api.get(f"/v1/messages/{mid}", key).json()
        assert status["state"] in DONE and status["gateway_message_id"], status


def _hammer(base_url: str, key: str, stop: threading.Event, accepted: list[tuple[str, str]],
            start: int) -> None:
    """POST distinct messages until stopped (or the server dies); record (id, number) of each 202."""
    http = requests.Session()
    i = start
    while not stop.is_set():
        try:
            resp = http.post(f"{base_url}/v1/messages", headers=auth(key), timeout=5,
                             json={"to": number(i), "text": txn_text(i), **TXN})
        except requests.RequestException:
            return  # the server was killed
        if resp.status_code == 202:
            accepted.append((resp.json()["id"], number(i)))
        i += 1
    http.close()


def test_killed_api_process_loses_nothing_it_accepted(make_stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL of a real `smsdispatch api --workers 2` (the supervisor and both server processes, each
    committing groups of concurrent requests) under 8 concurrent clients: every 202 id is sent exactly
    once (a message committed but not yet pushed when the process died is pushed by the repair sweep)."""
    stack = make_stack(**FAST_REPAIR)
    record, key = keyring.create(stack.ctx, "load", ALL, 10_000.0)
    api = start_background(settings_env(stack.settings), workers=2, log=tmp_path / "api.log")
    stop = threading.Event()
    accepted: list[tuple[str, str]] = []
    clients = [threading.Thread(target=_hammer, args=(api.base_url, key, stop, accepted, k * 100_000))
               for k in range(8)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 30
    while len(accepted) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    api.kill()  # mid-stream: requests in flight get no answer
    stop.set()
    for c in clients:
        c.join(10)
    assert len(accepted) >= 200, (tmp_path / "api.log").read_text()[-2000:]
    time.sleep(1.0)  # a COMMIT already on its way may still land after the kill
    with reading(stack.ctx.engine) as conn:
        stored = set(conn.execute(select(MESSAGE.c.id)).scalars())
    assert {mid for mid, _ in accepted} <= stored
    stack.start_worker(concurrency=2, beat=True)
    stack.wait_settled(len(stored), timeout=120)
    ledger = Counter(e["number"] for e in stack.sim.admin.ledger())
    assert all(ledger[num] == 1 for _, num in accepted)
    assert sum(ledger.values()) == len(stored), stack.counts()  # answered or not: each committed one, once


def test_database_down_is_503_and_writes_nothing(redis_url, redis_prefix, pg_url, shared_simulator,  # type: ignore[no-untyped-def]
                                                 tcp_proxy, api_factory) -> None:
    """PostgreSQL refusing connections: POSTs (cached key or not) are 503 with Retry-After, readyz is 503;
    once it is back exactly the messages accepted before the outage exist."""
    api, proxy = api_behind_proxy(pg_url, redis_url, redis_prefix, shared_simulator, tcp_proxy, api_factory)
    ctx = api.ctx
    cached, fresh = api.key("cached"), api.key("fresh")
    body: dict[str, Any] = {"to": number(1), "text": txn_text(1), **TXN}
    assert api.post("/v1/messages", cached, json=body).status_code == 202
    proxy.down()
    try:
        for key in (cached, fresh):
            for path, payload in (("/v1/messages", {**body, "to": number(2)}),
                                  ("/v1/messages/bulk", {**TXN, "messages": [{"to": number(3),
                                                                              "text": txn_text(3)}]})):
                resp = api.post(path, key, json=payload)
                assert resp.status_code == 503, resp.text
                assert resp.headers["content-type"] == "application/problem+json"
                assert int(resp.headers["Retry-After"]) > 0
        assert api.get("/readyz", None).status_code == 503
    finally:
        proxy.up()
    with reading(ctx.engine) as conn:
        assert conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one() == 1
    assert api.get("/readyz", None).status_code == 200
    ctx.redis.close()
    dispose_all()
