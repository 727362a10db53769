"""``python -m bench [scenarios...]``: run the benchmarks, print a table per scenario, write JSON results
and PNG plots under ``--out`` (default bench/results). ``make bench`` and ``smsdispatch bench`` run this.

    python -m bench                  # every scenario at the issue's sizes (long: run it on a quiet machine)
    python -m bench --smoke          # every scenario at tiny sizes (the test suite runs this)
    python -m bench end_to_end baseline --size 20000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from . import report
from .harness import PG_ADMIN_URL, REDIS_URL, Options, Run

#: Scenario name -> module (run in this order); numbers and short names are accepted too.
SCENARIOS = {"enqueue": "enqueue", "end_to_end": "end_to_end", "baseline": "baseline", "limit": "limit",
             "otp_load": "otp_load", "sync": "delivery_sync", "memory_scale": "memory_scale",
             "http_api": "http_api", "retention": "retention", "history": "history",
             "encoding": "encoding"}
ALIASES = {"1": "enqueue", "2": "end_to_end", "e2e": "end_to_end", "3": "baseline", "4": "limit",
           "5": "otp_load", "otp": "otp_load", "6": "sync", "7": "memory_scale", "memory": "memory_scale",
           "8": "http_api", "http": "http_api", "9": "retention", "purge": "retention", "10": "history",
           "11": "encoding", "all": "all"}
SMOKE = {"size": 300, "memory_size": 3000, "scale_size": 600, "baseline_size": 60, "profile_size": 2000,
         "purge_size": 3000, "history_size": 6000, "history_sms": 50}


def parse(argv: Sequence[str] | None) -> tuple[list[str], Options]:
    listed = ", ".join(f"{i} {n}" for i, n in enumerate(SCENARIOS, 1))
    p = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"scenarios: {listed}")
    p.add_argument("scenarios", nargs="*", default=["all"], help="names or numbers (default: all)")
    p.add_argument("--size", type=int, default=100_000, help="messages per scenario (default 100,000)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness, measures nothing")
    p.add_argument("--out", type=Path, default=Options.out, help="results folder (JSON and PNG)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="simulated gateway latency per call")
    p.add_argument("--concurrency", type=int, default=4, help="worker pool processes (pipeline and baseline)")
    p.add_argument("--otp-concurrency", type=int, default=2, help="pool processes of the OTP worker")
    p.add_argument("--db", default="postgresql,sqlite",
                   help="databases, comma-separated; the first is used by the single-database scenarios")
    p.add_argument("--memory-size", type=int, default=1_000_000, help="messages of the memory run")
    p.add_argument("--scale-size", type=int, default=50_000, help="messages per point of the scale sweep")
    p.add_argument("--baseline-size", type=int, default=0, help="baseline messages (0: ~20 s of its rate)")
    p.add_argument("--profile-size", type=int, default=20_000, help="messages of the profiled runs")
    p.add_argument("--purge-size", type=int, default=1_000_000,
                   help="old rows purged while the retention scenario drains (default 1,000,000)")
    p.add_argument("--history-size", type=int, default=10_000_000,
                   help="finished messages already in the table in scenario history (default 10,000,000)")
    p.add_argument("--history-sms", type=int, default=5_000, help="send_sms calls per side of scenario 10")
    p.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL (scratch databases)")
    p.add_argument("--redis-url", default=REDIS_URL, help="Redis URL (a unique key prefix per run)")
    ns = p.parse_args(argv)
    names: list[str] = []
    for raw in ns.scenarios:
        name = ALIASES.get(raw, raw)
        if name == "all":
            names.extend(SCENARIOS)
        elif name in SCENARIOS:
            names.append(name)
        else:
            p.error(f"unknown scenario {raw!r}; choose from {', '.join(SCENARIOS)} or 1-11")
    dbs = tuple(d.strip() for d in ns.db.split(",") if d.strip())
    if not dbs or set(dbs) - {"sqlite", "postgresql"}:
        p.error("--db takes sqlite and/or postgresql")
    sizes = {"size": ns.size, "memory_size": ns.memory_size, "scale_size": ns.scale_size,
             "baseline_size": ns.baseline_size, "profile_size": ns.profile_size, "purge_size": ns.purge_size,
             "history_size": ns.history_size, "history_sms": ns.history_sms}
    if ns.smoke:
        sizes = {k: min(v, SMOKE[k]) if v else SMOKE[k] for k, v in sizes.items()}
    opts = Options(latency_ms=ns.latency_ms, concurrency=ns.concurrency, otp_concurrency=ns.otp_concurrency,
                   dbs=dbs, smoke=ns.smoke, out=ns.out, pg_admin=ns.pg_url, redis_url=ns.redis_url, **sizes)
    return [n for n in SCENARIOS if n in names], opts


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; 0 when every one of them produced its results."""
    names, opts = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (workers, databases, keys) as on Ctrl-C
    machine = report.machine(opts.pg_admin, opts.redis_url)
    report.show_machine(machine)
    report.console.print("options: " + ", ".join(f"{k}={v}" for k, v in asdict(opts).items()))
    failed: list[str] = []
    done: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="smspt-bench-logs-") as logs:
        run = Run(opts, Path(logs))
        for name in names:
            module = importlib.import_module(f"bench.{SCENARIOS[name]}")
            started = time.perf_counter()
            try:
                result = module.run(run)
            except KeyboardInterrupt:
                report.console.print(f"[red]interrupted during {name}; everything it started was stopped[/]")
                return 130
            except Exception:  # noqa: BLE001 - one broken scenario must not hide the others' results
                report.console.print(f"[red]{name} failed[/]\n{traceback.format_exc()}")
                failed.append(name)
                continue
            result.seconds = time.perf_counter() - started
            report.show(result)
            path = report.write(result, opts.out, machine)
            done[name] = {"json": str(path), "ratios": result.ratios, "targets": result.targets,
                          "seconds": round(result.seconds, 1)}
    opts.out.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine, "options": {k: str(v) for k, v in asdict(opts).items()}, "scenarios": done,
               "failed": failed}
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if failed:
        report.console.print(f"[red]failed: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
