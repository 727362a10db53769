"""URL and call-back number whitelists (DLT, since October 2024): pure rules, no I/O.

Operators block messages whose links (and, next, call-back numbers) are not whitelisted for the sender.
A URL entry is a prefix without its scheme (``smspoint.in`` or ``smspoint.in/track``): a URL is listed
when, scheme and ``www.`` aside and the host compared case-insensitively, it starts with an entry that
ends at a boundary (``/``, ``?``, ``#``, ``:`` or the end), so ``smspoint.in`` does not list
``smspoint.in.example.com``. A call-back number entry is compared by its digits, without a leading ``+91``
/ ``91`` (before ten digits or a toll-free number) or trunk ``0``.

``typed`` mode checks the values of ``{#url#}``, ``{#urlott#}`` and ``{#cbn#}`` variables; ``strict`` mode
also checks every URL and phone number found anywhere in the text (the fixed text too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import LinkNotWhitelisted
from .templates import CBN_KINDS, URL_KINDS, Slot

Mode = Literal["off", "typed", "strict"]
Kind = Literal["url", "cbn"]

#: URLs anywhere in a text (strict mode): with a scheme, starting www., or host.tld/path.
_FIND_URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/\S*", re.I)
#: Phone numbers anywhere in a text (strict mode): Indian mobiles, 1800 toll-free, 0-prefixed landlines.
_FIND_PHONE = re.compile(r"(?<![\w+])(?:(?:\+91|91)[ -]?)?[6-9][0-9]{4}[ -]?[0-9]{5}(?!\w)"
                         r"|(?<![\w+])1800[ -]?[0-9]{3}[ -]?[0-9]{3,4}(?!\w)"
                         r"|(?<![\w+])0[1-9][0-9]{1,3}[ -]?[0-9]{6,8}(?!\w)")
_TRAILING = ".,;:!?)]}'\">"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


#: India's toll-free prefixes (11-digit numbers: 1800 123 4567).
TOLL_FREE = ("1800", "1860")


def url_key(url: str) -> str:
    """A URL or entry as compared: no scheme, no leading ``www.``, host lower-cased."""
    rest = _SCHEME.sub("", url.strip())
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    host, path = rest[:cut].lower(), rest[cut:]
    return (host[4:] if host.startswith("www.") else host) + path


def cbn_key(number: str) -> str:
    """A call-back number as compared: its digits, without +91 / 91 (before ten digits, or before a
    1800 / 1860 toll-free number) or a trunk 0."""
    digits = "".join(c for c in number if c.isdigit())
    if digits.startswith("91") and (len(digits) == 12 or (len(digits) == 13 and digits[2:6] in TOLL_FREE)):
        digits = digits[2:]
    return digits.lstrip("0") or digits


def url_listed(url: str, entries: Iterable[str]) -> bool:
    """Whether ``url`` starts with one of the (url_key'd) entries at a boundary."""
    key = url_key(url)
    for entry in entries:
        if key.startswith(entry) and (len(key) == len(entry) or entry.endswith("/")
                                      or key[len(entry)] in "/?#:"):
            return True
    return False


def find_urls(text: str) -> list[tuple[int, str]]:
    """(offset, url) of every URL-looking token in ``text``, trailing punctuation removed."""
    return [(m.start(), m.group().rstrip(_TRAILING)) for m in _FIND_URL.finditer(text)]


def find_phones(text: str) -> list[tuple[int, str]]:
    """(offset, number) of every phone-number-looking token in ``text``."""
    return [(m.start(), m.group()) for m in _FIND_PHONE.finditer(text)]


def parse_whitelist(text: str, source: str = "whitelist") -> tuple[list[str], list[str]]:
    """(urls, call-back numbers) from a whitelist file: one entry a line, ``url ENTRY`` or ``cbn ENTRY``
    (a bare entry of digits, spaces, + and - is a call-back number, any other a URL); lines starting
    with # are comments.
    Raises ValueError naming the line for anything else."""
    urls: list[str] = []
    cbns: list[str] = []
    for n, (kind, entry) in whitelist_lines(text):
        try:
            check_entry(kind, entry)
        except ValueError as exc:
            raise ValueError(f"{source} line {n}: {exc}") from None
        (urls if kind == "url" else cbns).append(entry)
    return urls, cbns


def whitelist_lines(text: str) -> list[tuple[int, tuple[Kind, str]]]:
    """(line number, (kind, entry)) of each entry line of a whitelist file, unchecked: ``url ENTRY`` or
    ``cbn ENTRY``, or a bare entry (digits, spaces, + and -: a call-back number; anything else a URL)."""
    out: list[tuple[int, tuple[Kind, str]]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, entry = line.partition(" ")
        kind: Kind
        if word in ("url", "cbn") and entry.strip():
            kind = "url" if word == "url" else "cbn"
        else:
            kind, entry = ("cbn" if re.fullmatch(r"[0-9 +-]+", line) else "url"), line
        out.append((n, (kind, entry.strip())))
    return out


#: Longest whitelist entry (the database column's size).
ENTRY_MAX = 200


def check_entry(kind: str, entry: str) -> str:
    """The key ``entry`` is compared by (url_key / cbn_key); ValueError saying why it cannot be a ``kind``
    entry: a URL prefix such as example.in/path, a call-back number of 3-15 digits."""
    if kind not in ("url", "cbn"):
        raise ValueError(f"{kind!r} is not a kind of entry (url or cbn)")
    if not entry or len(entry) > ENTRY_MAX or not entry.isprintable():
        raise ValueError(f"{entry!r} is not an entry (1-{ENTRY_MAX} printable characters)")
    if kind == "cbn":
        key = cbn_key(entry)
        if not 3 <= len(key) <= 15:
            raise ValueError(f"{entry!r} is not a call-back number (3-15 digits)")
        return key
    if any(c.isspace() for c in entry) or "." not in url_key(entry).split("/")[0]:
        raise ValueError(f"{entry!r} is not a URL prefix such as example.in/path")
    return url_key(entry)


@dataclass(frozen=True)
class LinkRules:
    """The account's whitelists and how strictly they apply."""

    urls: frozenset[str] = frozenset()  #: url_key'd entries
    cbns: frozenset[str] = frozenset()  #: cbn_key'd entries
    mode: Mode = "typed"

    @classmethod
    def build(cls, urls: Iterable[str], cbns: Iterable[str], mode: Mode = "typed") -> LinkRules:
        """Rules from raw entries (blank ones ignored)."""
        return cls(frozenset(url_key(u) for u in urls if u.strip()),
                   frozenset(cbn_key(c) for c in cbns if cbn_key(c)), mode)

    def check(self, text: str, slots: Sequence[Slot] = ()) -> None:
        """Raise LinkNotWhitelisted for the first unlisted URL or call-back number (typed values first)."""
        if self.mode == "off":
            return
        for slot in slots:
            if slot.kind in URL_KINDS and not url_listed(slot.value, self.urls):
                raise LinkNotWhitelisted(self._why(f"variable {slot.index} {{#{slot.kind}#}}", slot.start,
                                                   slot.value, "URL", self.urls))
            if slot.kind in CBN_KINDS and cbn_key(slot.value) not in self.cbns:
                raise LinkNotWhitelisted(self._why(f"variable {slot.index} {{#{slot.kind}#}}", slot.start,
                                                   slot.value, "call-back number", self.cbns))
        if self.mode != "strict":
            return
        for at, url in find_urls(text):
            if not url_listed(url, self.urls):
                raise LinkNotWhitelisted(self._why("URL", at, url, "URL", self.urls, strict=True))
        for at, number in find_phones(text):
            if cbn_key(number) not in self.cbns:
                raise LinkNotWhitelisted(self._why("phone number", at, number, "call-back number", self.cbns,
                                                   strict=True))

    @staticmethod
    def _why(what: str, at: int, value: str, listname: str, entries: frozenset[str], *,
             strict: bool = False) -> str:
        empty = (" (the list is empty: 'smsdispatch whitelist add', or set DLT_URL_WHITELIST, "
                 "DLT_CBN_WHITELIST or DLT_WHITELIST_FILE)") if not entries else ""
        mode = " (DLT_LINKS=strict)" if strict else ""
        shown = json.dumps(value, ensure_ascii=False)
        return f"{what} at character {at + 1}: {shown} is not on the {listname} whitelist{mode}{empty}"
