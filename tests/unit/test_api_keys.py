"""API key text (dispatcher/httpapi/keys.py, pure): made keys parse back to their id and match only their
own hash; Bearer headers, scopes and rates parse or fail with the field named; problem mapping of errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.errors import (
    BulkValidationError,
    IdempotencyConflict,
    RowError,
    StorageUnavailable,
    ValidationError,
)
from dispatcher.httpapi.keys import (
    Scope,
    bearer_token,
    format_scopes,
    hash_token,
    key_id_of,
    make_key,
    matches,
    parse_rate,
    parse_scopes,
)
from dispatcher.httpapi.limits import is_json
from dispatcher.httpapi.problems import from_error


def test_made_key_round_trips() -> None:
    """A new key names its id, matches its stored hash, and the hash is not the key."""
    new = make_key()
    assert key_id_of(new.token) == new.id and matches(new.token, new.secret_hash)
    assert new.token not in new.secret_hash and len(new.secret_hash) == 64
    assert make_key().token != new.token


@given(st.text(max_size=120))
def test_arbitrary_text_is_not_a_key_of_ours(text: str) -> None:
    """Random text never matches a made key's hash, and parses to an id only if it has our exact shape."""
    new = make_key()
    assert not matches(text, new.secret_hash) or text == new.token
    kid = key_id_of(text)
    assert kid is None or (text.startswith("smsd_" + kid + "_") and len(text) == 5 + 16 + 1 + 43)


@given(st.integers(min_value=0, max_value=64))
def test_tampered_key_fails(pos: int) -> None:
    """Changing any one character of a key makes it fail the comparison."""
    new = make_key()
    pos = pos % len(new.token)
    swapped = "A" if new.token[pos] != "A" else "B"
    assert not matches(new.token[:pos] + swapped + new.token[pos + 1:], new.secret_hash)
    assert hash_token(new.token) == new.secret_hash


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None),
    (None, None), ("abc", None)])
def test_bearer_header(header: str | None, token: str | None) -> None:
    """Only the Bearer scheme yields a token."""
    assert bearer_token(header) == token


def test_scopes_and_rates() -> None:
    """Scopes parse from a comma list and format in a fixed order; rates take N or N/s, positive only."""
    assert parse_scopes(" read, send ") == frozenset(Scope)
    assert format_scopes(parse_scopes("read,send")) == "send,read"
    for bad in ("", "write", "send,admin"):
        with pytest.raises(ValidationError) as exc:
            parse_scopes(bad)
        assert exc.value.field == "scopes"
    assert parse_rate("20/s") == 20.0 and parse_rate("0.5") == 0.5
    for bad in ("0", "-1/s", "fast", "inf", "nan"):
        with pytest.raises(ValidationError) as err:
            parse_rate(bad)
        assert err.value.field == "rate"


@pytest.mark.parametrize(("content_type", "ok"), [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON", True),
    ("application/problem+json", True), ("text/plain", False), ("", False),
    ("application/x-www-form-urlencoded", False), ("multipart/form-data; boundary=x", False)])
def test_json_content_types(content_type: str, ok: bool) -> None:
    """JSON media types (with parameters) are accepted; anything else is a 415."""
    assert is_json(content_type) is ok


def test_errors_map_to_problems() -> None:
    """Each error of the tree becomes its status, with every field and bulk row listed."""
    bulk = from_error(BulkValidationError([RowError(1, "to", "bad"), RowError(4, "text", "empty")], 5))
    assert bulk.status == 422 and [e["index"] for e in bulk.errors] == [1, 4]
    assert from_error(ValidationError("to", "bad")).errors == [{"field": "to", "reason": "bad"}]
    assert from_error(IdempotencyConflict("k", "m1")).status == 409
    unavailable = from_error(StorageUnavailable("down"))
    assert unavailable.status == 503 and int(unavailable.headers["Retry-After"]) > 0
    assert unavailable.body("/v1/messages")["type"] == "urn:smsdispatch:problem:unavailable"
