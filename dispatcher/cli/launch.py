"""Command lines for the long-running processes (workers, beat, Flower), shared by the CLI and the demo.

They run ``celery -A workers.app ...`` as a program: the ``dispatcher`` package never imports ``workers``.
The queue names per role mirror ``workers.queues.ROLE_QUEUES`` (a test asserts they agree).
"""

from __future__ import annotations

import ipaddress
import sys
import tempfile
from pathlib import Path

from ..channels import Channel
from ..errors import ConfigurationError

#: Which Celery queues each worker role consumes (mirrors workers.queues.ROLE_QUEUES).
ROLE_QUEUES: dict[str, tuple[str, ...]] = {
    "otp": (Channel.OTP.value,),
    "bulk": (Channel.TRANSACTIONAL.value, Channel.PROMOTIONAL.value, "sync", "maintenance"),
    "all": (Channel.OTP.value, Channel.TRANSACTIONAL.value, Channel.PROMOTIONAL.value, "sync", "maintenance"),
}
CELERY_APP = "workers.app"


def celery(*args: str) -> list[str]:
    """``python -m celery -A workers.app ...`` with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, *args]


def worker_argv(role: str, concurrency: int | None = None, name: str | None = None, loglevel: str = "INFO",
                extra: tuple[str, ...] = ()) -> list[str]:
    if role not in ROLE_QUEUES:
        raise ConfigurationError(f"unknown worker role {role!r}; expected one of {', '.join(ROLE_QUEUES)}")
    argv = ["worker", "-Q", ",".join(ROLE_QUEUES[role]), "-n", name or f"{role}@%h", "-l", loglevel]
    if concurrency:
        argv += ["-c", str(concurrency)]
    return celery(*argv, *extra)


#: Where beat keeps its schedule when not told (Celery's own default is the working directory).
DEFAULT_BEAT_SCHEDULE = str(Path(tempfile.gettempdir()) / "smspoint-celerybeat-schedule")


def beat_argv(schedule: str | None = None, loglevel: str = "INFO") -> list[str]:
    return celery("beat", "-l", loglevel, "-s", schedule or DEFAULT_BEAT_SCHEDULE)


def is_loopback(address: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; an empty address means every interface (False)."""
    if address.strip().lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def flower_argv(address: str, port: int) -> list[str]:
    return celery("flower", f"--address={address}", f"--port={port}")


def flower_env(address: str, user: str, password: str) -> dict[str, str]:
    """The basic-auth environment for Flower (kept off the command line, where ``ps`` would show it).

    Refuses a non-loopback address without credentials: Flower can revoke tasks and shut workers down.
    """
    if bool(user) != bool(password):
        raise ConfigurationError("set both FLOWER_USER and FLOWER_PASSWORD (or neither, on loopback only)")
    if not user:
        if not is_loopback(address):
            raise ConfigurationError(f"refusing to start Flower on {address or 'every interface'} without "
                                     "basic auth: set FLOWER_USER and FLOWER_PASSWORD, or use --address "
                                     "127.0.0.1")
        return {}
    if ":" in user or "," in user + password:
        raise ConfigurationError("FLOWER_USER may not contain ':' and neither may contain ','")
    return {"FLOWER_BASIC_AUTH": f"{user}:{password}"}
