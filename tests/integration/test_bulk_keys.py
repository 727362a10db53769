"""send_bulk with a per-row idempotency key and metadata, on real Redis and a real database (SQLite file
and PostgreSQL): replays give the first ids and write nothing, conflicts are row rejects, two concurrent
requests with the same keys make each message once, and send-file enqueues through one send_bulk."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from dispatcher.api import Dispatcher
from dispatcher.cli.sendfile import CsvSource, enqueue_file
from dispatcher.context import Context
from dispatcher.db import reading
from dispatcher.errors import BulkValidationError
from dispatcher.models import MESSAGE
from tests.fixtures.producer import NOON_IST, producer_env

pytestmark = pytest.mark.integration

TX = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1107160000000000001"}


@pytest.fixture
def env(database_url, redis_url, redis_prefix):
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST) as e:
        yield e


def row(i: int, **extra: object) -> dict[str, object]:
    return {"number": f"9199546{i:05d}", "text": f"Notice {i}", **extra}


def count(ctx) -> int:
    with reading(ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one())


def pushed(ctx) -> list[str]:
    out: list[str] = []
    for _, fields in ctx.redis.xrange(ctx.lanes.stream("transactional")):
        out.extend(fields[b"ids"].decode().split(","))
    return out


def test_keys_and_metadata_are_stored_and_a_replay_writes_nothing(env):
    """Keyed rows with metadata are written with both; the same rows again give the same ids as duplicates,
    write and push nothing; unkeyed rows in the same request still go through."""
    rows = [row(i, idempotency_key=f"k{i}", metadata={"order": i}) for i in range(7)] + [row(50)]
    first = env.d.send_bulk(rows, **TX, chunk_size=3)
    assert first.created == 8 and first.duplicates == []
    assert env.d.get_status(first[2]).metadata == {"order": 2}
    assert len(pushed(env.ctx)) == 8
    again = env.d.send_bulk(rows[:7], **TX, chunk_size=3)
    assert list(again) == first[:7] and again.created == 0
    assert [(d.index, d.id) for d in again.duplicates] == list(enumerate(first[:7]))
    assert count(env.ctx) == 8 and len(pushed(env.ctx)) == 8


def test_key_reused_for_another_text_is_a_row_reject(env):
    """A key an earlier request used for another text is a reject naming that message: the whole request
    writes nothing by default; with skip_invalid the other rows go through."""
    [held] = env.d.send_bulk([row(1, idempotency_key="order-1")], **TX)
    rows = [row(2), {**row(1), "text": "Other", "idempotency_key": "order-1"}]
    with pytest.raises(BulkValidationError) as info:
        env.d.send_bulk(rows, **TX)
    [reject] = info.value.rejects
    assert (reject.index, reject.field) == (1, "idempotency_key") and held in reject.reason
    assert count(env.ctx) == 1
    skipped = env.d.send_bulk(rows, **TX, skip_invalid=True)
    assert len(skipped) == 1 and [r.index for r in skipped.rejects] == [1] and count(env.ctx) == 2


def test_same_key_twice_in_one_request_is_a_reject(env):
    """The second row giving a key already given in the same request is refused, naming the first row."""
    rows = [row(1, idempotency_key="dup"), row(2), row(3, idempotency_key="dup")]
    with pytest.raises(BulkValidationError) as info:
        env.d.send_bulk(rows, **TX)
    assert [(r.index, r.field) for r in info.value.rejects] == [(2, "idempotency_key")]
    assert "row 0" in info.value.rejects[0].reason and count(env.ctx) == 0


@pytest.mark.parametrize("bad, field", [({"idempotency_key": ""}, "idempotency_key"),
                                        ({"idempotency_key": 7}, "idempotency_key"),
                                        ({"metadata": [1]}, "metadata"),
                                        ({"metadata": {"x": "y" * 5000}}, "metadata")])
def test_bad_key_or_metadata_names_the_field(env, bad, field):
    """An empty or non-string key, or metadata that is no object or too long, is a reject of that field."""
    with pytest.raises(BulkValidationError) as info:
        env.d.send_bulk([row(1), row(2, **bad)], **TX)
    assert [(r.index, r.field) for r in info.value.rejects] == [(1, field)] and count(env.ctx) == 0


def test_concurrent_requests_with_the_same_keys_make_each_message_once(env):
    """Four requests with their own connections racing on the same 300 keys: one row per key, and every
    request gets the same ids (the losers see the winner's ids as duplicates, no error)."""
    rows = [row(i, idempotency_key=f"race-{i}") for i in range(300)]
    results, errors = [], []
    barrier = threading.Barrier(4)

    def go():
        d = Dispatcher(Context(env.ctx.settings, publisher=env.pub, clock=lambda: NOON_IST))
        barrier.wait()
        try:
            results.append(d.send_bulk(rows, **TX, chunk_size=100))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(results) == 4
    assert all(list(r) == list(results[0]) for r in results)
    assert sum(r.created for r in results) == 300 and count(env.ctx) == 300
    assert sorted(pushed(env.ctx)) == sorted(results[0])


def test_send_file_rerun_enqueues_nothing_in_one_bulk_call(env, tmp_path, monkeypatch):
    """send-file enqueues through send_bulk (never send_sms per row); running it again enqueues nothing
    and reports every row as already enqueued; an edited row keeps its key column and is a reject."""
    path = tmp_path / "orders.csv"
    path.write_text("order,number,text\n" + "".join(f"o{i},9199546{i:05d},Notice {i}\n" for i in range(40)))

    def no_single(*args, **kwargs):
        raise AssertionError("send-file must not enqueue row by row")

    monkeypatch.setattr(env.d, "send_sms", no_single)
    monkeypatch.setattr(env.d, "submit_sms", no_single)
    kw = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1107160000000000001",
          "send_at": None}
    first = enqueue_file(env.d, CsvSource(path, key_column="order"), lambda n: None, **kw)
    assert len(first.enqueued) == 40 and first.already == [] and first.rejects == []
    again = enqueue_file(env.d, CsvSource(path, key_column="order"), lambda n: None, **kw)
    assert again.enqueued == [] and again.already == first.enqueued and count(env.ctx) == 40
    path.write_text(path.read_text().replace("Notice 3\n", "Changed 3\n"))
    edited = enqueue_file(env.d, CsvSource(path, key_column="order"), lambda n: None, **kw)
    assert [(r.index, r.field) for r in edited.rejects] == [(3, "key-column")]
    assert first.enqueued[3] in edited.rejects[0].reason and len(edited.already) == 39
