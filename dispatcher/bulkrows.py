"""The per-row extras of a bulk enqueue (pure): an idempotency key and metadata per row, keys repeated
inside one request, and what a key that is already taken means for the row that gives it again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

FIELD = "idempotency_key"
#: The column's length (models.Message.idempotency_key).
LONGEST_KEY = 200


def check_key(value: object, field: str = FIELD) -> str:
    """The key itself, or ValidationError naming ``field``: 1-200 characters, no NUL, no lone surrogate."""
    if not isinstance(value, str) or not 0 < len(value) <= LONGEST_KEY:
        raise ValidationError(field, f"must be a string of 1-{LONGEST_KEY} characters")
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValidationError(field, "must not contain NUL or lone surrogates")
    return value


def extras(raw: Any) -> tuple[str | None, Mapping[str, Any] | None]:
    """(idempotency key, metadata) of one bulk row: given by mapping rows only, both optional."""
    if not isinstance(raw, Mapping):
        return None, None
    key, meta = raw.get(FIELD), raw.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise ValidationError("metadata", f"must be a mapping (a JSON object), got {type(meta).__name__}")
    return (None if key is None else check_key(key)), meta


def repeated(seen: dict[str, int], key: str, index: int) -> str | None:
    """Records the first row of each key in ``seen``; the reason to refuse row ``index`` when an earlier
    row of the same request gave ``key`` already, else None."""
    first = seen.setdefault(key, index)
    return None if first == index else f"repeats the key of row {first} in this request"


def conflict_reason(message_id: str) -> str:
    """Why a row whose key names another request's message is refused."""
    return f"was first used for message {message_id} with a different recipient or text"
