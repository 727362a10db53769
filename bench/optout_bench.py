"""Benchmark (not a test): ``send_bulk`` with and without a large opt-out list, in the same run.

Two scratch databases on the same server: one with an empty suppression list, one with M opt-outs of the
bulk's channel (loaded with COPY, not timed; 1% of the bulk's own numbers among them, so lookups hit).
The same bulk of N transactional messages (the same numbers) is enqueued into each, alternating,
``--repeat`` times; the best rate of each side is compared. Printed: rates, their ratio, and whether the
opted-out rows were the rejects.

    python -m bench.optout_bench                         # N = 100,000 messages, M = 1,000,000 opt-outs
    python -m bench.optout_bench --size 50000 --opt-outs 200000
    python -m bench.optout_bench --smoke                 # tiny sizes (for a test)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .harness import PG_ADMIN_URL, REDIS_URL, Options, Run, Stack, rate, simulator, stack
from .workload import TXN, number, txn_text

#: The issue's bar for send_bulk on PostgreSQL with 1,000,000 opt-outs loaded.
TARGET = 50_000.0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.optout_bench",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--size", type=int, default=100_000, help="messages per send_bulk (default 100,000)")
    p.add_argument("--opt-outs", type=int, default=1_000_000, help="opt-outs loaded (default 1,000,000)")
    p.add_argument("--repeat", type=int, default=2, help="send_bulk calls per side, alternating")
    p.add_argument("--db", default="postgresql", help="postgresql or sqlite")
    p.add_argument("--smoke", action="store_true", help="300 messages, 3,000 opt-outs")
    p.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL (scratch databases)")
    p.add_argument("--redis-url", default=REDIS_URL, help="Redis URL (a unique key prefix per run)")
    ns = p.parse_args(argv)
    if ns.smoke:
        ns.size, ns.opt_outs, ns.repeat = min(ns.size, 300), min(ns.opt_outs, 3000), 1
    return ns


def load_opt_outs(s: Stack, count: int, bulk_size: int) -> int:
    """COPY ``count`` transactional opt-outs into the stack's database: every 100th bulk number, and
    numbers the bulk does not use for the rest. Returns how many bulk rows are opted out."""
    ctx = s.ctx
    hits = list(range(0, bulk_size, 100))[:count]
    others = count - len(hits)
    now = datetime.now(UTC).isoformat()
    raw = ctx.engine.raw_connection()
    try:
        if ctx.engine.dialect.name == "postgresql":
            pg: Any = raw.driver_connection  # psycopg's own connection: its cursors have copy()
            with pg.cursor() as cur, cur.copy("COPY opt_out (number, channel, created_at, reason, source) "
                                               "FROM STDIN") as copy:
                for n in [number(i) for i in hits] + [number(5_000_000 + i) for i in range(others)]:
                    copy.write_row((n, "transactional", now, "bench", "bench"))
        else:
            cur = raw.cursor()
            cur.execute("BEGIN")
            cur.executemany("INSERT INTO opt_out (number, channel, created_at, reason, source) "
                            "VALUES (?, 'transactional', ?, 'bench', 'bench')",
                            [(n, now) for n in [number(i) for i in hits]
                             + [number(5_000_000 + i) for i in range(others)]])
        raw.commit()
    finally:
        raw.close()
    return len(hits)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sides; 0 when every run enqueued exactly the rows it should (prints the comparison)."""
    args = parse(argv)
    opts = Options(size=args.size, dbs=(args.db,), smoke=args.smoke, pg_admin=args.pg_url,
                   redis_url=args.redis_url)
    rates: dict[str, list[float]] = {"without": [], "with": []}
    ok = True
    with tempfile.TemporaryDirectory(prefix="smspt-optout-bench-") as logs, simulator(opts) as sim:
        run = Run(opts, Path(logs))
        with stack(run, args.db, sim) as plain, stack(run, args.db, sim) as loaded:
            t0 = time.perf_counter()
            hits = load_opt_outs(loaded, args.opt_outs, args.size)
            print(f"loaded {args.opt_outs:,} opt-outs in {time.perf_counter() - t0:.1f} s "
                  f"({hits:,} of them numbers of the bulk)")
            for s in (plain, loaded):  # warm-up: connections, caches
                s.dispatcher.send_bulk([(number(9_000_000 + i), txn_text(i)) for i in range(10)], **TXN)
            for k in range(args.repeat):
                for side, s, expect in (("without", plain, 0), ("with", loaded, hits)):
                    rows = ((number(i), txn_text(k * args.size + i)) for i in range(args.size))
                    t = time.perf_counter()
                    res = s.dispatcher.send_bulk(rows, **TXN, skip_invalid=True)
                    seconds = time.perf_counter() - t
                    rates[side].append(rate(args.size, seconds))
                    good = len(res.rejects) == expect and len(res) == args.size - expect
                    ok = ok and good
                    print(f"  {side:>7} opt-outs: {args.size:,} rows in {seconds:.2f} s = "
                          f"{rates[side][-1]:,.0f} msgs/s, {len(res.rejects):,} rejected "
                          f"(expected {expect:,})")
    best_without, best_with = max(rates["without"]), max(rates["with"])
    ratio = best_with / max(best_without, 1e-9)
    print(f"{args.db}: send_bulk of {args.size:,}: best {best_without:,.0f} msgs/s without opt-outs, "
          f"{best_with:,.0f} msgs/s with {args.opt_outs:,} loaded; ratio with/without = {ratio:.2f}")
    if args.db == "postgresql":
        print(f"target >= {TARGET:,.0f} msgs/s with opt-outs: {'met' if best_with >= TARGET else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
