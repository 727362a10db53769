"""Limits, exactly at and just past them: text length per encoding, empty and whitespace texts, control
characters, numbers of other countries, 2000 vs 2001 recipients per call (the client refuses 2001 before any
HTTP), and duplicate numbers in one bulk call (allowed: each message gets its own gateway id)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import select

from dispatcher import collector, sender
from dispatcher.api import Dispatcher
from dispatcher.channels import Channel
from dispatcher.db import reading
from dispatcher.errors import InvalidNumber, InvalidText, ValidationError
from dispatcher.gateway import Recipient, SmsPointClient
from dispatcher.models import MESSAGE

from ..integration.pipeline_helpers import TXN, calls, ledger, number, txn_text
from ..integration.sync_helpers import make_rig

#: (character, the most that fits in the gateway's 5 parts): GSM-7 153 septets a part, an extension
#: character 2 septets never split across parts, UCS-2 67 units a part, an emoji 2 units never split.
LONGEST = [("a", 765), ("€", 380), ("ठ", 335), ("😀", 165)]


@pytest.mark.parametrize("char,longest", LONGEST, ids=["gsm", "gsm-extension", "ucs2", "emoji"])
def test_longest_text_is_accepted_and_one_more_character_refused(enqueuer, char, longest):
    """The longest text that fits 5 parts is enqueued as 5 credits; one more character is InvalidText."""
    d = enqueuer.dispatcher
    mid = d.send_sms("9995012345", char * longest, channel="otp", sender_id="X", template_id="Y")
    assert d.get_status(mid).parts == 5
    before = enqueuer.rows()
    with pytest.raises(InvalidText, match="6 parts"):
        d.send_sms("9995012345", char * (longest + 1), channel="otp", sender_id="X", template_id="Y")
    assert enqueuer.rows() == before


@pytest.mark.parametrize("text", ["", " ", "\t", "\n\r\n", "\u00a0\u2003", "\f"],
                         ids=["empty", "space", "tab", "newlines", "unicode-spaces", "form-feed"])
def test_empty_and_whitespace_texts_are_refused(enqueuer, text):
    """Empty or whitespace-only texts are InvalidText, alone and as bulk rows (nothing written)."""
    before = enqueuer.rows()
    with pytest.raises(InvalidText):
        enqueuer.dispatcher.send_sms("9995012345", text, **TXN)
    result = enqueuer.dispatcher.send_bulk([("9995012345", text), ("9995012346", "fine")], skip_invalid=True,
                                           **TXN)
    assert [(r.index, r.field) for r in result.rejects] == [(0, "text")] and len(result) == 1
    assert enqueuer.rows() == before + 1


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\t", "\x0b", "\ud800"],
                         ids=["nul", "bell", "escape", "tab", "vtab", "lone-surrogate"])
def test_control_characters_are_refused_but_newlines_kept(enqueuer, char):
    """C0 controls (tab included) and lone surrogates are InvalidText; newline, CR and form feed are kept."""
    d = enqueuer.dispatcher
    before = enqueuer.rows()
    with pytest.raises(InvalidText, match="control character|surrogate"):
        d.send_sms("9995012345", f"Hello{char}there", channel="otp", sender_id="X", template_id="Y")
    assert enqueuer.rows() == before
    kept = "line one\nline two\r\n\fend"
    mid = d.send_sms("9995012345", kept, channel="otp", sender_id="X", template_id="Y")
    assert d.get_status(mid).state == "queued"


@pytest.mark.parametrize("raw", ["+14155552671", "+447911123456", "+8613800138000", "+971501234567",
                                 "+923001234567", "+8801712345678", "+9779812345678", "0014155552671"])
def test_numbers_of_other_countries_are_refused(enqueuer, raw):
    """Any country but India (+91) is InvalidNumber saying why; nothing is written."""
    before = enqueuer.rows()
    with pytest.raises(InvalidNumber) as info:
        enqueuer.dispatcher.send_sms(raw, txn_text(1), **TXN)
    assert "Indian" in info.value.reason or "not a" in info.value.reason or "length" in info.value.reason
    assert enqueuer.rows() == before


@pytest.mark.parametrize("raw,why", [("+91 11 2345 6789", "landline"), ("1800123456", "toll-free"),
                                     ("+91 5551234567", "not a valid number"), ("99950123", "length")])
def test_indian_numbers_that_cannot_receive_sms_are_refused(enqueuer, raw, why):
    """Indian landlines, toll-free-looking and unallocated or short numbers are InvalidNumber."""
    with pytest.raises(InvalidNumber, match=why):
        enqueuer.dispatcher.send_sms(raw, txn_text(1), **TXN)


class CountingSession(requests.Session):
    """A session that counts requests and never sends one."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent += 1
        raise AssertionError("no HTTP request may be made")


def test_client_refuses_2001_recipients_before_any_http():
    """send_bulk with 2001 recipients (or none) is a ValidationError and no request leaves the client."""
    session = CountingSession()
    client = SmsPointClient("http://127.0.0.1:9/api/v1", "key", session=session)
    for n in (2001, 5000, 0):
        with pytest.raises(ValidationError, match="recipients"):
            client.send_bulk([Recipient(number(i), txn_text(i)) for i in range(n)],
                             channel=Channel.TRANSACTIONAL, is_unicode=False, sender_id=TXN["sender_id"],
                             template_id=TXN["template_id"])
    assert session.sent == 0


def test_2000_recipients_go_in_one_call_and_the_gateway_refuses_2001(shared_simulator):
    """2000 recipients are one accepted call; 2001 sent past the client are refused whole by the gateway."""
    sim = shared_simulator
    with SmsPointClient(sim.base_url, sim.api_key) as client:
        result = client.send_bulk([Recipient(number(i), txn_text(i)) for i in range(2000)],
                                  channel=Channel.TRANSACTIONAL, is_unicode=False, sender_id=TXN["sender_id"],
                                  template_id=TXN["template_id"])
    assert len(result.messages) == 2000 and len(ledger(sim)) == 2000
    rows = [{"number": number(i), "text": txn_text(i)} for i in range(2001)]
    resp = requests.post(f"{sim.base_url}/send-bulk-sms", headers={"key": sim.api_key}, timeout=30,
                         data={"recipient": json.dumps(rows), "sender_id": TXN["sender_id"], "channel": "1",
                               "template_id": TXN["template_id"], "is_unicode": "0"})
    assert resp.json()["status"] == "error" and "2000" in resp.json()["message"]
    assert len(ledger(sim)) == 2000


def test_duplicate_numbers_in_one_bulk_call_each_get_their_own_gateway_id(make_stack):
    """Duplicate numbers in one call are allowed: each message gets its own gateway id, ledger once."""
    rig = make_rig(make_stack)
    same, other = "919995077777", "919995088888"
    rows = [(same, txn_text(1)), (other, txn_text(2)), (same, txn_text(3)), (same, txn_text(4)),
            (other, txn_text(5))]
    ids = list(Dispatcher(rig.ctx).send_bulk(rows, **TXN))
    collector.collect(rig.ctx, "transactional", max_run_s=2.0)
    assert len(rig.publisher.batches) == 1
    assert sender.send_batch(rig.ctx, rig.publisher.batches[0][0]).sent == 5
    bulk = [c for c in calls(rig.sim) if c["command"] == "send-bulk-sms"]
    assert [c["recipients"] for c in bulk] == [5]
    entries = ledger(rig.sim)
    assert Counter((e["number"], e["text"]) for e in entries) == Counter(rows)
    by_text = {e["text"]: str(e["message_id"]) for e in entries}
    with reading(rig.ctx.engine) as conn:
        db = conn.execute(select(MESSAGE.c.id, MESSAGE.c.text, MESSAGE.c.gateway_message_id)
                          .where(MESSAGE.c.id.in_(ids))).all()
    assert {r.text: r.gateway_message_id for r in db} == by_text
    assert len({r.gateway_message_id for r in db}) == 5
