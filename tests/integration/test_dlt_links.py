"""Typed DLT variables and the URL whitelist through the real pipeline: Redis, a database, Celery worker
processes and the simulator (whose catalogue carries a typed template)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.errors import LinkNotWhitelisted, TemplateMismatch
from dispatcher.repair import refresh_catalog

from .pipeline_helpers import ledger, number

TYPED: dict[str, Any] = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "TYPED1"}
TEMPLATE = "Rs {#numeric#} is due. Pay at {#url#} - SMSPNT"


def _with_typed_template(sim: Any) -> None:
    catalog = sim.admin.catalog()
    catalog["templates"].append({"id": "90", "name": "due_link", "template_id": "TYPED1",
                                 "type": "Transactional", "sender_id": "SMSPNT", "message": TEMPLATE,
                                 "template_status": "Approved"})
    sim.admin.set_catalog(catalog)


def test_whitelisted_links_go_out_and_others_are_refused_before_anything_is_written(make_stack, tmp_path):
    """A listed {#url#} value is sent; an unlisted one and a non-numeric {#numeric#} are refused with the
    variable, position and rule, nothing written; editing the whitelist file lets the link through."""
    wl = tmp_path / "whitelist.txt"
    wl.write_text("# payment links\nurl pay.smspoint.in\n")
    stack = make_stack(dlt_whitelist_file=str(wl))
    _with_typed_template(stack.sim)
    assert refresh_catalog(stack.ctx, force=True)["refreshed"] is True
    stack.start_worker()
    d = stack.dispatcher

    ok = d.send_sms(number(1), "Rs 1,500 is due. Pay at https://pay.smspoint.in/i/42 - SMSPNT", **TYPED)
    with pytest.raises(LinkNotWhitelisted) as info:
        d.send_sms(number(2), "Rs 1,500 is due. Pay at https://bit.ly/abc - SMSPNT", **TYPED)
    assert str(info.value) == ('text: variable 2 {#url#} at character 25: "https://bit.ly/abc" '
                               'is not on the URL whitelist')
    with pytest.raises(TemplateMismatch, match=r'variable 1 \{#numeric#\} at character 4: "15OO" is not'):
        d.send_sms(number(3), "Rs 15OO is due. Pay at https://pay.smspoint.in/i/42 - SMSPNT", **TYPED)
    result = d.send_bulk([(number(4), "Rs 9 is due. Pay at bit.ly/x - SMSPNT"),
                          (number(5), "Rs 9 is due. Pay at pay.smspoint.in/x - SMSPNT")], **TYPED,
                         skip_invalid=True)
    assert len(result) == 1
    assert [(r.index, r.field) for r in result.rejects] == [(0, "text")]
    assert "bit.ly/x" in result.rejects[0].reason
    stack.wait_settled(2)
    assert sorted(e["text"] for e in ledger(stack.sim)) == [
        "Rs 1,500 is due. Pay at https://pay.smspoint.in/i/42 - SMSPNT",
        "Rs 9 is due. Pay at pay.smspoint.in/x - SMSPNT"]
    assert stack.dispatcher.get_status(ok).state in ("sent", "delivered", "undelivered", "expired")

    wl.write_text("url pay.smspoint.in\nurl bit.ly/abc\n")  # re-read on change, no restart
    stack.ctx.whitelist.check_every_s = 0.0
    later = d.send_sms(number(2), "Rs 1,500 is due. Pay at https://bit.ly/abc - SMSPNT", **TYPED)
    stack.wait_settled(3)
    assert stack.dispatcher.get_status(later).state != "failed"
    assert sum(stack.counts().values()) == 3
