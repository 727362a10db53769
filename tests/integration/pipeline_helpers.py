"""Helpers shared by the pipeline and chaos tests: realistic messages and the ledger-vs-database audit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dispatcher.db import transaction
from dispatcher.models import MESSAGE

TXN = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1207161000000000002"}
TXN_HI = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1207161000000000003"}
OTP = {"channel": "otp", "sender_id": "OTPSMS", "template_id": "1207161000000000004"}
PROMO = {"channel": "promotional", "sender_id": "123456", "template_id": "1207161000000000005"}


def number(i: int) -> str:
    return f"91995{i % 10_000_000:07d}"


def txn_text(i: int) -> str:
    return f"Payment of Rs {i} received for account AC{i}. Thank you. - SMSPNT"


def hi_text(i: int) -> str:
    return f"प्रिय ग्राहक{i}, आपका ऑर्डर {i} भेज दिया गया है। - SMSPNT"


def otp_text(i: int) -> str:
    return f"{i:06d} is your OTP to log in. It is valid for 10 minutes. Do not share it with anyone. - OTPSMS"


def promo_text(i: int) -> str:
    return f"Festive sale! Get {i % 90 + 10}% off on item {i}. Shop now at ex.in/{i} T&C apply."


def ledger(sim: Any) -> list[dict[str, Any]]:
    data = sim.admin.ledger()
    return data["messages"] if isinstance(data, dict) else list(data)


def calls(sim: Any) -> list[dict[str, Any]]:
    data = sim.admin.calls()
    return data["calls"] if isinstance(data, dict) else list(data)


@dataclass
class Audit:
    messages: int
    sent_once: int
    unknown: int
    unknown_in_ledger: int
    lost: int
    duplicated: int
    strays: int
    mismatched: list[str]

    def line(self) -> str:
        return (f"messages={self.messages} sent_once={self.sent_once} unknown={self.unknown} "
                f"(of which in ledger: {self.unknown_in_ledger}) lost={self.lost} "
                f"duplicated={self.duplicated} strays={self.strays}")


def audit(stack: Any) -> Audit:
    """Compare the simulator's ledger with the database: texts are unique per message in these tests."""
    with transaction(stack.ctx.engine) as conn:
        rows = conn.execute(select(MESSAGE.c.id, MESSAGE.c.text, MESSAGE.c.state, MESSAGE.c.number,
                                   MESSAGE.c.gateway_message_id)).all()
    seen = Counter((e["number"], e["text"]) for e in ledger(stack.sim))
    db_keys = {(r.number, r.text) for r in rows}
    sent_states = {"sent", "delivered", "undelivered", "expired"}
    sent_once = unknown = unknown_in = lost = dup = 0
    mismatched: list[str] = []
    for r in rows:
        n = seen.get((r.number, r.text), 0)
        if n > 1:
            dup += 1
        if r.state in sent_states:
            sent_once += n == 1
            if n == 0:
                mismatched.append(f"{r.id} is {r.state} but not in the ledger")
        elif r.state == "unknown":
            unknown += 1
            unknown_in += n == 1
        elif r.state == "failed":
            if n:
                mismatched.append(f"{r.id} is failed but the gateway accepted it")
        else:
            lost += 1  # still queued/held/sending after settling
            if n:
                mismatched.append(f"{r.id} is {r.state} but the gateway accepted it")
    strays = sum(1 for k in seen if k not in db_keys)
    return Audit(len(rows), sent_once, unknown, unknown_in, lost, dup, strays, mismatched)
