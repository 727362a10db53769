"""Opt-outs on real parts (a database, Redis, Celery worker processes, the simulator): refused at enqueue,
failed before any credit is reserved when the opt-out comes after enqueue, and the CLI's list tools."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from dispatcher import optout
from dispatcher.cli import app
from dispatcher.errors import BulkValidationError, OptedOut

from .pipeline_helpers import PROMO, TXN, ledger, number, promo_text, txn_text


def _today(stack) -> str:
    return datetime.now(ZoneInfo(stack.settings.timezone)).date().isoformat()


def test_enqueue_refuses_numbers_that_opted_out_of_the_channel(make_stack):
    """A promotional opt-out refuses promotional messages (field 'to', with the date) but not transactional
    ones; a bulk request lists each opted-out row and, without skip_invalid, writes nothing."""
    stack = make_stack()
    d = stack.dispatcher
    assert optout.opt_out(number(1), reason="replied STOP", ctx=stack.ctx) == 1
    assert optout.opt_out(f"+{number(1)}", ctx=stack.ctx) == 0  # same number, already opted out
    assert optout.opt_out(number(2), "all", source="support desk", ctx=stack.ctx) == 3
    with pytest.raises(OptedOut) as info:
        d.send_sms(number(1), promo_text(1), **PROMO)
    assert str(info.value) == f"to: opted out of promotional on {_today(stack)}"
    d.send_sms(number(1), txn_text(1), **TXN)  # transactional: not marketing, not covered
    with pytest.raises(OptedOut, match="opted out of transactional"):
        d.send_sms(number(2), txn_text(2), **TXN)

    rows = [(number(i), txn_text(i)) for i in range(6)]
    with pytest.raises(BulkValidationError) as bulk:
        d.send_bulk(rows, **TXN)
    assert [(r.index, r.field) for r in bulk.value.rejects] == [(2, "to")]
    assert sum(stack.counts().values()) == 1  # only the single send above
    result = d.send_bulk(rows + [("12", "x")], **TXN, skip_invalid=True, chunk_size=2)
    assert len(result) == 5
    assert [(r.index, r.field) for r in result.rejects] == [(2, "to"), (6, "to")]
    assert result.rejects[0].reason.startswith("opted out of transactional on ")


def test_a_number_that_opts_out_after_enqueue_is_failed_and_costs_nothing(make_stack):
    """Messages enqueued before their number opted out end failed with the reason; no credit is reserved
    or spent for them and the gateway never sees them; the others go out."""
    stack = make_stack()
    ids = stack.dispatcher.send_bulk([(number(i), txn_text(i)) for i in range(6)], **TXN)
    optout.opt_out(number(2), "transactional", reason="replied STOP", ctx=stack.ctx)
    optout.opt_out(number(4), "transactional,otp", ctx=stack.ctx)
    stack.start_worker()
    stack.wait_settled(6)
    states = {i: stack.dispatcher.get_status(mid) for i, mid in enumerate(ids)}
    for i in (2, 4):
        assert states[i].state == "failed"
        assert states[i].last_error == f"opted out of transactional on {_today(stack)}"
        assert states[i].credits_charged is None
    assert all(states[i].state != "failed" for i in (0, 1, 3, 5))
    sent_to = {e["number"] for e in ledger(stack.sim)}
    assert sent_to == {number(i) for i in (0, 1, 3, 5)}
    credits = stack.ctx.ledger.snapshot()["Transactional"]
    assert credits["spent"] == 4 and credits["inflight"] == 0


def _cli(stack, *args: str):
    return CliRunner().invoke(app, list(args), env=stack.env)


def test_cli_import_is_all_or_nothing_and_export_round_trips(make_stack, tmp_path):
    """An import with a bad row writes nothing and names the row; a good one is listed and exported."""
    stack = make_stack()
    bad = tmp_path / "bad.csv"
    bad.write_text("number,channels,reason\n9876543210,promotional,STOP\n12345,promotional,x\n"
                   "9876543211,fax,y\n")
    res = _cli(stack, "optout", "import", str(bad))
    assert res.exit_code == 1
    assert "2 of 3 rows invalid; first: row 1 number:" in res.stderr
    assert optout.list_opt_outs(stack.ctx) == []

    good = tmp_path / "good.csv"
    good.write_text("number,channels,reason\n9876543210,promotional,STOP\n+91 98765 43211,all,\n")
    res = _cli(stack, "optout", "import", str(good), "--by", "crm")
    assert res.exit_code == 0, res.stderr
    assert "imported 2 row(s): 4 new opt-out(s)" in res.stdout
    listed = json.loads(_cli(stack, "optout", "list", "--json").stdout)
    assert {(r["number"], r["channel"]) for r in listed} == {
        ("919876543210", "promotional"), ("919876543211", "otp"), ("919876543211", "promotional"),
        ("919876543211", "transactional")}
    assert {r["source"] for r in listed} == {"crm"}

    exported = list(csv.reader(io.StringIO(_cli(stack, "optout", "export").stdout)))
    assert exported[0] == list(optout.CSV_HEADER) and len(exported) == 5
    assert _cli(stack, "optout", "remove", "9876543211", "--channels", "all").stdout.strip() == \
        "removed 3 opt-out(s)"
    res = _cli(stack, "optout", "add", "9876543212", "--channels", "sms")
    assert res.exit_code == 1 and "channels: unknown channel 'sms'" in res.stderr
    assert len(optout.list_opt_outs(stack.ctx)) == 1
