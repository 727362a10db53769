"""Child processes the demo starts and must stop: each in its own session (process group), logging to a
file, tied to the demo's life (Linux: PR_SET_PDEATHSIG), stopped as a whole group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the child leads its own group

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_for(self, pattern: str | Callable[[], bool], timeout: float, what: str = "") -> str:
        """Wait until the log matches ``pattern`` (returns the match) or ``pattern()`` is true."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern) if isinstance(pattern, str) else None
        while time.monotonic() < deadline:
            if rx is not None:
                m = rx.search(self.log.read_text(errors="replace")) if self.log.exists() else None
                if m:
                    return m.group(m.lastindex or 0)
            elif callable(pattern) and pattern():
                return ""
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} "
                                   f"(log: {self.log}):\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready within {timeout:.0f}s{what} "
                           f"(log: {self.log}):\n{self.tail()}")


@dataclass
class Children:
    """Every process the demo started, stopped in reverse order of starting (Redis last)."""

    logs: Path
    started: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Child:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True,
                                    preexec_fn=die_with_parent if sys.platform == "linux" else None)
        child = Child(name, proc, log)
        self.started.append(child)
        return child

    def stop_all(self, grace_s: float = 20.0, on_step: Callable[[str], None] | None = None) -> list[int]:
        """SIGTERM every group (the last started first: workers finish before Redis goes), SIGKILL what
        is left after ``grace_s``; returns the pids still alive afterwards (should be none)."""
        for child in reversed(self.started):
            if on_step:
                on_step(child.name)
            if child.alive():  # the leader first: Celery's warm shutdown stops its own pool
                child.proc.send_signal(signal.SIGTERM)
            _wait_empty(child, grace_s)
            for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                if group_members(child.pgid):
                    _signal_group(child.pgid, sig)
                    _wait_empty(child, wait_s)
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2)
        return [pid for child in self.started for pid in group_members(child.pgid)]


def _wait_empty(child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.proc.poll()  # reap the leader, so it does not count as alive
        if not group_members(child.pgid):
            return
        time.sleep(0.1)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started in its own session, with its whole group (pool children included)."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the group (a warm shutdown), then SIGKILL it if the leader has not exited in ``timeout``."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc; falls back to a kill(0) probe."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out
