"""A test rig for delivery-report sync and hooks: the real pipeline (Redis lanes, collector, sender, a real
database, the simulator over loopback HTTP) driven in-process with an injected clock that moves together
with the simulator's own clock, so nothing sleeps."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from dispatcher import collector, sender, store, sync
from dispatcher.api import Dispatcher
from dispatcher.context import Context
from dispatcher.db import transaction
from dispatcher.models import JOB, MESSAGE
from dispatcher.publish import RecordingPublisher

from .pipeline_helpers import TXN, calls

#: Simulator lifecycle that makes fates exact: random numbers delivered 20 s after acceptance, magic
#: numbers as documented in dispatcher/simulator/lifecycle.py, no jitter.
EXACT_LIFECYCLE = {"delivered_after_s": 20, "undelivered_after_s": 20, "jitter": 0, "undelivered_rate": 0,
                   "pending_rate": 0, "pending_after_s": 5}


class FakeClock:
    """A clock that only moves when told to (starts at the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    stack: Any
    ctx: Context
    clock: FakeClock
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)

    @property
    def sim(self) -> Any:
        return self.stack.sim

    def send(self, rows: list[tuple[str, str]], spec: dict[str, Any] = TXN) -> list[str]:
        """Enqueue ``(number, text)`` rows, collect them into batches and send every batch (in-process)."""
        d = Dispatcher(self.ctx)
        ids = [d.send_sms(n, t, **spec) for n, t in rows]
        collector.collect(self.ctx, spec["channel"], max_run_s=2.0)
        batches, self.publisher.batches[:] = list(self.publisher.batches), []
        for batch_id, *_ in batches:
            sender.send_batch(self.ctx, batch_id)
        return ids

    def advance(self, **delta: float) -> None:
        """Move our clock and the simulator's by the same amount."""
        step = timedelta(**delta)
        self.clock.now += step
        self.sim.admin.advance(step.total_seconds())

    def sync(self, **kw: Any) -> sync.SyncResult:
        return sync.run(self.ctx, **kw)

    def messages(self, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        with transaction(self.ctx.engine) as conn:
            q = select(MESSAGE)
            if ids is not None:
                q = q.where(MESSAGE.c.id.in_(ids))
            return {r.id: dict(r._mapping) for r in conn.execute(q)}

    def states(self, ids: list[str]) -> list[str]:
        rows = self.messages(ids)
        return [rows[i]["state"] for i in ids]

    def jobs(self) -> dict[str, dict[str, Any]]:
        with transaction(self.ctx.engine) as conn:
            return {r.job_id: dict(r._mapping) for r in conn.execute(select(JOB))}

    def status_calls(self) -> Counter[str]:
        """sms-delivery-status calls the simulator received, per job id."""
        return Counter(str(c["job_id"]) for c in calls(self.sim) if c["command"] == "sms-delivery-status")

    def hook_rows(self) -> dict[str, dict[str, Any]]:
        with transaction(self.ctx.engine) as conn:
            return {r["message_id"]: r for r in store.hook_rows(conn)}


def make_rig(make_stack: Any, lifecycle: dict[str, float] | None = None, **overrides: Any) -> Rig:
    stack = make_stack(**overrides)
    stack.sim.admin.set_lifecycle(**(EXACT_LIFECYCLE if lifecycle is None else lifecycle))
    clock, publisher = FakeClock(), RecordingPublisher()
    return Rig(stack, Context(stack.settings, publisher=publisher, clock=clock), clock, publisher)
