"""Benchmark (not a test): what each database step of a message costs, per row, with the real store
functions and no gateway, workers or Redis.

N messages are enqueued through ``store.MessageWriter`` (the path of ``send_bulk``), then taken through
the worker's steps in batches of 2,000, each step in its own transaction, exactly as the collector and
the sender run them: claim into a batch, load the batch, mark it ``sending`` (the batch row alone: its
messages are not rewritten), record ``sent`` with a gateway id per message. Printed per database:
microseconds per row of each step (wall time in this process: Python, driver and server). This is where
the pipeline's database time goes; the three writes of a message before its final state are its floor.

    python -m bench.db_steps                      # 100,000 messages, PostgreSQL and SQLite
    python -m bench.db_steps --rows 20000 --db postgresql --pg-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from dispatcher import store
from dispatcher.db import get_engine, transaction
from dispatcher.ids import new_id, new_ids
from dispatcher.states import BatchState, State

from .harness import Options, database
from .workload import TXN, number, txn_text

BATCH = 2000
STEPS = ("enqueue (COPY / executemany)", "claim into a batch", "load the batch", "mark sending (batch)",
         "record sent")


def measure(url: str, n: int) -> dict[str, float]:
    """Seconds per step for ``n`` messages on the database at ``url``."""
    engine = get_engine(url)
    now = datetime.now(UTC)
    common = {"state": State.QUEUED.value, "hold_reason": None, "channel": TXN["channel"],
              "sender_id": TXN["sender_id"], "template_id": TXN["template_id"], "idempotency_key": None,
              "meta": None, "bulk_id": new_id(), "batch_id": None, "attempts": 0, "created_at": now,
              "send_at": None, "pushed_at": now, "updated_at": now}
    ids = new_ids(n)
    rows = [(number(i), txn_text(i), 1, 1, False, None, None) for i in range(n)]  # no metadata, no key
    spent = dict.fromkeys(STEPS, 0.0)
    t = time.perf_counter()
    with transaction(engine) as conn, store.MessageWriter(conn, common) as out:
        for k in range(0, n, 5000):
            out.write(ids[k:k + 5000], rows[k:k + 5000])
    spent[STEPS[0]] = time.perf_counter() - t
    for k in range(0, n, BATCH):
        batch_id = new_id()
        t0 = time.perf_counter()
        with transaction(engine) as conn:
            claimed = store.claim_for_batch(conn, ids[k:k + BATCH], batch_id, now)
            store.insert_batch(conn, {
                "id": batch_id, "lane": "transactional", "channel": TXN["channel"],
                "sender_id": TXN["sender_id"], "template_id": TXN["template_id"], "is_unicode": False,
                "size": len(claimed), "credits": 0, "state": BatchState.PENDING.value, "created_at": now,
                "published_at": now})
        t1 = time.perf_counter()
        with transaction(engine) as conn:
            messages = store.batch_messages(conn, batch_id, State.QUEUED)
        t2 = time.perf_counter()
        with transaction(engine) as conn:
            assert store.move_batch(conn, batch_id, BatchState.SENDING, now, credits=len(messages))
        t3 = time.perf_counter()
        sent = [{"id": m.id, "gateway_message_id": f"g{m.id[:20]}", "credits_charged": m.credits}
                for m in messages]
        with transaction(engine) as conn:
            store.mark_sent(conn, sent, "job-1", now, batch_id=batch_id, sending_at=now)
        t4 = time.perf_counter()
        for step, seconds in zip(STEPS[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[step] += seconds
        assert len(messages) == min(BATCH, n - k), "every claimed message is loaded"
    return spent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.db_steps", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--db", default="postgresql,sqlite", help="postgresql, sqlite or both (comma-separated)")
    ap.add_argument("--pg-url", default=Options.pg_admin, help="PostgreSQL admin URL (a scratch database "
                    "is created and dropped)")
    args = ap.parse_args(argv)
    opts = Options(pg_admin=args.pg_url)
    for db in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(db, opts, Path(tmp)) as url:
            spent = measure(url, args.rows)
        print(f"{db}: {args.rows:,} messages, batches of {BATCH:,}")
        for step, seconds in spent.items():
            per_row = seconds * 1e6 / args.rows
            print(f"  {step:<30} {per_row:7.1f} us/row  ({args.rows / seconds:,.0f} rows/s)")
        print(f"  {'all steps':<30} {sum(spent.values()) * 1e6 / args.rows:7.1f} us/row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
