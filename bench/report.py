"""What a benchmark run shows and keeps: the machine, a table per scenario (rich), JSON results and PNG
plots (matplotlib) under the results folder."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)


@dataclass
class Result:
    """One scenario's outcome. ``results`` holds the numbers (rates are per second, times in ms)."""

    scenario: str
    title: str
    config: dict[str, Any]
    results: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]]
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def target(self, name: str, value: float, goal: float, *, at_most: bool = False) -> None:
        """Record a target of the issue and whether this run met it."""
        met = value <= goal if at_most else value >= goal
        self.targets[name] = {"value": round(value, 3), "goal": ("<= " if at_most else ">= ") + f"{goal:g}",
                              "met": met}


def _first_line(cmd: list[str]) -> str:
    import subprocess

    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(pg_admin: str, redis_url: str) -> dict[str, Any]:
    """Cores, CPU model, RAM, load, Python, PostgreSQL and Redis versions, library versions, date."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}", "cores": os.cpu_count(), "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1), "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    try:
        import psycopg

        with psycopg.connect(pg_admin, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else "?"
    except Exception as exc:  # noqa: BLE001 - the run says what it could not see
        info["postgresql"] = f"unavailable ({exc.__class__.__name__})"
    try:
        from redis import Redis

        r = Redis.from_url(redis_url, socket_connect_timeout=3)
        info["redis"] = r.info("server").get("redis_version", "?")
        r.close()
    except Exception as exc:  # noqa: BLE001
        info["redis"] = f"unavailable ({exc.__class__.__name__})"
    import sqlite3

    info["sqlite"] = sqlite3.sqlite_version
    info["libraries"] = {name: _version(name) for name in
                         ("celery", "kombu", "redis", "sqlalchemy", "psycopg", "requests", "uvicorn")}
    return info


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def show_machine(info: dict[str, Any]) -> None:
    t = Table(title="machine", show_header=False, title_justify="left")
    for key, value in info.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        t.add_row(key, shown)
    console.print(t)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def show(result: Result) -> None:
    """Print the scenario's configuration, table, ratios and targets."""
    console.rule(f"[bold]{result.scenario}[/]: {result.title}")
    console.print("config: " + ", ".join(f"{k}={v}" for k, v in result.config.items()))
    t = Table(*result.columns, title_justify="left")
    for row in result.rows:
        t.add_row(*(_fmt(v) for v in row))
    console.print(t)
    for name, value in result.ratios.items():
        console.print(f"ratio {name}: [bold]{value:,.2f}[/]")
    for name, tgt in result.targets.items():
        mark = "[green]met[/]" if tgt["met"] else "[red]missed[/]"
        console.print(f"target {name}: {tgt['value']:,} (goal {tgt['goal']}) {mark}")
    for note in result.notes:
        console.print(f"note: {note}")
    for plot in result.plots:
        console.print(f"plot: {plot}")


def write(result: Result, out: Path, machine_info: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result.scenario}.json"
    path.write_text(json.dumps({**asdict(result), "machine": machine_info}, indent=2, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- plots


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(path: Path, title: str, labels: list[str], values: list[float], ylabel: str,
         log: bool = False) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = ax.bar(labels, values, color="#4477aa")
    ax.bar_label(drawn, labels=[_fmt(v) for v in values], fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="x", labelsize=8)
    fig.autofmt_xdate(rotation=20)
    return _save(plt, fig, path)


Series = dict[str, tuple[list[float], list[float]]]


def lines(path: Path, title: str, xlabel: str, ylabel: str, series: Series, *, logx: bool = False,
          marker: str = "o") -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker=marker, markersize=3 if marker == "." else 5, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def cdf(path: Path, title: str, series: dict[str, list[float]], xlabel: str = "milliseconds") -> str:
    """Cumulative distribution of each series of times (ms)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        xs = sorted(values)
        if xs:
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=f"{name} (n={len(xs):,})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of messages")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
