"""Long-running services: ``worker``, ``beat``, ``flower``, ``simulator``, ``metrics``, ``demo``, and the
one-shot ``db upgrade`` and ``bench``."""

from __future__ import annotations

import importlib.util
import inspect
import os
import signal
import sys
import threading
from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from . import launch
from .common import err, out, state

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _exec(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Replace this process with ``argv`` (signals then reach Celery directly)."""
    err.print("exec: " + " ".join(argv), markup=False, highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, {**os.environ, **(env or {})})


def worker(ctx: typer.Context,
           role: str = typer.Option("all", "--role", help="otp | bulk | all: which queues to consume."),
           concurrency: int | None = typer.Option(None, "--concurrency", "-c", min=1,
                                                  help="Worker processes (default: CPU count)."),
           name: str | None = typer.Option(None, "--name", "-n", help="Node name (default ROLE@%h)."),
           loglevel: str = typer.Option("INFO", "--loglevel", "-l", help="Celery log level.")) -> None:
    """Run a Celery worker for one role (further flags go to 'celery worker').

    Examples:

        smsdispatch worker --role otp --concurrency 2   # OTP lane only
        smsdispatch worker --role bulk -c 8
        smsdispatch worker --role all -- --autoscale=8,2

    Roles and their queues: otp = otp; bulk = transactional, promotional,
    sync, maintenance; all = every queue.
    """
    _ = state(ctx).settings  # bad settings fail here, in one line, not in the worker
    _exec(launch.worker_argv(role, concurrency, name, loglevel=loglevel, extra=tuple(ctx.args)))


def beat(ctx: typer.Context,
         schedule: str | None = typer.Option(None, "--schedule", "-s",
                                             help="Beat's schedule file (default: in the system's temporary "
                                                  "directory, never the working directory)."),
         loglevel: str = typer.Option("INFO", "--loglevel", "-l", help="Celery log level.")) -> None:
    """Run Celery beat: repair sweeps, releases and the report sync on a timer.

    Example:

        smsdispatch beat --schedule /var/lib/smspoint/celerybeat-schedule

    Run exactly one beat per deployment (two would double every periodic task).
    """
    _ = state(ctx).settings
    _exec(launch.beat_argv(schedule, loglevel) + list(ctx.args))


def flower(ctx: typer.Context,
           address: str | None = typer.Option(None, "--address", help="Bind address (FLOWER_ADDRESS)."),
           port: int | None = typer.Option(None, "--port", help="Port (default FLOWER_PORT, 5555).")) -> None:
    """Run the Flower dashboard on the project's Celery app, with basic auth.

    Examples:

        smsdispatch flower                    # http://127.0.0.1:5555
        FLOWER_USER=ops FLOWER_PASSWORD=... smsdispatch flower --address 0.0.0.0

    Credentials come from FLOWER_USER / FLOWER_PASSWORD; without them it only
    listens on loopback. Tasks show ids and counts, never texts or numbers.
    """
    s = state(ctx).settings
    addr = s.flower_address if address is None else address
    env = launch.flower_env(addr, s.flower_user, s.flower_password.get_secret_value())
    _exec(launch.flower_argv(addr, s.flower_port if port is None else port) + list(ctx.args), env)


def simulator(ctx: typer.Context) -> None:
    """Run the offline gateway simulator (flags of python -m dispatcher.simulator).

    Examples:

        smsdispatch simulator --port 8765
        smsdispatch simulator --seed 7 --credits Promotional=100

    Then: SMSPOINT_BASE_URL=http://127.0.0.1:8765/api/v1 and
    SMSPOINT_API_KEY=simulator-key. Faults and the control API: docs/simulator.md.
    """
    from ..simulator.cli import main as sim_main

    if any(a in ("-h", "--help") for a in ctx.args):
        out.print(inspect.cleandoc(simulator.__doc__ or "") + "\n", markup=False)
    sim_main(list(ctx.args))


def metrics(ctx: typer.Context,
            port: int | None = typer.Option(None, "--port", help="Port (METRICS_PORT, 9808; 0: any)."),
            address: str = typer.Option("0.0.0.0", "--address", help="Bind address.")) -> None:
    """Serve Prometheus metrics at /metrics (read from the database and Redis).

    Example:

        smsdispatch metrics --port 9808
        curl -s localhost:9808/metrics | grep smspoint_messages

    One exporter per deployment is enough. Example alert rules: deploy/alerts.yml.
    """
    from ..metrics import serve

    st = state(ctx)
    server, _ = serve(st.ctx, st.settings.metrics_port if port is None else port, address)
    out.print(f"serving metrics on http://{address}:{server.server_port}/metrics")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()


def demo(ctx: typer.Context,
         messages: int = typer.Option(20_000, "--messages", "-n", min=1, help="Messages to enqueue."),
         keep_running: bool = typer.Option(True, "--keep-running/--exit-when-done",
                                           help="After the report, keep everything up until Ctrl-C "
                                                "(default), or stop at once."),
         no_flower: bool = typer.Option(False, "--no-flower", help="Do not start Flower."),
         to: str | None = typer.Option(None, "--to", help="Real gateway only: your own test numbers, "
                                                         "comma-separated (the demo sends to these only)."),
         yes: bool = typer.Option(False, "--yes", "-y", help="Real gateway: do not ask for confirmation."),
         timeout: float = typer.Option(600.0, "--timeout",
                                       help="Give up waiting for final states after (s)."),
         sim_variants: str = typer.Option("", "--sim-variants", help="Simulator answer variants, e.g. "
                                          "order=shuffled,omit_rate=0.05 (docs/simulator.md).")
         ) -> None:
    """Run the whole system locally with a realistic mix; Ctrl-C stops it all.

    Examples:

        smsdispatch demo                  # 20,000 messages, gateway simulator
        smsdispatch demo -n 2000 --exit-when-done
        # the real gateway: 3 real SMS to your own number
        SMSPOINT_BASE_URL=https://thesmspoint.com/api/v1 SMSPOINT_API_KEY=... \\
          smsdispatch demo --to 9876543210 -n 3

    It starts the simulator, a Redis (unless REDIS_URL answers), OTP and bulk
    workers, beat and Flower, with a SQLite database and logs in ./demo-run/,
    prints the report and the Flower URL, and keeps running until Ctrl-C.
    Afterwards the data stays: DATABASE_URL=sqlite:///demo-run/demo.db
    smsdispatch report (or status ID) reads it.
    """
    from ..demo import DemoOptions, run

    code = run(DemoOptions(messages=messages, keep_running=keep_running, flower=not no_flower,
                           to=[x.strip() for x in to.split(",") if x.strip()] if to else [], yes=yes,
                           timeout_s=timeout, sim_variants=sim_variants))
    raise typer.Exit(code)


db_app = typer.Typer(help="Database schema: 'smsdispatch db upgrade' brings it up to date.",
                     no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context,
               revision: str = typer.Option("head", "--revision", help="Target alembic revision.")) -> None:
    """Create or migrate the schema at DATABASE_URL (safe to run again).

    Example:

        DATABASE_URL=postgresql://app:...@db/smspoint smsdispatch db upgrade

    Run it before every rollout, before the workers start.
    """
    from ..db import upgrade

    url = state(ctx).settings.database_url
    upgrade(url, revision)
    out.print(f"database {make_url(url).render_as_string(hide_password=True)} is at {revision}")


def bench(ctx: typer.Context) -> None:
    """Run the benchmarks (python -m bench, from a checkout).

    Example:

        smsdispatch bench
    """
    if not (Path.cwd() / "bench" / "__main__.py").exists():
        try:
            found = importlib.util.find_spec("bench.__main__") is not None
        except ImportError:
            found = False
        if not found:
            err.print("smsdispatch: bench: not yet (no 'bench' package with a __main__ here)")
            raise typer.Exit(1)
    _exec([sys.executable, "-m", "bench", *ctx.args])


def register(app: typer.Typer) -> None:
    app.command("worker", context_settings=EXTRA)(worker)
    app.command("beat", context_settings=EXTRA)(beat)
    app.command("flower", context_settings=EXTRA)(flower)
    app.command("simulator", context_settings={**EXTRA, "help_option_names": []})(simulator)
    app.command("metrics")(metrics)
    app.command("demo")(demo)
    app.add_typer(db_app, name="db")
    app.command("bench", context_settings=EXTRA)(bench)
