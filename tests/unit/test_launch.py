"""Command lines of the long-running processes (pure)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dispatcher.cli.launch import beat_argv


def test_beat_keeps_its_schedule_out_of_the_working_directory() -> None:
    """Without --schedule, beat's file goes to the system's temporary directory, never the cwd."""
    argv = beat_argv()
    schedule = Path(argv[argv.index("-s") + 1])
    assert schedule.is_absolute() and schedule.parent == Path(tempfile.gettempdir())
    assert beat_argv("/var/lib/smspoint/s")[-2:] == ["-s", "/var/lib/smspoint/s"]
