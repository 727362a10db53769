"""API keys as text (pure): making one, reading a presented one, hashing, scopes and rates.

A key reads ``smsd_<id>_<secret>``: ``id`` (16 hex characters) is public and finds the stored row; the
whole key has 256 random bits, so one SHA-256 of it is a safe thing to store (no slow hash needed: there
is nothing to guess). Hashes are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from ..errors import ValidationError

PREFIX = "smsd_"
ID_HEX = 16
_SHAPE = re.compile(rf"^{PREFIX}([0-9a-f]{{{ID_HEX}}})_([A-Za-z0-9_-]{{43}})$")


class Scope(StrEnum):
    """What a key may do: ``send`` (POST messages) and ``read`` (status, balance, catalogue)."""

    SEND = "send"
    READ = "read"


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: ``token`` is shown once and never stored."""

    id: str
    token: str
    secret_hash: str


def make_key() -> NewKey:
    """A new random key and the hash to store for it."""
    key_id = secrets.token_hex(ID_HEX // 2)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, token, hash_token(token))


def hash_token(token: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The public id of a well-formed key, or None for anything that cannot be one of ours."""
    match = _SHAPE.match(token)
    return match.group(1) if match else None


def matches(token: str, secret_hash: str) -> bool:
    """Whether ``token`` hashes to ``secret_hash`` (constant time)."""
    return hmac.compare_digest(hash_token(token), secret_hash)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def parse_scopes(text: str) -> frozenset[Scope]:
    """``"send,read"`` -> {Scope.SEND, Scope.READ}; at least one, each a known scope."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise ValidationError("scopes", "give at least one of: send, read")
    try:
        return frozenset(Scope(name) for name in names)
    except ValueError as exc:
        raise ValidationError("scopes", f"unknown scope in {text!r}; choose from: send, read") from exc


def format_scopes(scopes: frozenset[Scope]) -> str:
    """The stored form of scopes, in a fixed order."""
    return ",".join(s.value for s in Scope if s in scopes)


def parse_rate(text: str) -> float:
    """``"20/s"`` or ``"20"`` -> 20.0 requests per second (> 0)."""
    raw = text.strip().lower().removesuffix("/s").strip()
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValidationError("rate", f"{text!r} is not a rate such as 20/s") from exc
    if not value > 0 or value == float("inf"):
        raise ValidationError("rate", f"must be a positive number of requests per second, got {text!r}")
    return value
