"""Saying where an infrastructure error happened: the URL with its password masked, and the cause, in one
line (``database unavailable at postgresql+psycopg://app:***@db:5432/smspoint: connection refused``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***`` (database and Redis URLs alike)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: keep only what follows the credentials
        return url.rsplit("@", 1)[-1]


def redis_url(client: Any) -> str:
    """The masked URL a redis-py client connects to, rebuilt from its connection pool."""
    kw = client.connection_pool.connection_kwargs
    user = kw.get("username") or ""
    auth = f"{user}:***@" if kw.get("password") else (f"{user}@" if user else "")
    if kw.get("path"):
        return f"unix://{auth}{kw['path']}?db={kw.get('db', 0)}"
    scheme = "rediss" if "SSL" in client.connection_pool.connection_class.__name__ else "redis"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def cause(exc: BaseException, secret: str = "") -> str:
    """The first line of the innermost error's message (its class name when it has none), without
    ``secret``."""
    inner: BaseException = exc
    while getattr(inner, "orig", None) is not None:  # SQLAlchemy wraps the driver's error
        inner = inner.orig  # type: ignore[attr-defined]
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    text = lines[0] if lines else inner.__class__.__name__
    return text.replace(secret, "***") if secret else text
