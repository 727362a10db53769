"""Measuring a message: encoding, parts and credits, as the gateway and the networks count them (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from dispatcher.errors import InvalidText

#: The gateway sends at most this many concatenated parts; longer texts are refused (or truncated).
MAX_PARTS = 5
#: TheSMSPoint documents that longer texts are truncated to this many characters.
GATEWAY_MAX_CHARS = 765

#: GSM 03.38 default alphabet, in table order (0x00-0x7F), without 0x1B (the escape to the extension table).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 default extension table (form feed, ^ { } \ [ ~ ] | €); each costs 2 septets (ESC + char).
GSM7_EXTENSION = "\x0c^{}\\[~]|€"

SINGLE_GSM, MULTI_GSM = 160, 153  #: septets in a single part / in each concatenated part
SINGLE_UCS2, MULTI_UCS2 = 70, 67  #: UTF-16 code units in a single part / in each concatenated part

_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)
_GSM = _BASIC | _EXTENSION
#: For ASCII text: anything outside the GSM-7 basic table (controls, ` [ \ ] ^ { | } ~, DEL).
_ASCII_NOT_BASIC = re.compile("[^\n\r\x20-\x5a\x5f\x61-\x7a]")
#: C0 controls other than \n, \r and form feed (a GSM extension character), and lone surrogates.
_FORBIDDEN = re.compile("[\x00-\x09\x0b\x0e-\x1f\ud800-\udfff]")

#: Look-alikes that force UCS-2, mapped to GSM-7 text (Twilio/Notify style "smart encoding").
SMART_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("\u00ab\u00bb\u201c\u201d\u201e\u201f\u2033\u02ba\u02dd\u02ee\u275d\u275e\u301d\u301e\uff02",
                    '"'),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u02b9\u02bc\u02c8\u0060\u00b4\uff07", "'"),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
                    "\u205f\u3000", " "),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
    "\u2026": "...", "\u2039": "<", "\u203a": ">", "\u2022": "-", "\u2044": "/", "\u2215": "/",
    "\u00d7": "x", "\u02c6": "^", "\u02dc": "~", "\uff0c": ",", "\uff0e": ".", "\uff1a": ":",
    "\uff1b": ";", "\uff01": "!", "\uff1f": "?", "\uff08": "(", "\uff09": ")", "\u2126": "Ω",
}
_SMART_TABLE = str.maketrans(SMART_REPLACEMENTS)
_SMART_CHARS = re.compile("[" + re.escape("".join(SMART_REPLACEMENTS)) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Measurement:
    """How a text will be sent and what it costs."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int  #: GSM-7 septets (extension characters 2) or UTF-16 code units (astral characters 2)
    parts: int  #: SMS parts on the air
    credits: int  #: what the gateway charges (one per part)
    is_unicode: bool  #: encoding == "UCS-2" (the gateway's is_unicode flag)
    chars: int  #: len(text) after any truncation
    truncated: bool
    smart_credits: int | None  #: credits after smart_encode(), only when fewer than `credits`


def _plain(n: int) -> Measurement:
    parts = 1 if n <= SINGLE_GSM else -(-n // MULTI_GSM)
    return Measurement("GSM-7", n, parts, parts, False, n, False, None)


#: Measurements of basic-GSM-7 texts depend only on their length; shared (they are immutable).
_PLAIN = tuple(_plain(n) for n in range(MAX_PARTS * MULTI_GSM + 1))


def measure(text: str, *, truncate: bool = False) -> Measurement:
    """Measure `text`; raise InvalidText when it is empty, has control characters or needs > 5 parts."""
    if not isinstance(text, str):
        raise InvalidText(f"text must be a string, got {type(text).__name__}")
    if not text or text.isspace():
        raise InvalidText("text is empty or only whitespace")
    if (_ASCII_NOT_BASIC.search(text) is None) if text.isascii() else _BASIC.issuperset(text):
        if len(text) < len(_PLAIN):  # fast path: basic GSM-7 only (no escapes, no controls), <= 5 parts
            return _PLAIN[len(text)]
    else:
        _check_characters(text)
    return _measure(text, truncate)


@lru_cache(maxsize=4096)
def _measure(text: str, truncate: bool) -> Measurement:
    """The general case of measure(), on a checked text; cached since bulk sends repeat texts."""
    n, truncated = len(text), False
    if truncate:
        cut = truncate_text(text)
        truncated = len(cut) != n
        if truncated and cut.isspace():
            raise InvalidText(f"text is only whitespace once truncated to {len(cut)} characters")
        text = cut
    encoding, units, parts = _count(text)
    if parts > MAX_PARTS:
        raise InvalidText(f"text needs {parts} parts ({units} {_unit_name(encoding)}, {encoding}); "
                          f"the gateway sends at most {MAX_PARTS}: shorten it")
    smart = None
    if encoding == "UCS-2" and _SMART_CHARS.search(text) is not None:
        encoded = smart_encode(text)
        if encoded != text and encoded and not encoded.isspace():
            smart_parts = _count(encoded)[2]
            smart = smart_parts if smart_parts < parts else None
    return Measurement(encoding, units, parts, parts, encoding == "UCS-2", len(text), truncated, smart)


def split_parts(text: str) -> list[str]:
    """The parts `text` is sent as (no escape or surrogate pair is split). Does not enforce MAX_PARTS."""
    if not text or text.isspace():
        raise InvalidText("text is empty or only whitespace")
    _check_characters(text)
    encoding, _units, parts = _count(text)
    if parts == 1:
        return [text]
    gsm = encoding == "GSM-7"
    return _pack(text, MULTI_GSM if gsm else MULTI_UCS2, gsm)


def smart_encode(text: str) -> str:
    """Replace look-alikes (curly quotes, long dashes, ellipsis, odd spaces...) with GSM-7 equivalents."""
    return text.translate(_SMART_TABLE)


def truncate_text(text: str) -> str:
    """Cut `text` as the gateway documents: to 765 characters (code points, so never inside a surrogate pair).

    Our choice beyond the gateway's rule: the result is the longest prefix of at most 765 characters
    that still fits in MAX_PARTS parts. For UCS-2 text that means at most 5 x 67 = 335 UTF-16 units; for
    GSM-7 text with extension characters, 5 x 153 septets without splitting an escape pair. If a
    longer all-GSM-7 prefix exists (the first non-GSM character comes late), that prefix wins.
    """
    text = text[:GATEWAY_MAX_CHARS]
    if _count(text)[2] <= MAX_PARTS:
        return text
    return text[:max(_fitting_prefix(text, gsm=True), _fitting_prefix(text, gsm=False))]


def _check_characters(text: str) -> None:
    """Refuse C0 control characters (except \\n, \\r and form feed) and lone surrogates."""
    bad = _FORBIDDEN.search(text)
    if bad is None:
        return
    char, where = bad.group(), bad.start() + 1
    if "\ud800" <= char <= "\udfff":
        raise InvalidText(f"lone surrogate U+{ord(char):04X} at character {where} cannot be encoded")
    raise InvalidText(f"control character {char!r} (U+{ord(char):04X}) at character {where} is not "
                      "allowed; only newline, carriage return and form feed are")


def _count(text: str) -> tuple[Literal["GSM-7", "UCS-2"], int, int]:
    """Encoding, units and parts of an already checked text."""
    n = len(text)
    if _GSM.issuperset(text):
        units = n + sum(map(text.count, GSM7_EXTENSION))
        if units <= SINGLE_GSM:
            return "GSM-7", units, 1
        if units == n:
            return "GSM-7", units, -(-n // MULTI_GSM)
        return "GSM-7", units, len(_pack(text, MULTI_GSM, True))
    units = n if _ASTRAL.search(text) is None else len(text.encode("utf-16-le")) // 2
    if units <= SINGLE_UCS2:
        return "UCS-2", units, 1
    if units == n:
        return "UCS-2", units, -(-n // MULTI_UCS2)
    return "UCS-2", units, len(_pack(text, MULTI_UCS2, False))


def _weight(char: str, gsm: bool) -> int:
    """Units one character takes: 2 for a GSM escape or a UTF-16 surrogate pair, else 1."""
    return 2 if (char in _EXTENSION if gsm else char > "\uffff") else 1


def _pack(text: str, limit: int, gsm: bool) -> list[str]:
    """Greedily fill parts of `limit` units without splitting a 2-unit character."""
    parts: list[str] = []
    start = used = 0
    for i, char in enumerate(text):
        w = _weight(char, gsm)
        if used + w > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += w
    parts.append(text[start:])
    return parts


def _fitting_prefix(text: str, *, gsm: bool) -> int:
    """Length of the longest prefix that fits MAX_PARTS concatenated parts (GSM-7: all-GSM prefix only)."""
    limit = MULTI_GSM if gsm else MULTI_UCS2
    parts, used = 1, 0
    for i, char in enumerate(text):
        if gsm and char not in _GSM:
            return i
        w = _weight(char, gsm)
        if used + w > limit:
            parts, used = parts + 1, 0
            if parts > MAX_PARTS:
                return i
        used += w
    return len(text)


def _unit_name(encoding: str) -> str:
    return "septets" if encoding == "GSM-7" else "UTF-16 units"


def first_ucs2(text: str) -> tuple[int, str] | None:
    """The first character that forces UCS-2: (its 1-based position, the character), or None (GSM-7)."""
    for i, char in enumerate(text, 1):
        if char not in _GSM:
            return i, char
    return None
