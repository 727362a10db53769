"""The DLT link whitelist kept in the database, on SQLite and PostgreSQL with Redis and the simulator's
catalogue: an entry added or removed by one process (the CLI, the library) is honoured by the others'
already-loaded whitelists within their reload interval, without a restart; bad entries and bad files are
refused with nothing written; a database that cannot be read keeps the last entries read."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from dispatcher import whitelist
from dispatcher.api import Dispatcher
from dispatcher.cli import app
from dispatcher.context import Context
from dispatcher.db import reading
from dispatcher.errors import BulkValidationError, LinkNotWhitelisted, StorageUnavailable, ValidationError
from dispatcher.links import url_listed
from dispatcher.repair import refresh_catalog
from dispatcher.store import guards as guard_store

from .pipeline_helpers import number
from .test_dlt_links import TYPED, _with_typed_template

DUE = "Rs 1,500 is due. Pay at {} - SMSPNT"
RELOAD_S = 0.3


def _cli(stack, *args: str):
    return CliRunner().invoke(app, list(args), env=stack.env)


def _stack(make_stack, **overrides):
    stack = make_stack(dlt_whitelist_reload_s=RELOAD_S, **overrides)
    _with_typed_template(stack.sim)
    assert refresh_catalog(stack.ctx, force=True)["refreshed"] is True
    return stack


def _eventually(fn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except LinkNotWhitelisted:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_an_entry_added_anywhere_counts_everywhere_without_a_restart(make_stack):
    """A producer that already loaded its whitelist refuses a link; the CLI (another context) lists it and
    the producer accepts it within its reload interval; the library removes it and the producer refuses it
    again. URLs are compared without scheme and www., host case-insensitively."""
    stack = _stack(make_stack)
    producer = Dispatcher(Context(stack.settings))  # a second process's view: its own loaded whitelist
    link = "https://pay.smspoint.in/i/42"
    with pytest.raises(LinkNotWhitelisted, match="is not on the URL whitelist .the list is empty: "
                                                 "'smsdispatch whitelist add'"):
        producer.send_sms(number(1), DUE.format(link), **TYPED)

    res = _cli(stack, "whitelist", "add", "url", "HTTPS://www.Pay.SMSPoint.in/i", "--note", "payment links",
               "--by", "ops")
    assert res.exit_code == 0, res.output
    assert "url HTTPS://www.Pay.SMSPoint.in/i: added" in res.output
    assert "already listed" in _cli(stack, "whitelist", "add", "url", "pay.smspoint.in/i").output

    started = time.monotonic()
    mid = _eventually(lambda: producer.send_sms(number(1), DUE.format(link), **TYPED))
    assert time.monotonic() - started < RELOAD_S * 2 + 2.0  # due, re-read in the background, then built
    assert producer.get_status(mid).state == "queued"
    with pytest.raises(LinkNotWhitelisted):  # a prefix ends at a boundary: /i is not /info
        producer.send_sms(number(2), DUE.format("https://pay.smspoint.in/info"), **TYPED)

    listed = json.loads(_cli(stack, "whitelist", "list", "--json").output)
    assert [(r["kind"], r["key"], r["entry"], r["source"], r["note"]) for r in listed] == [
        ("url", "pay.smspoint.in/i", "HTTPS://www.Pay.SMSPoint.in/i", "ops", "payment links")]

    assert whitelist.remove("url", "pay.smspoint.in/i", ctx=stack.ctx) is True
    assert whitelist.remove("url", "pay.smspoint.in/i", ctx=stack.ctx) is False
    deadline = time.monotonic() + RELOAD_S * 2 + 2.0  # due, re-read in the background, then built
    while url_listed(link, producer.ctx.whitelist.get().urls) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(LinkNotWhitelisted):
        producer.send_sms(number(3), DUE.format(link), **TYPED)
    producer.ctx.redis.close()


def test_call_back_numbers_from_the_database_and_strict_mode(make_stack):
    """Strict mode checks every number in the text: a call-back number listed in any written form
    (+91 ..., with dashes) lets the message through, an unlisted one is refused naming its position."""
    stack = _stack(make_stack, dlt_links="strict")
    assert whitelist.add("url", "pay.smspoint.in", ctx=stack.ctx) is True
    assert whitelist.add("cbn", "+91 98765-43210", note="support line", ctx=stack.ctx) is True
    d = stack.dispatcher
    assert d.send_sms(number(1), "Rs 10 is due. Pay at pay.smspoint.in/x - SMSPNT", **TYPED)
    with pytest.raises(LinkNotWhitelisted, match=r'phone number at character 4: "9123456789" is not on '
                                                 r'the call-back number whitelist \(DLT_LINKS=strict\)'):
        d.send_sms(number(2), "Rs 9123456789 is due. Pay at pay.smspoint.in/x - SMSPNT", **TYPED)
    # the listed number, written another way, passes the same check
    assert d.send_sms(number(3), "Rs 09876543210 is due. Pay at pay.smspoint.in/x - SMSPNT", **TYPED)


@pytest.mark.parametrize(("kind", "entry", "field", "reason"), [
    ("url", "no-dot-here", "entry", "is not a URL prefix such as example.in/path"),
    ("url", "pay.example.in/a b", "entry", "is not a URL prefix"),
    ("cbn", "12", "entry", "is not a call-back number (3-15 digits)"),
    ("cbn", "1" * 16, "entry", "is not a call-back number (3-15 digits)"),
    ("sms", "pay.example.in", "kind", "must be url or cbn"),
    ("url", "", "entry", "is not an entry"),
    ("url", "pay.example.in/\x00", "entry", "is not an entry"),
])
def test_bad_entries_are_refused_naming_the_field_and_nothing_is_written(make_stack, kind, entry, field,
                                                                         reason):
    stack = make_stack()
    with pytest.raises(ValidationError) as info:
        whitelist.add(kind, entry, ctx=stack.ctx)
    assert info.value.field == field and reason in info.value.reason, str(info.value)
    res = _cli(stack, "whitelist", "add", kind, entry)
    assert res.exit_code != 0 and reason in res.output, res.output
    with reading(stack.ctx.engine) as conn:
        assert guard_store.whitelist(conn) == []


def test_import_is_all_or_nothing_and_export_round_trips(make_stack, tmp_path):
    stack = make_stack()
    bad = tmp_path / "bad.txt"
    bad.write_text("# links\nurl pay.smspoint.in\ncbn 12\nurl nodot\n18001234567\n")
    with pytest.raises(BulkValidationError) as info:
        whitelist.import_file(stack.ctx, bad)
    assert [(r.index, r.field) for r in info.value.rejects] == [(3, "line 3"), (4, "line 4")]
    assert info.value.total == 4
    with reading(stack.ctx.engine) as conn:
        assert guard_store.whitelist(conn) == []  # not even the good lines

    good = tmp_path / "good.txt"
    good.write_text("url pay.smspoint.in\ncbn 1800 123 4567\nwww.example.in/t\n18001234567\n")
    res = _cli(stack, "whitelist", "import", str(good))
    assert res.exit_code == 0 and "imported 4 entr(ies): 3 new" in res.output, res.output
    out = tmp_path / "export.txt"
    assert _cli(stack, "whitelist", "export", str(out)).exit_code == 0
    exported = out.read_text()
    assert exported.splitlines()[1:] == ["cbn 1800 123 4567", "url www.example.in/t", "url pay.smspoint.in"]
    rows = {(r.kind, r.key, r.source) for r in whitelist.entries(stack.ctx)}
    assert rows == {("cbn", "18001234567", "import good.txt"), ("url", "example.in/t", "import good.txt"),
                    ("url", "pay.smspoint.in", "import good.txt")}
    assert whitelist.import_file(stack.ctx, out).added == 0  # the export reads back as the same entries


def test_a_database_that_cannot_be_read_keeps_the_last_entries(make_stack, sqlite_url, tmp_path, caplog):
    """Once read, the whitelist survives a database outage (its background re-read logs a warning; the
    previous entries stay); a process that never read it refuses, typed, instead of checking against a
    list missing its database part."""
    stack = _stack(make_stack, database_url=sqlite_url)
    whitelist.add("url", "pay.smspoint.in", ctx=stack.ctx)
    source = stack.ctx.whitelist
    assert "pay.smspoint.in" in source.get().urls
    db_file = tmp_path / "smspoint.db"
    moved = tmp_path / "elsewhere.db"
    stack.ctx.engine.dispose()
    db_file.rename(moved)
    try:
        time.sleep(RELOAD_S + 0.05)
        with caplog.at_level("WARNING", logger="dispatcher.whitelist"):
            source.get()  # due: starts the background re-read, which fails
            deadline = time.monotonic() + 5
            while "not re-read from the database" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        assert "whitelist not re-read from the database" in caplog.text
        assert "pay.smspoint.in" in source.get().urls  # the last entries stay
        fresh = Context(stack.settings)
        with pytest.raises(StorageUnavailable, match="whitelist not read from the database"):
            fresh.whitelist.get()
        fresh.redis.close()
    finally:
        stack.ctx.engine.dispose()
        moved.rename(db_file)
