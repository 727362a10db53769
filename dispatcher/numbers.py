"""Recipients: normalising Indian mobile numbers to the gateway's form and masking them for logs (pure)."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from dispatcher.errors import InvalidNumber

#: The only country TheSMSPoint delivers to.
COUNTRY_CODE = 91
NOT_INDIAN = "only Indian (+91) mobile numbers can be sent through TheSMSPoint"

_ACCEPTED_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a universal access number",
}
#: Characters people write numbers with; anything else (letters, "ext.", "#") is refused outright.
_PUNCTUATION = re.compile(r"[\s\-.()/]+")
_ALLOWED = re.compile(r"\+?\d+", re.ASCII)


def _pattern_for_10_digits(desc: phonenumbers.PhoneNumberDesc | None) -> str | None:
    """The desc's pattern if phonenumbers would test a 10-digit national number against it, else None."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and 10 not in desc.possible_length:
        return None
    return desc.national_number_pattern


def _fast_pattern() -> re.Pattern[str]:
    """An exact regex for a clean IN number that phonenumbers would accept as MOBILE/FIXED_LINE_OR_MOBILE.

    Built from phonenumbers' own metadata, mirroring ``_number_type_helper``: the general pattern must
    match, no type checked before mobile may match, and the mobile pattern must match. A bare "91"
    prefix also requires that "91"+number is not itself a national number (else phonenumbers keeps it).
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region("IN")
    assert meta is not None
    general = _pattern_for_10_digits(meta.general_desc)
    mobile = _pattern_for_10_digits(meta.mobile)
    assert general is not None and mobile is not None
    earlier = [_pattern_for_10_digits(d) for d in (meta.premium_rate, meta.toll_free, meta.shared_cost,
               meta.voip, meta.personal_number, meta.pager, meta.uan, meta.voicemail)]
    national = (f"(?=(?:{general})\\Z)" + "".join(f"(?!(?:{p})\\Z)" for p in earlier if p)
                + f"(?:{mobile})")
    return re.compile(f"(?:\\+91|(?!(?:{general})\\Z)91|0)?(?P<n>{national})\\Z", re.ASCII)


_FAST = _fast_pattern()


def normalize(raw: str | int, default_region: str = "IN", *, field: str = "to") -> str:
    """Return the gateway form of an Indian mobile number ('919954654365'); raise InvalidNumber saying why."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        raw = str(raw)
    if not isinstance(raw, str):
        raise InvalidNumber("not a phone number: expected text or a non-negative integer", field=field)
    if default_region == "IN":
        fast = _FAST.match(raw.strip())
        if fast is not None:
            return "91" + fast["n"]
    return _slow(raw, default_region, field)


def _slow(raw: str, default_region: str, field: str) -> str:
    """Formatted or unusual input: strip punctuation, retry the fast path, else parse in full."""
    cleaned = _PUNCTUATION.sub("", raw)
    if not cleaned:
        raise InvalidNumber("number is empty", field=field)
    if _ALLOWED.fullmatch(cleaned) is None:
        raise InvalidNumber("not a phone number: only digits, a leading +, spaces and - . ( ) / are allowed",
                            field=field)
    if default_region == "IN" and (fast := _FAST.match(cleaned)) is not None:
        return "91" + fast["n"]  # formatted input ('+91 99546-54365'): exact, as in normalize()
    return _parse(cleaned, default_region, field)


def _parse(cleaned: str, default_region: str, field: str) -> str:
    """The full path: phonenumbers parse, validity and type. Reasons never repeat the digits."""
    try:
        number = phonenumbers.parse(cleaned, default_region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidNumber(f"not a phone number: unknown country code; {NOT_INDIAN}",
                                field=field) from exc
        if exc.error_type == NumberParseException.NOT_A_NUMBER:
            raise InvalidNumber("not a phone number", field=field) from exc
        digits = len(cleaned.lstrip("+"))
        raise InvalidNumber(f"wrong length: {digits} digits is too short or too long for a phone number",
                            field=field) from exc
    if number.country_code != COUNTRY_CODE:
        raise InvalidNumber(f"{NOT_INDIAN}; got country code +{number.country_code}", field=field)
    national = phonenumbers.national_significant_number(number)
    if not phonenumbers.is_valid_number(number):
        if len(national) != 10:
            raise InvalidNumber(f"wrong length: an Indian mobile number has 10 digits after +91 or 0, "
                                f"got {len(national)}", field=field)
        raise InvalidNumber("not a valid number: not in an allocated Indian number range", field=field)
    kind = phonenumbers.number_type(number)
    if kind not in _ACCEPTED_TYPES:
        what = _TYPE_NAMES.get(kind, "not a mobile number")
        raise InvalidNumber(f"the number is {what}; only mobile numbers can receive SMS", field=field)
    return f"{COUNTRY_CODE}{national}"


def mask(number: str) -> str:
    """Mask a number for logs: '919954654365' -> '9199****4365'. Never shows more than 4+4 characters.

    Shorter inputs show fewer: at most (len - 4) // 2 characters at each end, so at least 4 (or all,
    when shorter than 4) are always hidden.
    """
    text = str(number).strip()
    keep = max(0, min(4, (len(text) - 4) // 2))
    if keep == 0:
        return "*" * len(text)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]


#: The digits of an Indian mobile number after the country code.
NATIONAL_DIGITS = 10


def national_key(number: str | int | None) -> str:
    """The ten national digits a gateway answer may write in any form: '919954654365', '9954654365',
    '+91 99546-54365' and 919954654365 all give '9954654365' (shorter inputs give all their digits)."""
    text = str(number) if number is not None else ""
    if not text.isdigit():  # the common case (digits only) skips the filter
        text = _NON_DIGITS.sub("", text)
    return text[-NATIONAL_DIGITS:]


_NON_DIGITS = re.compile(r"\D")
