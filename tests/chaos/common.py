"""What every chaos scenario shares: fast repair settings, distinct messages, the strict ledger-vs-database
check and the printed figures (also appended as JSON lines to $SMSPOINT_CHAOS_REPORT when it is set)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from dispatcher.db import reading
from dispatcher.models import BATCH, MESSAGE

from ..integration.pipeline_helpers import FAST_REPAIR, TXN, audit, ledger, number, txn_text  # noqa: F401

SENT = ("sent", "delivered", "undelivered", "expired")
SETTLED = (*SENT, "unknown", "failed")
HOOK_LOG_ENV = "SMSPOINT_CHAOS_HOOK_LOG"
_hook_lock = threading.Lock()


def record_hook(payload: dict[str, Any]) -> None:
    """HOOK_CALLABLE of the chaos tests: one line per call in the file named by $SMSPOINT_CHAOS_HOOK_LOG."""
    with _hook_lock, open(os.environ[HOOK_LOG_ENV], "a") as fh:
        fh.write(json.dumps({"message_id": payload["message_id"], "state": payload["state"]}) + "\n")


def enqueue(stack: Any, n: int, start: int = 0) -> list[str]:
    """``n`` transactional messages with distinct texts (numbers and texts indexed from ``start``)."""
    rows = ((number(i), txn_text(i)) for i in range(start, start + n))
    return list(stack.dispatcher.send_bulk(rows, **TXN))


def db_name(stack: Any) -> str:
    return "sqlite" if stack.settings.database_url.startswith("sqlite") else "postgresql"


def batches_in(stack: Any, state: str) -> list[str]:
    with reading(stack.ctx.engine) as conn:
        return [r[0] for r in conn.execute(select(BATCH.c.id).where(BATCH.c.state == state))]


def batch_states(stack: Any) -> dict[str, int]:
    with reading(stack.ctx.engine) as conn:
        rows = conn.execute(select(BATCH.c.state, func.count()).group_by(BATCH.c.state))
        return {r[0]: r[1] for r in rows}


def hold_reasons(stack: Any) -> Counter[str]:
    with reading(stack.ctx.engine) as conn:
        rows = conn.execute(select(MESSAGE.c.hold_reason, func.count()).where(MESSAGE.c.state == "held")
                            .group_by(MESSAGE.c.hold_reason))
        return Counter({str(r[0]): r[1] for r in rows})


def id_mismatches(stack: Any) -> list[str]:
    """Sent rows whose gateway job id / message id differ from what the gateway's ledger says for them."""
    by_key = {(e["number"], e["text"]): e for e in ledger(stack.sim)}
    with reading(stack.ctx.engine) as conn:
        rows = conn.execute(select(MESSAGE.c.id, MESSAGE.c.number, MESSAGE.c.text, MESSAGE.c.state,
                                   MESSAGE.c.gateway_job_id, MESSAGE.c.gateway_message_id)
                            .where(MESSAGE.c.state.in_(SENT))).all()
    out = []
    for r in rows:
        e = by_key.get((r.number, r.text))
        if e is not None and (str(e["job_id"]), str(e["message_id"])) != (r.gateway_job_id,
                                                                           r.gateway_message_id):
            out.append(f"{r.id}: db ({r.gateway_job_id}, {r.gateway_message_id}) != gateway "
                       f"({e['job_id']}, {e['message_id']})")
    return out


@dataclass
class Figures:
    scenario: str
    db: str
    messages: int
    faults: str
    sent_once: int
    unknown: int
    unknown_in_ledger: int
    failed: int
    lost: int
    duplicated: int
    strays: int
    seconds: float

    def line(self) -> str:
        return (f"CHAOS {self.scenario} [{self.db}]: messages={self.messages} faults: {self.faults}; "
                f"sent_once={self.sent_once} unknown={self.unknown} (in ledger {self.unknown_in_ledger}) "
                f"failed={self.failed} lost={self.lost} duplicated={self.duplicated} strays={self.strays} "
                f"({self.seconds:.0f} s)")


def verify(stack: Any, scenario: str, faults: str, total: int, started: float, *,
           allow_failed: bool = False) -> Figures:
    """The contract, checked against the gateway's ledger; prints (and records) the scenario's figures.

    Every accepted message is in the ledger exactly once, or is `unknown` in the database and then in the
    ledger at most once; none is lost (still queued, held or sending); the database agrees with the
    ledger (sent rows are in it with the same ids, failed and unsent rows are not); nothing the database
    does not know reached the gateway.
    """
    a = audit(stack)
    counts = stack.counts()
    fig = Figures(scenario, db_name(stack), a.messages, faults, a.sent_once, a.unknown, a.unknown_in_ledger,
                  counts.get("failed", 0), a.lost, a.duplicated, a.strays, time.monotonic() - started)
    print(fig.line())
    path = os.environ.get("SMSPOINT_CHAOS_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(asdict(fig)) + "\n")
    assert a.messages == total, fig.line()
    assert a.lost == 0, f"{fig.line()}; states={counts}"
    assert a.duplicated == 0, fig.line()
    assert a.strays == 0, fig.line()
    assert a.mismatched == [], a.mismatched[:5]
    assert id_mismatches(stack) == []
    if not allow_failed:
        assert fig.failed == 0, fig.line()
    assert a.sent_once + a.unknown + fig.failed == total, fig.line()
    return fig


def settle(stack: Any, total: int, timeout: float = 150.0) -> dict[str, int]:
    """Wait until every message is sent, failed or unknown (nothing queued, held or sending)."""
    return stack.wait_settled(total, timeout=timeout, done=SETTLED)
