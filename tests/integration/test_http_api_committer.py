"""Group commit of POST /v1/messages (dispatcher/httpapi/committer.py) on real Redis, SQLite and
PostgreSQL: requests waiting together share one transaction and one rate-limit round trip, and each gets
exactly the answer it would get alone; one request's database error does not fail the others. The
multi-process server (supervisor.py): each worker takes connections, a killed worker is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from bench.harness import settings_env
from dispatcher import optout
from dispatcher.api import Submitted
from dispatcher.db import reading
from dispatcher.errors import IdempotencyConflict, OptedOut
from dispatcher.httpapi import keyring
from dispatcher.httpapi.auth import Authenticator
from dispatcher.httpapi.committer import Committer
from dispatcher.httpapi.keys import Scope
from dispatcher.httpapi.problems import Problem
from dispatcher.httpapi.server import start_background
from dispatcher.models import MESSAGE
from dispatcher.store import api_keys as keys_store
from tests.fixtures.producer import NOON_IST, producer_env

pytestmark = pytest.mark.integration

OK = "919954654365"
TX = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1107160000000000001"}


@pytest.fixture
def env(database_url, redis_url, redis_prefix):  # type: ignore[no-untyped-def]
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST) as e:
        yield e


def _key(ctx: Any, name: str, rate: float) -> Any:
    record, _ = keyring.create(ctx, name, frozenset(Scope), rate)
    with reading(ctx.engine) as conn:
        found = keys_store.get_key(conn, record.id)
    assert found is not None
    return found


def _rows(ctx: Any) -> int:
    with reading(ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one())


class _Spy:
    """The real Dispatcher, recording each commit_sms group's size; the first group is held until
    ``release`` so that every later request queues behind it and they form one group."""

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher
        self.groups: list[int] = []
        self.release = threading.Event()

    def commit_sms(self, items: Any) -> Any:
        self.groups.append(len(items))
        if len(self.groups) == 1:
            assert self.release.wait(10)
        return self.dispatcher.commit_sms(items)


def _run(committer: Committer, spy: _Spy, requests: list[tuple[Any, Any]]) -> list[Any]:
    """Submit the first (pending, key) and, once its commit is under way (held), all the others; then
    let it go. The outcome (or exception) of each."""

    async def main() -> list[Any]:
        tasks = [asyncio.ensure_future(committer.submit(*requests[0]))]
        while not spy.groups:
            await asyncio.sleep(0.005)
        tasks += [asyncio.ensure_future(committer.submit(p, k)) for p, k in requests[1:]]
        while committer._queue.qsize() < len(requests) - 1:
            await asyncio.sleep(0.005)
        spy.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main())


def test_requests_waiting_together_are_one_transaction_each_with_its_own_answer(env) -> None:  # type: ignore[no-untyped-def]
    """Twelve requests queue behind a held first one: they are written as one group; each answer is what
    send_sms alone gives (new, repeat of a key, key conflict, opt-out refusal), and a key over its rate
    gets 429 (Retry-After) with nothing written, while the others of its group go through."""
    d = env.d
    optout.opt_out("919954654300", "transactional", reason="replied STOP", ctx=env.ctx)
    fast, slow = _key(env.ctx, "fast", 10_000.0), _key(env.ctx, "slow", 0.01)
    spy = _Spy(d)
    committer = Committer(spy, Authenticator(env.ctx), group_max=256)  # type: ignore[arg-type]
    first = d.prepare_sms(OK, "first", **TX)
    plain = [d.prepare_sms(f"9199546543{i:02d}", f"plain {i}", **TX) for i in range(10, 16)]
    keyed = d.prepare_sms(OK, "keyed", idempotency_key="k-1", **TX)
    repeat = d.prepare_sms(OK, "keyed", idempotency_key="k-1", **TX)
    conflict = d.prepare_sms(OK, "not the same", idempotency_key="k-1", **TX)
    refused = d.prepare_sms("919954654300", "to an opted-out number", **TX)
    slow_ok, slow_over = d.prepare_sms(OK, "slow 1", **TX), d.prepare_sms(OK, "slow 2", **TX)
    requests = [(first, fast), *[(p, fast) for p in plain], (keyed, fast), (repeat, fast),
                (conflict, fast), (refused, fast), (slow_ok, slow), (slow_over, slow)]
    out = _run(committer, spy, requests)
    assert spy.groups == [1, len(requests) - 2]  # the held one; then all others but the 429 in one group
    assert all(isinstance(o, Submitted) and o.created for o in out[:7])
    k, r, c, o = out[7:11]
    assert isinstance(k, Submitted) and k.created
    assert isinstance(r, Submitted) and (r.id, r.created) == (k.id, False)
    assert isinstance(c, IdempotencyConflict) and c.message_id == k.id
    assert isinstance(o, OptedOut) and o.field == "to"
    assert isinstance(out[11], Submitted) and out[11].created
    assert isinstance(out[12], Problem) and out[12].status == 429
    assert int(out[12].headers["Retry-After"]) >= 1
    assert _rows(env.ctx) == 7 + 1 + 1  # first, six plain, keyed, slow 1


def test_one_requests_database_error_does_not_fail_the_others(env) -> None:  # type: ignore[no-untyped-def]
    """A request whose row the database refuses (here: an id already taken) makes its group fail; the
    group is then written one request at a time, so only that request gets the error."""
    d = env.d
    taken = d.send_sms(OK, "already there", **TX)
    key = _key(env.ctx, "k", 10_000.0)
    spy = _Spy(d)
    committer = Committer(spy, Authenticator(env.ctx), group_max=256)  # type: ignore[arg-type]
    good = [d.prepare_sms(OK, f"good {i}", **TX) for i in range(5)]
    bad = d.prepare_sms(OK, "bad", **TX)
    bad = replace(bad, row={**bad.row, "id": taken})
    out = _run(committer, spy, [(good[0], key), (good[1], key), (bad, key), *[(g, key) for g in good[2:]]])
    assert [type(o).__name__ for o in out[:2]] == ["Submitted", "Submitted"]
    assert "IntegrityError" in type(out[2]).__name__
    assert all(isinstance(o, Submitted) and o.created for o in out[3:])
    assert _rows(env.ctx) == 1 + 5
    assert spy.groups == [1, 5, 1, 1, 1, 1, 1]  # the held one, the failed group, then one at a time


# --------------------------------------------------------------------------- the multi-process server


def _workers(supervisor_pid: int) -> list[int]:
    """The server processes the supervisor spawned (not multiprocessing's resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor_pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(entry.name))
    return sorted(out)


def _tcp_sockets(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            n += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return n


def _wait_workers(pid: int, count: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [w for w in _workers(pid) if w not in exclude]
        if len(found) == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} workers, found {_workers(pid)}")


def test_every_worker_takes_connections_and_a_killed_one_is_replaced(make_stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`smsdispatch api --workers 2`: 32 keep-alive connections are spread over both processes (each has
    its own SO_REUSEPORT socket); SIGKILL of one worker: the supervisor starts another and the API keeps
    answering; SIGTERM stops the whole server."""
    stack = make_stack()
    api = start_background(settings_env(stack.settings), workers=2, log=tmp_path / "api.log")
    try:
        workers = _wait_workers(api.proc.pid, 2)
        time.sleep(1.0)  # both listening (healthz answered from at least one)
        before = {w: _tcp_sockets(w) for w in workers}
        port = int(api.base_url.rsplit(":", 1)[1])
        conns = []
        for _ in range(32):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in s.recv(4096)
            conns.append(s)
        gained = {w: _tcp_sockets(w) - before[w] for w in workers}
        for s in conns:
            s.close()
        assert sum(gained.values()) == 32 and min(gained.values()) >= 4, gained
        os.kill(workers[0], signal.SIGKILL)
        replaced = _wait_workers(api.proc.pid, 1, exclude=frozenset(workers))
        assert replaced and workers[1] in _workers(api.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(requests.get(f"{api.base_url}/healthz", timeout=2).ok for _ in range(8)):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the API stopped answering after a worker was killed")
        api.proc.send_signal(signal.SIGTERM)
        assert api.proc.wait(40) == 0
        assert _workers(api.proc.pid) == []
    finally:
        api.stop()
