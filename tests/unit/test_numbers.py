"""Recipients: every accepted and refused form, the exact fast path, and masking for logs."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import InvalidNumber, ValidationError
from dispatcher.numbers import _FAST, NOT_INDIAN, _parse, mask, normalize

GATEWAY_FORM = "919954654365"


@pytest.mark.parametrize("raw", [
    "+91 99546 54365", "09954654365", "9954654365", "919954654365", "+919954654365",
    9954654365, 919954654365, "+91-99546-54365", "099546.54365", "(+91) 99546 54365",
    "+91 (995) 465-4365", "0091 99546 54365", "  9954654365  ", "99546/54365",
])
def test_accepted_forms(raw: str | int) -> None:
    """National, trunk-prefixed, country-coded, formatted and integer forms all give the gateway form."""
    assert normalize(raw) == GATEWAY_FORM


def test_fixed_line_or_mobile_is_accepted() -> None:
    """A number phonenumbers types FIXED_LINE_OR_MOBILE can receive SMS and is accepted."""
    number = phonenumbers.parse("7225516707", "IN")
    assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert normalize("7225516707") == "917225516707"


def test_other_default_region_still_accepts_plus_91() -> None:
    """With another default region, an explicit +91 number is still accepted (full path)."""
    assert normalize("+91 99546 54365", default_region="GB") == GATEWAY_FORM


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "number is empty"),
    ("   ", "number is empty"),
    ("-.()", "number is empty"),
    ("abc", "not a phone number"),
    ("99546 54365 ext 1", "not a phone number"),
    ("1-800-FLOWERS", "not a phone number"),
    ("+91", "not a phone number"),
    ("+999 1234567", "unknown country code"),
    (None, "not a phone number"),
    (-9954654365, "not a phone number"),
    (True, "not a phone number"),
    ("99546543", "wrong length: an Indian mobile number has 10 digits after +91 or 0, got 8"),
    ("995465436", "wrong length"),
    ("99546543651", "wrong length"),
    ("995465436512345678901", "wrong length: 21 digits"),
    ("3398012213", "not a valid number"),
    ("01123456789", "the number is a landline; only mobile numbers can receive SMS"),
    ("+91 11 2345 6789", "landline"),
    ("18001234567", "toll-free"),
    ("1404567890", "universal access number"),
    ("+1 202 555 0123", NOT_INDIAN),
    ("+44 7911 123456", NOT_INDIAN),
    ("9954654365", NOT_INDIAN),  # with default_region="US" below
])
def test_refused_forms(raw: object, reason: str) -> None:
    """Each refusal says why; numbers outside India name the +91-only rule."""
    region = "US" if raw == "9954654365" else "IN"
    with pytest.raises(InvalidNumber) as info:
        normalize(raw, region)  # type: ignore[arg-type]
    assert reason in info.value.reason
    assert isinstance(info.value, ValidationError) and info.value.field == "to"


def test_refusal_names_the_field_and_hides_the_digits() -> None:
    """The caller's field name is carried; the reason does not repeat the number."""
    with pytest.raises(InvalidNumber) as info:
        normalize("01123456789", field="recipients[3].to")
    assert info.value.field == "recipients[3].to"
    assert "23456789" not in str(info.value)


def test_not_indian_reason_is_exact() -> None:
    """The foreign-number reason is the documented sentence."""
    assert NOT_INDIAN == "only Indian (+91) mobile numbers can be sent through TheSMSPoint"


def test_mask_examples() -> None:
    """First 4 and last 4 of a gateway-form number are shown; short input shows less."""
    assert mask(GATEWAY_FORM) == "9199****4365"
    assert mask("9954654365") == "995****365"
    assert mask("123456789") == "12*****89"
    assert mask("12345") == "*****"
    assert mask("") == ""


def _full(text: str) -> str | None:
    try:
        return _parse(text, "IN", "to")
    except InvalidNumber:
        return None


def _fast(text: str) -> str | None:
    found = _FAST.match(text)
    return None if found is None else "91" + found["n"]


TEN_DIGITS = st.integers(0, 10**10 - 1).map("{:010d}".format)
MOBILE_LIKE = st.integers(6 * 10**9, 10**10 - 1).map(str)


@settings(max_examples=1000, deadline=None)
@given(TEN_DIGITS, st.sampled_from(["", "0", "91", "+91"]))
def test_fast_path_equals_full_path(digits: str, prefix: str) -> None:
    """On random 10 digits with any accepted prefix, the regex fast path decides exactly like phonenumbers."""
    assert _fast(prefix + digits) == _full(prefix + digits)


def test_fast_path_equals_full_path_on_every_4_digit_block() -> None:
    """A sweep over every leading 4-digit block (fixed tail) agrees too, covering all allocation ranges."""
    for block in range(1000, 10000):
        text = f"{block}{(block * 7919) % 1000000:06d}"
        assert _fast(text) == _full(text), text


def test_fast_path_takes_clean_input() -> None:
    """The common clean forms are decided by the fast path, not the full parser."""
    for raw in ("9954654365", "09954654365", "919954654365", "+919954654365"):
        assert _fast(raw) == GATEWAY_FORM


FORMATS = st.sampled_from(["{d}", "0{d}", "91{d}", "+91{d}", "+91 {a} {b}", "0{a}-{b}", "({a}) {b}"])


@settings(max_examples=500, deadline=None)
@given(MOBILE_LIKE, FORMATS)
def test_normalize_is_idempotent(digits: str, form: str) -> None:
    """Normalising the gateway form gives it back, and every format of one number gives the same result."""
    raw = form.format(d=digits, a=digits[:5], b=digits[5:])
    try:
        out = normalize(raw)
    except InvalidNumber:
        with pytest.raises(InvalidNumber):
            normalize(digits)
        return
    assert out == "91" + digits == normalize(out) == normalize(int(out))


@given(st.text(alphabet="0123456789+- ", max_size=30))
def test_mask_never_reveals_the_middle(number: str) -> None:
    """At most 4 characters at each end are shown, at least min(len, 4) are hidden, length is kept."""
    text = number.strip()
    masked = mask(number)
    assert len(masked) == len(text)
    shown = [i for i, c in enumerate(masked) if c != "*"]
    assert len(shown) <= 8
    assert all(i < 4 or i >= len(text) - 4 for i in shown)
    assert masked.count("*") >= min(len(text), 4)
    assert all(masked[i] == text[i] for i in shown)
