"""Named queries over the ``api_key`` table (the HTTP API's keys). The caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from ..httpapi.keys import Scope, parse_scopes
from ..models import API_KEY

K = API_KEY.c


@dataclass(frozen=True)
class ApiKeyRecord:
    """One stored key (its hash, never the key)."""

    id: str
    name: str
    secret_hash: str
    scopes: frozenset[Scope]
    rate_per_s: float | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(id=row["id"], name=row["name"], secret_hash=row["secret_hash"],
                        scopes=parse_scopes(row["scopes"]), rate_per_s=row["rate_per_s"],
                        created_at=row["created_at"], revoked_at=row["revoked_at"])


def insert_key(conn: Connection, *, key_id: str, name: str, secret_hash: str, scopes: str,
               rate_per_s: float | None, now: datetime) -> None:
    conn.execute(insert(API_KEY).values(id=key_id, name=name, secret_hash=secret_hash, scopes=scopes,
                                        rate_per_s=rate_per_s, created_at=now, revoked_at=None))


def get_key(conn: Connection, key_id: str) -> ApiKeyRecord | None:
    row = conn.execute(select(API_KEY).where(K.id == key_id)).first()
    return _record(row._mapping) if row else None


def list_keys(conn: Connection, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    q = select(API_KEY).order_by(K.created_at, K.id)
    if not include_revoked:
        q = q.where(K.revoked_at.is_(None))
    return [_record(r._mapping) for r in conn.execute(q)]


def active_matching(conn: Connection, id_or_name: str) -> list[ApiKeyRecord]:
    """The keys not yet revoked whose id or name is ``id_or_name``."""
    q = select(API_KEY).where(K.revoked_at.is_(None), or_(K.id == id_or_name, K.name == id_or_name))
    return [_record(r._mapping) for r in conn.execute(q)]


def revoke_key(conn: Connection, key_id: str, now: datetime) -> bool:
    """Revoke one key (at most once); True if this call revoked it."""
    done = conn.execute(update(API_KEY).where(K.id == key_id, K.revoked_at.is_(None)).values(revoked_at=now))
    return bool(done.rowcount)
