"""``smsdispatch demo`` (``make demo``): the whole system on one machine, with a realistic mix of messages.

It starts what is missing (the gateway simulator, a private Redis), then OTP and bulk workers, beat and
Flower as child processes with their own Redis key prefix and a SQLite database in ./demo-run/, enqueues
the mix while a live view shows the states, prints the report, and stops every process it started, on
exit, Ctrl-C or SIGTERM. Pointing it at the real gateway is one environment variable (SMSPOINT_BASE_URL;
then ``--to`` names the only recipients).
"""

from __future__ import annotations

import importlib.util
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from ..errors import DispatcherError
from ..settings import Settings
from .procs import Children
from .runner import Demo

console = Console(highlight=False)
if not console.is_terminal:  # logs and CI: wide enough that the tables do not abbreviate their columns
    console = Console(highlight=False, width=120)


@dataclass
class DemoOptions:
    messages: int = 20_000
    keep_running: bool = True
    flower: bool = True
    to: list[str] = field(default_factory=list)
    yes: bool = False
    timeout_s: float = 600.0
    run_dir: Path = Path("demo-run")
    #: simulator answer variants, ``name=value,...`` (docs/simulator.md); only with the simulator
    sim_variants: str = ""


def sync_available() -> bool:
    """Whether the delivery-report sync exists in this checkout (written separately; optional here)."""
    try:
        return importlib.util.find_spec("dispatcher.sync") is not None
    except (ImportError, ValueError):
        return False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(opts: DemoOptions) -> int:
    """Run the demo; returns the exit code. Every child process is stopped before this returns."""
    base = Settings()
    run_dir = opts.run_dir.resolve()
    children = Children(run_dir / "logs")
    demo = Demo(opts, base, run_dir, children, console, flower_password=secrets.token_urlsafe(12),
                sync=sync_available())
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        demo.setup()
        demo.enqueue_and_watch()
        demo.finish()
        if opts.keep_running:
            console.print("\n[bold]everything keeps running[/] (Flower, workers, beat): press Ctrl-C to stop "
                          "it all")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("\ninterrupted" if not opts.keep_running else "")
        code = 0 if opts.keep_running and demo.finished else 130
    except (DispatcherError, RuntimeError, ValueError) as exc:
        console.print(f"[red]demo: {escape(str(exc))}[/]")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            demo.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)
    if demo.ctx is not None:
        console.print(f"the demo's messages stay in {run_dir / 'demo.db'}; read them with\n"
                      f"  DATABASE_URL=sqlite:///{run_dir / 'demo.db'} smsdispatch report", markup=False,
                      soft_wrap=True)
    sys.stdout.flush()
    return code


__all__ = ["DemoOptions", "run"]
