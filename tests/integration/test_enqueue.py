"""Enqueue from application code on real Redis and a real database (SQLite file and PostgreSQL):
validation before any write, idempotency, bulk streaming, scheduling."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, func, select

from dispatcher import optout
from dispatcher.api import Dispatcher, Submitted
from dispatcher.catalog import build
from dispatcher.channels import Channel
from dispatcher.context import Context
from dispatcher.db import transaction
from dispatcher.errors import (
    BulkValidationError,
    CatalogError,
    IdempotencyConflict,
    InvalidNumber,
    InvalidText,
    MessageNotFound,
    OptedOut,
    StorageUnavailable,
    TemplateMismatch,
    ValidationError,
)
from dispatcher.models import MESSAGE
from tests.fixtures.producer import NOON_IST, producer_env

OK = "919954654365"
TX = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1107160000000000001"}


@pytest.fixture
def env(database_url, redis_url, redis_prefix):
    with producer_env(database_url, redis_url, redis_prefix, clock=lambda: NOON_IST) as e:
        yield e


def rows(ctx) -> int:
    with transaction(ctx.engine) as conn:
        return conn.execute(select(func.count()).select_from(MESSAGE)).scalar_one()


def stream_ids(ctx, lane: str) -> list[str]:
    out = []
    for _, fields in ctx.redis.xrange(ctx.lanes.stream(lane)):
        out.extend(fields[b"ids"].decode().split(","))
    return out


def test_send_sms_commits_row_then_pushes_id(env):
    """send_sms returns an id at once; the row is queued and the id is in the lane stream."""
    mid = env.d.send_sms("+91 99546 54365", "Your OTP is 1234", **TX)
    st = env.d.get_status(mid)
    assert st.state == "queued" and st.number_masked == "9199****4365" and st.credits == 1
    assert stream_ids(env.ctx, "transactional") == [mid]
    assert env.pub.collects == ["transactional"]  # collector woken once


@pytest.mark.parametrize("kwargs,field,exc", [
    ({"to": "12345"}, "to", InvalidNumber),
    ({"to": "not a number"}, "to", InvalidNumber),
    ({"text": ""}, "text", InvalidText),
    ({"text": "   "}, "text", InvalidText),
    ({"text": "x" * 766}, "text", InvalidText),
    ({"channel": "marketing"}, "channel", ValidationError),
    ({"sender_id": ""}, "sender_id", ValidationError),
    ({"template_id": None}, "template_id", ValidationError),
    ({"send_at": datetime(2030, 1, 1)}, "send_at", ValidationError),
    ({"metadata": {"x": object()}}, "metadata", ValidationError),
])
def test_bad_request_names_field_and_writes_nothing(env, kwargs, field, exc):
    """Each invalid input raises a typed error naming the field; no row and no stream entry exist."""
    args = {"to": OK, "text": "hello", **TX, **kwargs}
    with pytest.raises(exc) as info:
        env.d.send_sms(args.pop("to"), args.pop("text"), **args)
    assert info.value.field == field and info.value.reason
    assert rows(env.ctx) == 0
    assert env.ctx.redis.exists(env.ctx.lanes.stream("transactional")) == 0


def test_idempotency_key_returns_first_id_and_enqueues_nothing(env):
    """A repeated key returns the first message's id; only one row and one stream entry exist."""
    a = env.d.send_sms(OK, "hello", idempotency_key="order-42", **TX)
    b = env.d.send_sms(OK, "hello", idempotency_key="order-42", **TX)
    assert a == b and rows(env.ctx) == 1 and stream_ids(env.ctx, "transactional") == [a]


def test_idempotency_key_reused_with_other_text_is_a_conflict(env):
    """The same key with a different text is refused (Stripe-style), naming the first message."""
    a = env.d.send_sms(OK, "hello", idempotency_key="k1", **TX)
    with pytest.raises(IdempotencyConflict) as info:
        env.d.send_sms(OK, "other text", idempotency_key="k1", **TX)
    assert info.value.message_id == a and rows(env.ctx) == 1


def test_two_producers_racing_on_one_key_make_one_message(env, database_url):
    """Eight threads with their own connections racing on one key all get the same id; one row."""
    results, errors = [], []
    barrier = threading.Barrier(8)

    def go():
        d = Dispatcher(Context(env.ctx.settings, publisher=env.pub, clock=lambda: NOON_IST))
        barrier.wait()
        try:
            results.append(d.send_sms(OK, "race", idempotency_key="race-1", **TX))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(set(results)) == 1 and len(results) == 8
    assert rows(env.ctx) == 1


def test_commit_sms_writes_many_requests_in_one_transaction_each_with_its_own_outcome(env):
    """commit_sms (what the HTTP API uses to commit concurrent POSTs together): per item exactly what
    send_sms alone gives: new, a repeat of its key (an earlier item's or an existing message's), a key
    conflict or an opt-out refusal (neither written); scheduled items are written but not pushed."""
    d = env.d
    held = d.send_sms(OK, "held", idempotency_key="old-1", **TX)
    held2 = d.send_sms(OK, "held", idempotency_key="old-2", **TX)
    optout.opt_out("919954654300", "transactional", reason="replied STOP", ctx=env.ctx)
    later = NOON_IST + timedelta(hours=2)
    items = [d.prepare_sms(OK, "plain", **TX),
             d.prepare_sms(OK, "keyed", idempotency_key="new-1", **TX),
             d.prepare_sms(OK, "keyed", idempotency_key="new-1", **TX),  # same key and body: a repeat
             d.prepare_sms(OK, "other", idempotency_key="new-1", **TX),  # same key, other body
             d.prepare_sms("919954654300", "to an opted-out number", **TX),
             d.prepare_sms(OK, "later", send_at=later, **TX),
             d.prepare_sms(OK, "held", idempotency_key="old-1", **TX),
             d.prepare_sms(OK, "not held", idempotency_key="old-2", **TX)]
    assert rows(env.ctx) == 2  # prepare writes nothing
    out = d.commit_sms(items)
    assert [type(o).__name__ for o in out] == ["Submitted", "Submitted", "Submitted", "IdempotencyConflict",
                                               "OptedOut", "Submitted", "Submitted", "IdempotencyConflict"]
    plain, keyed, repeat, conflict, refused, scheduled, again, other = out
    assert isinstance(plain, Submitted) and isinstance(keyed, Submitted) and isinstance(repeat, Submitted)
    assert isinstance(scheduled, Submitted) and isinstance(again, Submitted)
    assert plain.created and keyed.created and scheduled.created
    assert (repeat.id, repeat.created) == (keyed.id, False)
    assert isinstance(conflict, IdempotencyConflict) and conflict.message_id == keyed.id
    assert isinstance(refused, OptedOut) and refused.field == "to"
    assert (again.id, again.created) == (held, False)
    assert isinstance(other, IdempotencyConflict) and other.message_id == held2
    assert scheduled.state == "scheduled" and plain.state == "queued"
    assert rows(env.ctx) == 2 + 3  # plain, keyed, scheduled
    assert stream_ids(env.ctx, "transactional")[-2:] == [plain.id, keyed.id]  # the scheduled one waits
    assert d.get_status(keyed.id).state == "queued"


def test_commit_sms_with_the_database_away_writes_nothing_and_raises(env):
    """A database failure is one StorageUnavailable for the whole call, and nothing is written or
    pushed (the API answers 503 to every request of the group)."""
    items = [env.d.prepare_sms(OK, f"text {i}", **TX) for i in range(3)]
    pg = env.ctx.engine.url.get_backend_name() == "postgresql"
    away = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none" if pg  # nothing listens on port 1
                         else "sqlite:////nonexistent-dir/none.db")
    env.ctx.__dict__["engine"] = away  # Context.engine is a cached property: this process's engine
    try:
        with pytest.raises(StorageUnavailable):
            env.d.commit_sms(items)
    finally:
        away.dispose()
        del env.ctx.__dict__["engine"]
    assert rows(env.ctx) == 0 and stream_ids(env.ctx, "transactional") == []


def test_send_bulk_enqueues_every_row_in_few_stream_entries(env):
    """20,000 valid rows stream through in chunks; all are queued and every id is in the lane once."""
    gen = ((f"9199546{i:05d}", f"Notice {i}") for i in range(20_000))
    ids = env.d.send_bulk(gen, channel="promotional", sender_id="123456", template_id="T", chunk_size=3000)
    assert len(ids) == 20_000 and len(set(ids)) == 20_000
    assert rows(env.ctx) == 20_000
    in_stream = stream_ids(env.ctx, "promotional")
    assert sorted(in_stream) == sorted(ids)
    assert env.ctx.redis.xlen(env.ctx.lanes.stream("promotional")) <= 20_000 // 500 + 2


def test_send_bulk_reports_every_invalid_row_and_writes_nothing(env):
    """Invalid rows are all reported (index, field, reason); by default nothing is enqueued."""
    data = [(OK, "ok"), ("123", "bad number"), (OK, ""), {"to": OK, "text": "fine"}, ("x",)]
    with pytest.raises(BulkValidationError) as info:
        env.d.send_bulk(data, **TX, chunk_size=2)
    assert [(r.index, r.field) for r in info.value.rejects] == [(1, "to"), (2, "text"), (4, "row")]
    assert info.value.total == 5
    assert rows(env.ctx) == 0
    assert env.ctx.redis.exists(env.ctx.lanes.stream("transactional")) == 0


def test_send_bulk_skip_invalid_enqueues_valid_rows_and_returns_rejects(env):
    """With skip_invalid the valid rows are enqueued and the rejects come back with the ids."""
    data = [(OK, "ok"), ("123", "bad"), ("09954654366", "ok too")]
    ids = env.d.send_bulk(data, **TX, skip_invalid=True)
    assert len(ids) == 2 and [r.index for r in ids.rejects] == [1]
    assert sorted(stream_ids(env.ctx, "transactional")) == sorted(ids)


def test_send_at_in_future_is_scheduled_not_pushed(env):
    """A future send_at makes the message `scheduled`; nothing is pushed until it is due."""
    mid = env.d.send_sms(OK, "later", send_at=NOON_IST + timedelta(hours=2), **TX)
    assert env.d.get_status(mid).state == "scheduled"
    assert stream_ids(env.ctx, "transactional") == []


def test_promotional_outside_window_is_scheduled_for_next_window(env):
    """A promotional message enqueued at 23:30 IST is scheduled for 09:00 IST instead of rejected."""
    env.ctx.clock = lambda: datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # 23:30 IST
    mid = env.d.send_sms(OK, "Sale!", channel=Channel.PROMOTIONAL, sender_id="123456", template_id="P")
    st = env.d.get_status(mid)
    assert st.state == "scheduled"
    assert st.send_at == datetime(2026, 11, 26, 3, 30, tzinfo=UTC)


def test_catalog_checks_sender_template_and_dlt_text(env):
    """With a fetched catalogue, unknown/unapproved sender or template and non-matching text are refused."""
    senders = [SimpleNamespace(sender_id="SMSPNT", id="1", channel=Channel.TRANSACTIONAL, approved=True),
               SimpleNamespace(sender_id="PENDNG", id="2", channel=Channel.TRANSACTIONAL, approved=False)]
    templates = [SimpleNamespace(template_id="T1", id="10", sender_id="SMSPNT", channel=Channel.TRANSACTIONAL,
                                 approved=True, message="Your order {#var#} has shipped.")]
    env.ctx.redis.set(env.ctx.catalog.key, build(senders, templates).to_json())
    base = {"channel": "transactional", "template_id": "T1"}
    assert env.d.send_sms(OK, "Your order 42 has shipped.", sender_id="SMSPNT", **base)
    with pytest.raises(CatalogError, match="not registered"):
        env.d.send_sms(OK, "Your order 42 has shipped.", sender_id="NOSUCH", **base)
    with pytest.raises(CatalogError, match="not approved"):
        env.d.send_sms(OK, "Your order 42 has shipped.", sender_id="PENDNG", **base)
    with pytest.raises(TemplateMismatch):
        env.d.send_sms(OK, "Your order 42 has been shipped.", sender_id="SMSPNT", **base)
    with pytest.raises(TemplateMismatch):
        env.d.send_sms(OK, f"Your order {'9' * 31} has shipped.", sender_id="SMSPNT", **base)
    with pytest.raises(CatalogError, match="registered for transactional"):
        env.d.send_sms(OK, "Your order 42 has shipped.", sender_id="SMSPNT", template_id="T1",
                       channel="otp")
    assert rows(env.ctx) == 1


def test_get_status_of_unknown_id_raises(env):
    """An unknown id raises MessageNotFound."""
    with pytest.raises(MessageNotFound):
        env.d.get_status("0" * 32)


def test_bulk_texts_with_newlines_and_backslashes_are_stored_exactly(env):
    """Large bulk inserts (COPY on PostgreSQL) keep newlines, backslashes and unicode exactly."""
    texts = [f"Line {i} col\\umn\nnext\r\nend \\N {'₹' if i % 2 else ''}" for i in range(400)]
    ids = env.d.send_bulk(((f"9199546{i:05d}", t) for i, t in enumerate(texts)), **TX)
    with transaction(env.ctx.engine) as conn:
        stored = dict(conn.execute(select(MESSAGE.c.id, MESSAGE.c.text)).all())
        flags = dict(conn.execute(select(MESSAGE.c.id, MESSAGE.c.is_unicode)).all())
    assert [stored[i] for i in ids] == texts
    assert [flags[i] for i in ids] == [bool(i % 2) for i in range(400)]
