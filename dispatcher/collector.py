"""A lane's collector: reads message ids from the lane stream, groups them, and turns each full (or
waited-long-enough) group into a committed batch row handed to a sender task (the OTP lane's collector
makes those calls itself, from a few threads, while it goes on reading).

One collector runs per lane at a time (a Redis lease). Entries are acknowledged only after the batch
that holds their ids is committed, so a crash at any point loses nothing: unacknowledged entries are
claimed back, and ids that were already batched are skipped by the guarded claim.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import priority, sender, store, wakeup
from .batching import Chunk, GroupBuffer
from .db import transaction
from .ids import new_id
from .locks import Lease
from .queue import READ_ENTRIES
from .states import BatchState

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

RECLAIM_IDLE_MS = 15_000
#: The lane whose collector sends its own batches (Settings.otp_inline_send).
INLINE_LANE = "otp"


@dataclass
class CollectResult:
    lane: str
    batches: int = 0
    messages: int = 0
    skipped: int = 0
    busy: bool = False


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def collect(ctx: Context, lane: str, *, max_run_s: float = 5.0) -> CollectResult:
    """Drain ``lane`` for up to ``max_run_s`` seconds; flush everything buffered before returning."""
    result = CollectResult(lane)
    s = ctx.settings
    lease = Lease(ctx.redis, f"{s.redis_prefix}:lock:collector:{lane}", ttl_s=max(10.0, max_run_s * 2))
    if not lease.acquire():
        result.busy = True
        return result
    lanes = ctx.lanes
    consumer = consumer_name()
    buf = GroupBuffer(s.batch_size, s.flush_interval_s(lane))
    inline = InlineSends(ctx, lane, s.otp_inline_threads) if lane == INLINE_LANE and s.otp_inline_send \
        else None
    try:
        lanes.clear_kick(lane)
        lanes.ensure_group(lane)
        for e in lanes.reclaim(lane, consumer, RECLAIM_IDLE_MS):
            buf.add(e.entry_id, e.group, e.ids, time.monotonic())
        deadline = time.monotonic() + max_run_s
        while True:
            if inline is not None:
                inline.wait_for_thread()  # meanwhile arrivals stay in the stream and are batched together
            now = time.monotonic()
            _flush(ctx, lane, buf.take(now), result, inline)
            if now >= deadline:
                break
            wait = buf.next_deadline()
            block_ms = None if wait is None else max(1, int((wait - now) * 1000))
            if wait is None:
                block_ms = 50  # nothing buffered: wait briefly for more, then stop
            entries = lanes.read(lane, consumer, count=READ_ENTRIES, block_ms=block_ms)
            if not entries and len(buf) == 0:
                break
            for e in entries:
                buf.add(e.entry_id, e.group, e.ids, time.monotonic())
            if not lease.extend():
                log.warning("collector %s lost its lease; flushing and stopping", lane)
                break
        _flush(ctx, lane, buf.take(time.monotonic(), force=True), result, inline)
    finally:
        try:
            lease.release()
        finally:
            if inline is not None:
                inline.close()  # the task ends when its calls have ended (a warm shutdown waits for them)
    if lanes.unread(lane) > 0 or lanes.kick_requested(lane):
        # Work arrived after our last read, or a run was requested while we held the lease (we cleared
        # the flag when we started, so a set flag is a producer's): that run found the lease busy and
        # returned, and while the flag stands no producer or tick publishes another. Checked after
        # releasing the lease: a requested run that starts later takes the lease itself.
        wakeup.wake(ctx, lane)
    return result


def _flush(ctx: Context, lane: str, chunks: list[Chunk], result: CollectResult,
           inline: InlineSends | None = None) -> None:
    for chunk in chunks:
        if chunk.ids:
            _make_batch(ctx, lane, chunk, result, inline)
        ctx.lanes.ack(lane, chunk.completes)


def _make_batch(ctx: Context, lane: str, chunk: Chunk, result: CollectResult,
                inline: InlineSends | None = None) -> None:
    channel, sender_id, template_id, is_unicode = store.parse_group(chunk.group)
    priority.yield_for(ctx, lane)  # the claim is the drain's heaviest write: OTPs first
    batch_id = new_id()
    now = ctx.clock()
    with transaction(ctx.engine) as conn:
        claimed = store.claim_for_batch(conn, chunk.ids, batch_id, now)
        if claimed:  # the batch's credits are the sender's to write: what it reserves for the call
            store.insert_batch(conn, {
                "id": batch_id, "lane": lane, "channel": channel, "sender_id": sender_id,
                "template_id": template_id, "is_unicode": is_unicode, "size": len(claimed),
                "credits": 0, "state": BatchState.PENDING.value, "created_at": now, "published_at": now})
    result.skipped += len(chunk.ids) - len(claimed)
    if not claimed:
        return
    result.batches += 1
    result.messages += len(claimed)
    log.info("collector %s: batch %s of %d message(s) for %s", lane, batch_id, len(claimed), chunk.group)
    if inline is not None:
        inline.submit(batch_id, len(claimed), chunk.group)
    else:
        ctx.publisher.send_batch(batch_id, lane, len(claimed), chunk.group)


class InlineSends:
    """The OTP lane's calls, made by up to ``threads`` threads of the collector's own process while it
    goes on reading: an OTP that arrives during a call is batched at once and goes out in a call of its
    own, instead of waiting for the running call to end. When every thread is busy the collector waits
    for one (new arrivals then wait in the stream and are batched together)."""

    def __init__(self, ctx: Context, lane: str, threads: int) -> None:
        self.ctx, self.lane, self.threads = ctx, lane, threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"send-{lane}")
        self._running: set[Future[None]] = set()

    def wait_for_thread(self) -> None:
        self._running = {f for f in self._running if not f.done()}
        while len(self._running) >= self.threads:
            _, not_done = wait(self._running, return_when=FIRST_COMPLETED)
            self._running = set(not_done)

    def submit(self, batch_id: str, size: int, group: str) -> None:
        self.wait_for_thread()
        self._running.add(self._pool.submit(_send_inline, self.ctx, self.lane, batch_id, size, group))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _send_inline(ctx: Context, lane: str, batch_id: str, size: int, group: str) -> None:
    """The OTP lane's collector makes the call itself: no publish, broker round trip and pick-up by
    another pool process (under load, OTP batches queued behind each other there for seconds), and
    OTPs that arrive during a call are read together and go in the next one. The batch is committed
    and every step of send_batch is guarded by its state, so on any error the batch is handed to a
    send task as usual (a duplicate hand-over does nothing)."""
    try:
        sender.send_batch(ctx, batch_id)
    except Exception as exc:  # noqa: BLE001 - the send task takes over the still-committed batch
        log.warning("collector %s: inline send of batch %s failed (%s); handing it to a send task",
                    lane, batch_id, exc.__class__.__name__)
        ctx.publisher.send_batch(batch_id, lane, size, group)
