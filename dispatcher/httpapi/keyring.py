"""Creating, listing and revoking API keys (``smsdispatch api-key ...``)."""

from __future__ import annotations

import logging

from ..context import Context
from ..db import reading, transaction
from ..errors import ValidationError
from ..store import api_keys as keys_store
from ..store.api_keys import ApiKeyRecord
from .keys import Scope, format_scopes, make_key

log = logging.getLogger(__name__)


def create(ctx: Context, name: str, scopes: frozenset[Scope],
           rate_per_s: float | None) -> tuple[ApiKeyRecord, str]:
    """Store a new key; returns its record and the key itself (the only time it exists in clear)."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ValidationError("name", "must be 1-100 printable characters")
    new = make_key()
    with transaction(ctx.engine) as conn:
        keys_store.insert_key(conn, key_id=new.id, name=name, secret_hash=new.secret_hash,
                              scopes=format_scopes(scopes), rate_per_s=rate_per_s, now=ctx.clock())
        record = keys_store.get_key(conn, new.id)
    assert record is not None
    log.info("api key %s (%s) created with scopes %s", new.id, name, format_scopes(scopes))
    return record, new.token


def listed(ctx: Context, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    with reading(ctx.engine) as conn:
        return keys_store.list_keys(conn, include_revoked=include_revoked)


def revoke(ctx: Context, id_or_name: str) -> ApiKeyRecord:
    """Revoke the one active key with this id or name; ValidationError if none or several match."""
    with transaction(ctx.engine) as conn:
        found = keys_store.active_matching(conn, id_or_name)
        if not found:
            raise ValidationError("key", f"no active API key has the id or name {id_or_name!r}")
        if len(found) > 1:
            ids = ", ".join(k.id for k in found)
            raise ValidationError("key", f"{len(found)} active keys are named {id_or_name!r} ({ids}); "
                                         "revoke one by its id")
        keys_store.revoke_key(conn, found[0].id, ctx.clock())
        record = keys_store.get_key(conn, found[0].id)
    assert record is not None
    log.info("api key %s (%s) revoked", record.id, record.name)
    return record
