"""Helpers shared by the pipeline and chaos tests: realistic messages and the ledger-vs-database audit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dispatcher.db import transaction
from dispatcher.models import MESSAGE
from dispatcher.simulator.samples import (  # noqa: F401  (re-exported for the test modules)
    OTP,
    PROMO,
    TXN,
    TXN_HI,
    hi_text,
    number,
    otp_text,
    promo_text,
    txn_text,
)

#: Repairs fast enough for a test: a lost task is republished after 2 s, held messages are released
#: after 2 s, a stale `sending` becomes unknown after 10 s. The retry budget and connect timeout are cut
#: so that a send with all its retries (3 + 1 + read timeout, 5 s by default) ends before that: settings
#: refuse a stale limit a live send could outlast.
FAST_REPAIR: dict[str, Any] = {
    "sweep_interval_s": 1.0, "release_interval_s": 1.0, "tick_interval_s": 0.5, "republish_after_s": 2.0,
    "gateway_down_retry_s": 2.0, "requeue_after_s": 3.0, "balance_refresh_s": 1.0,
    "retry_max_elapsed_s": 3.0, "connect_timeout": 1.0, "stale_sending_after_s": 10.0,
}


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
