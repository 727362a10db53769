"""Processes a benchmark starts: Celery workers in their own process group (stopped as a group, told to
die with the harness), their memory and CPU time from /proc, and waiting for the simulator to accept
messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dispatcher.demo.procs import die_with_parent, group_members
from dispatcher.simulator import SimulatorProcess
from dispatcher.simulator.admin import AdminClient

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Worker:
    """A ``celery worker`` process tree, in its own process group."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and b" ready." in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"worker {self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        return group_members(self.proc.pid)

    def stop(self, grace_s: float = 15.0) -> None:
        """Warm shutdown of the group (SIGTERM), then SIGKILL whatever is left."""
        stop_all([self], grace_s)


def stop_all(workers: Sequence[Worker], grace_s: float = 15.0) -> None:
    """Stop several workers at once: SIGTERM every group, wait, SIGKILL what is left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        alive = [w for w in workers if w.pids()]
        for w in alive:
            try:
                os.killpg(w.proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(w.proc.poll() is None or w.pids() for w in alive):
            time.sleep(0.05)
    for w in workers:
        w.proc.poll()


def start_worker(env: dict[str, str], logs: Path, name: str, *, queues: Sequence[str], concurrency: int,
                 app: str = "workers.app", beat: bool = False, loglevel: str = "INFO") -> Worker:
    """``python -m celery -A app worker`` in its own session, logging to ``logs/name.log``."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}-{uuid.uuid4().hex[:6]}.log"
    cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", ",".join(queues),
           "-c", str(concurrency), "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip",
           "--without-mingle", "--without-heartbeat", "-l", loglevel]
    if beat:
        cmd += ["-B", "-s", str(logs / f"{log.stem}-beat-schedule")]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent if sys.platform == "linux" else None)
    return Worker(name, proc, log)




def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmdlines() -> dict[int, str]:
    """pid -> command line of every process visible in /proc."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
                out[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


class CpuMeter:
    """CPU seconds spent between ``start()`` and ``stop()`` by named groups of processes, each group a
    function that picks its pids from /proc's command lines (evaluated at both ends, so processes started
    in between count from 0; one that exits in between is not counted)."""

    def __init__(self, groups: dict[str, Callable[[dict[int, str]], Sequence[int]]]) -> None:
        self.groups = groups
        self._before: dict[int, float] = {}
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        lines = cmdlines()
        self._before = {pid: cpu_s(pid) for pick in self.groups.values() for pid in pick(lines)}

    def stop(self) -> dict[str, float]:
        lines = cmdlines()
        self.spent = {name: sum(max(0.0, cpu_s(pid) - self._before.get(pid, 0.0)) for pid in set(pick(lines)))
                      for name, pick in self.groups.items()}
        return self.spent


def memory_kb(pid: int) -> tuple[int, int, int]:
    """(VmRSS, VmHWM, Pss) of one process in kB; zeros when it is gone. PSS shares the pages a forked
    pool child still has in common with its parent, so PSS adds up over a process tree; RSS does not."""
    values = {"VmRSS:": 0, "VmHWM:": 0, "Pss:": 0}
    for name in (f"/proc/{pid}/status", f"/proc/{pid}/smaps_rollup"):
        try:
            for line in Path(name).read_text().splitlines():
                key = line.split(None, 1)[0] if line else ""
                if key in values:
                    values[key] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return values["VmRSS:"], values["VmHWM:"], values["Pss:"]


def wait_accepted(sim: SimulatorProcess, total: int, timeout: float, workers: Sequence[Worker] = (),
                  on_poll: Callable[[int], None] | None = None,
                  describe: Callable[[], str] = lambda: "", poll_s: float = 0.05) -> float:
    """Poll the simulator's ledger until it holds ``total`` messages; returns time.time() when seen.

    Fails early when a worker died, and after ``timeout`` with the workers' last log lines."""
    deadline = time.monotonic() + timeout
    while True:
        n = int(sim.admin.ledger_page(0, 1)["total"])
        if on_poll:
            on_poll(n)
        if n >= total:
            return time.time()
        dead = [w for w in workers if w.proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.name}\n{w.tail(15)}" for w in workers)
            what = f"worker(s) {[w.name for w in dead]} died" if dead else f"timed out after {timeout:.0f} s"
            raise RuntimeError(f"{what}: {n:,} of {total:,} accepted; {describe()}\n{tails}")
        time.sleep(poll_s)


@contextmanager
def progress(sim: SimulatorProcess, every_s: float = 0.1) -> Iterator[list[tuple[float, int]]]:
    """Sample (seconds since entry, messages accepted) from another thread while the block runs."""
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    admin = AdminClient(sim.root_url)
    t0 = time.time()

    def poll() -> None:
        while not stop.is_set():
            samples.append((time.time() - t0, int(admin.ledger_page(0, 1)["total"])))
            stop.wait(every_s)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
        admin.close()
