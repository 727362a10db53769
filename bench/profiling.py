"""Where the time goes: py-spy over a real worker process tree (when py-spy is installed and may ptrace),
and cProfile of the producer (``send_bulk``) and of the worker path (collector + sender) run in this
process, which works everywhere."""

from __future__ import annotations

import cProfile
import os
import pstats
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Leaf frames that mean "blocked on a socket" in a py-spy sample.
_WAITING = ("(socket.py", "(selectors.py", "(ssl.py", "_read_from_socket (redis/")


def pyspy() -> str | None:
    """The py-spy executable (next to this Python first), or None."""
    return shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                        os.environ.get("PATH", "")]))


@contextmanager
def pyspy_recording(pid: int, out: Path, rate: int = 100) -> Iterator[None]:
    """Sample the process tree of ``pid`` (idle threads included: wall time) into ``out`` (raw format)."""
    exe = pyspy()
    if exe is None:
        raise RuntimeError("py-spy is not installed")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--subprocesses", "--idle", "--nonblocking",
                             "--rate", str(rate), "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            err = b""
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")


def _task_category(frames: list[str]) -> str:
    leaf = frames[-1]
    if any("SmsPointClient._call" in f for f in frames):
        waiting = any(w in leaf for w in _WAITING)
        return "gateway: waiting for the answer" if waiting else "gateway: encoding, parsing (CPU)"
    if any(("sqlalchemy/" in f or "psycopg/" in f or "sqlite3" in f) for f in frames):
        return "database: waiting for the server" if "Connection.wait (psycopg" in leaf \
            else "database: SQLAlchemy + driver (CPU)"
    if any(("kombu/" in f or "celery/" in f) for f in frames[frames.index(_task_frame(frames)):]):
        return "publishing Celery tasks"
    if any("redis/" in f for f in frames):
        return "Redis: waiting (incl. the collector's blocking read)" if any(w in leaf for w in _WAITING) \
            else "Redis (CPU)"
    return "dispatcher code (batching, bookkeeping)"


def _task_frame(frames: list[str]) -> str:
    return next(f for f in frames if "workers/tasks.py" in f or "workers/sync_tasks.py" in f)


def summarize_pyspy(path: Path) -> dict[str, Any]:
    """Samples of the pool processes by category, the share of each task, and the busiest leaf functions."""
    categories: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        procs = [f for f in frames if f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("process ")] or ["?"]
        if any("beat.py" in f for f in frames):
            roles["beat"] += n
            continue
        if len(procs) <= 1:  # the root of the tree: Celery's main process
            roles["main (consumer, broker I/O)"] += n
            continue
        roles["pool processes"] += n
        if not any("workers/tasks.py" in f or "workers/sync_tasks.py" in f for f in frames):
            categories["idle: waiting for a task"] += n
            continue
        tasks[_task_frame(frames).split(" (")[0]] += n
        cat = _task_category(frames)
        categories[cat] += n
        if "waiting" not in cat:
            leaves[frames[-1]] += n
    pool = max(roles["pool processes"], 1)
    return {"samples": sum(roles.values()), "roles": dict(roles),
            "pool_share": {k: round(v / pool, 4) for k, v in categories.most_common()},
            "task_share": {k: round(v / pool, 4) for k, v in tasks.most_common()},
            "top_cpu_leaves": [(k, round(v / pool, 4)) for k, v in leaves.most_common(12)]}


# --------------------------------------------------------------------------- cProfile, in process

#: Functions whose cumulative time is reported as a share of the profiled total (file suffix, name).
KEY_FUNCTIONS = (
    ("dispatcher/sender.py", "send_batch"), ("dispatcher/gateway/client.py", "_call"),
    ("dispatcher/gateway/client.py", "interpret"), ("dispatcher/sender.py", "_record"),
    ("dispatcher/store.py", "batch_messages"), ("dispatcher/store.py", "mark_sent"),
    ("dispatcher/collector.py", "collect"), ("dispatcher/collector.py", "_make_batch"),
    ("dispatcher/store.py", "claim_for_batch"), ("dispatcher/api.py", "send_bulk"),
    ("dispatcher/api.py", "_prepare"), ("dispatcher/store.py", "write"),
    ("dispatcher/api.py", "_publish_bulk"), ("psycopg/connection.py", "wait"),
)


def cprofile(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` under cProfile; (its result, summary: total s, key functions' shares, top by own time)."""
    prof = cProfile.Profile()
    result = prof.runcall(fn)
    st = pstats.Stats(prof)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = st.stats  # type: ignore[attr-defined]
    total = max(getattr(st, "total_tt", 0.0), 1e-9)
    shares = {}
    for suffix, name in KEY_FUNCTIONS:
        cum = sum(v[3] for (file, _, func), v in raw.items() if func == name and file.endswith(suffix))
        if cum:
            shares[f"{suffix.rsplit('/', 1)[-1]}:{name}"] = round(cum / total, 4)
    own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    top = [{"function": f"{_short(file)}:{line}({func})", "calls": v[1], "own_s": round(v[2], 4),
            "cum_s": round(v[3], 4)} for (file, line, func), v in own]
    return result, {"total_s": round(total, 4), "cum_share": shares, "top_own_time": top}


def _short(file: str) -> str:
    for marker in ("site-packages/", str(Path(__file__).resolve().parents[1]) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    if "/lib/python3." in file:  # the standard library
        return file.split("/lib/python3.", 1)[1].split("/", 1)[-1]
    return file


def describe(spy: dict[str, Any], cprof: dict[str, Any]) -> list[str]:
    """A few lines saying where the time goes, for the scenario's printed notes."""
    out = []
    if "pool_share" in spy:
        parts = ", ".join(f"{k} {v:.0%}" for k, v in spy["pool_share"].items())
        out.append(f"py-spy, pool processes of a real worker (wall time): {parts}")
        out.append("py-spy, busiest code inside tasks (CPU): "
                   + "; ".join(f"{name} {share:.1%}" for name, share in spy["top_cpu_leaves"][:6]))
    else:
        out.append(f"py-spy: {spy.get('skipped', 'not run')}")
    for name, prof in cprof.items():
        shares = ", ".join(f"{k} {v:.0%}" for k, v in prof["cum_share"].items())
        out.append(f"cProfile {name} ({prof['total_s']:.2f} s): {shares}")
        out.append(f"cProfile {name}, top own time: "
                   + "; ".join(f"{t['function']} {t['own_s']:.3f}s" for t in prof["top_own_time"][:6]))
    return out
