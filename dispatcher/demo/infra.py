"""The demo's infrastructure: a Redis (the configured one, or a private ``redis-server``) and the gateway
(the simulator, or the URL in SMSPOINT_BASE_URL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from ..errors import ConfigurationError
from .procs import Child, Children, free_port

#: Simulator lifecycle for the demo: final statuses within seconds instead of hours.
SIM_LIFECYCLE = ("--delivered-after-s", "2", "--undelivered-after-s", "3", "--pending-after-s", "1",
                 "--pending-hold-s", "6", "--jitter", "0.5")
SIM_ANNOUNCE = r"base URL: (\S+)"


def redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError):
        return False


def _as_root() -> list[str] | None:
    """How to run a command as root: [] (we are root), ['sudo', '-n'] (passwordless sudo), or None."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


INSTALL_HINT = ("Redis is not reachable at REDIS_URL ({url}) and redis-server is not installed. Install it "
                "(Debian/Ubuntu: sudo apt-get install redis-server; Fedora: sudo dnf install redis; macOS: "
                "brew install redis) or set REDIS_URL to a running Redis, then run 'make demo' again.")


def ensure_redis_server(logs: Path, say: Callable[[str], None], url: str) -> str:
    """The path of redis-server, installing it through apt-get when we may; ConfigurationError if not."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)), None)
    if found:
        return found
    root = _as_root()
    if root is None or not shutil.which("apt-get"):
        raise ConfigurationError(INSTALL_HINT.format(url=url))
    say("redis-server is not installed: installing it with apt-get (this takes a minute) ...")
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(logs / "apt.log", "wb") as fh:
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"]):
            subprocess.run(root + cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    found = shutil.which("redis-server")
    if not found:
        raise ConfigurationError(f"apt-get could not install redis-server (see {logs / 'apt.log'}); "
                                 + INSTALL_HINT.format(url=url))
    return found


def start_private_redis(children: Children, run_dir: Path, binary: str) -> tuple[str, Child]:
    """A redis-server on a free loopback port, AOF on, data in run_dir/redis; returns (url, child)."""
    data = run_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--maxmemory-policy", "noeviction"]
    child = children.start("redis", argv, dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    child.wait_for(lambda: redis_answers(url), 20.0)
    return url, child


@dataclass
class Gateway:
    base_url: str
    api_key: str
    simulator: bool
    started: bool  #: we started the simulator (and chose its lifecycle)


def is_simulator(base_url: str) -> bool:
    """True when the URL is a simulator (it answers its control API's health check)."""
    root = base_url.rstrip("/").removesuffix("/api/v1")
    try:
        return requests.get(f"{root}/_sim/health", timeout=2).ok
    except requests.RequestException:
        return False


def start_simulator(children: Children, api_key: str, variants: str = "") -> Gateway:
    """The gateway simulator on a free loopback port, with the demo's short lifecycle (and ``variants``,
    ``name=value,...``, if given)."""
    argv = [sys.executable, "-m", "dispatcher.simulator", "--host", "127.0.0.1", "--port", "0",
            "--api-key", api_key, "--seed", "2024", *SIM_LIFECYCLE,
            *(["--variants", variants] if variants else [])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = children.start("simulator", argv, env)
    base_url = child.wait_for(SIM_ANNOUNCE, 30.0)
    child.wait_for(lambda: is_simulator(base_url), 15.0)
    return Gateway(base_url, api_key, simulator=True, started=True)


def delete_keys(url: str, prefix: str) -> int:
    """Remove every key under ``prefix`` (the demo's, on a Redis it shares with others)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        return len(keys)
    finally:
        client.close()
