"""Cost preview on real parts (a database, Redis, the simulator's catalogue and balance): what a file would
cost and refuse, through the library and the CLI, with nothing written or enqueued."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dispatcher import optout
from dispatcher.cli import app
from dispatcher.repair import refresh_catalog

from .pipeline_helpers import TXN, number, txn_text


def test_estimate_counts_credits_refusals_and_ucs2_and_writes_nothing(make_stack, tmp_path):
    """Credits per parts, refusals (bad number, template mismatch, opt-out) by file line, the UCS-2 row's
    first forcing character and the balance after; no message row, no lane entry."""
    stack = make_stack()
    assert refresh_catalog(stack.ctx, force=True)["refreshed"] is True
    optout.opt_out(number(3), "transactional", ctx=stack.ctx)
    statement = {**TXN, "template_id": "1207161000000000008"}  # "Statement for {#var#}: {#var#} x10 - SMSPNT"
    long_text = "Statement for AC1: " + " ".join(["x" * 20] * 10) + " - SMSPNT"
    assert len(long_text) > 160
    path = tmp_path / "rows.csv"
    rows = [(number(0), txn_text(0)), (number(1), txn_text(1)),
            ("12345", txn_text(2)), (number(3), txn_text(3)), (number(4), "Payment of Rs ₹5 received for "
                                                                          "account A5. Thank you. - SMSPNT"),
            (number(5), "Hello there")]
    path.write_text("number,text\n" + "".join(f'{n},"{t}"\n' for n, t in rows), encoding="utf-8")
    before = stack.sim.admin.credits()["Transactional"]

    res = CliRunner().invoke(app, ["estimate", str(path), "-c", "transactional", "-s", "SMSPNT",
                                   "-t", TXN["template_id"], "--json"], env=stack.env)
    assert res.exit_code == 0, res.stderr
    est = json.loads(res.stdout)
    assert (est["rows"], est["accepted"], est["refused_count"]) == (6, 3, 3)
    assert {(r["index"], r["field"]) for r in est["refused"]} == {(2, "to"), (3, "to"), (5, "text")}
    assert [r["reason"] for r in est["refused"] if r["index"] == 3][0].startswith("opted out of trans")
    assert est["parts"] == {"1": 3} and est["credits"] == 3
    assert [(u["index"], u["position"], u["code_point"]) for u in est["ucs2"]] == [(4, 15, "U+20B9")]
    assert est["balance"] == before and est["balance_after"] == before - 3
    assert stack.counts() == {} and stack.ctx.lanes.depth("transactional") == 0

    short = "Statement for AC1: " + " ".join("1" * 10) + " - SMSPNT"
    lib = stack.dispatcher.estimate([(number(9), long_text), (number(8), short)], **statement)
    assert (lib.accepted, lib.parts, lib.credits) == (2, {1: 1, 2: 1}, 3)

    text = CliRunner().invoke(app, ["estimate", str(path), "-c", "transactional", "-s", "SMSPNT",
                                    "-t", TXN["template_id"]], env=stack.env)
    assert text.exit_code == 0 and "would be refused" in text.stdout and "line 6: UCS-2 from character 15" \
        in text.stdout
