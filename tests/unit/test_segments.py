"""Measuring texts: GSM-7 / UCS-2 units, parts at every boundary, credits, smart encoding, truncation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import InvalidText, ValidationError
from dispatcher.segments import (
    GATEWAY_MAX_CHARS,
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_PARTS,
    SMART_REPLACEMENTS,
    measure,
    smart_encode,
    split_parts,
    truncate_text,
)

GSM = set(GSM7_BASIC) | set(GSM7_EXTENSION)
HINDI = "क"  # any BMP character outside GSM-7
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 units


def ref_units(text: str) -> int:
    """Units counted independently of the module."""
    if set(text) <= GSM:
        return len(text) + sum(c in GSM7_EXTENSION for c in text)
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------- tables


def test_gsm_tables_are_the_03_38_default_alphabet() -> None:
    """The basic table has 127 distinct characters (128 minus ESC) and the extension table 10."""
    assert len(GSM7_BASIC) == len(set(GSM7_BASIC)) == 127
    assert set(GSM7_EXTENSION) == set("\x0c^{}\\[~]|€")
    assert not set(GSM7_BASIC) & set(GSM7_EXTENSION)
    assert GSM7_BASIC[0] == "@" and GSM7_BASIC[0x24 - 1] == "¤" and GSM7_BASIC[-1] == "à"
    assert {"£", "¥", "è", "Δ", "Ξ", "§", "¡", "¿", "ß", "\n", "\r"} <= set(GSM7_BASIC)
    assert not {"`", "\x1b", "á", "ç"} & GSM


def test_every_ascii_character_is_classified_like_the_table() -> None:
    """The ASCII fast path agrees with the tables on every ASCII printable character."""
    for code in range(0x20, 0x7F):
        char = chr(code)
        m = measure("a" + char)
        expected = "GSM-7" if char in GSM else "UCS-2"
        assert m.encoding == expected, char
        assert m.units == ref_units("a" + char), char


# ----------------------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(("length", "parts"), [
    (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (612, 4), (613, 5), (765, 5),
])
def test_gsm_boundaries(length: int, parts: int) -> None:
    """Plain GSM-7 texts: 160 in one part, then 153 per part, matching the gateway's credit table."""
    m = measure("a" * length)
    assert (m.encoding, m.units, m.parts, m.credits, m.chars) == ("GSM-7", length, parts, parts, length)
    assert not m.is_unicode and not m.truncated and m.smart_credits is None


@pytest.mark.parametrize(("length", "parts"), [
    (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (268, 4), (269, 5), (335, 5),
])
def test_ucs2_boundaries(length: int, parts: int) -> None:
    """UCS-2 texts: 70 units in one part, then 67 per part."""
    m = measure(HINDI * length)
    assert (m.encoding, m.units, m.parts, m.credits) == ("UCS-2", length, parts, parts)
    assert m.is_unicode


def test_extension_characters_cost_two_septets() -> None:
    """Each of ^ { } \\ [ ~ ] | € and form feed counts 2 septets; 80 of them fill one part."""
    for char in GSM7_EXTENSION:
        assert measure("a" + char).units == 3
    assert measure("€" * 80).parts == 1
    m = measure("€" * 81)
    assert (m.units, m.parts) == (162, 2)
    assert [len(p) for p in split_parts("€" * 81)] == [76, 5]


def test_escape_pair_straddling_153_is_not_split() -> None:
    """An escape that would straddle a part boundary moves whole to the next part (ceil(n/153) would be 2)."""
    text = "a" * 152 + "{" + "b" * 152
    m = measure(text)
    assert m.units == 306 and math.ceil(m.units / 153) == 2
    assert m.parts == m.credits == 3
    assert split_parts(text) == ["a" * 152, "{" + "b" * 151, "b"]


def test_escape_pair_just_fitting_the_single_part() -> None:
    """159 plain characters plus one escape is 161 septets: two parts, the escape kept whole."""
    m = measure("a" * 159 + "~")
    assert (m.units, m.parts) == (161, 2)
    assert split_parts("a" * 159 + "~") == ["a" * 153, "a" * 6 + "~"]


def test_emoji_straddling_67_is_not_split() -> None:
    """A surrogate pair that would straddle 67 units moves whole to the next part."""
    text = "a" * 66 + EMOJI + "a" * 66
    m = measure(text)
    assert (m.encoding, m.units, m.chars) == ("UCS-2", 134, 133)
    assert m.parts == 3
    assert split_parts(text) == ["a" * 66, EMOJI + "a" * 65, "a"]


def test_emoji_and_flags_count_utf16_units() -> None:
    """An emoji is 2 units, a flag (two regional indicators) 4; 35 emoji fill one part."""
    assert measure(EMOJI).units == 2
    assert measure("\U0001f1ee\U0001f1f3").units == 4
    assert measure(EMOJI * 35).parts == 1
    assert measure(EMOJI * 36).parts == 2


def test_extension_characters_count_one_in_ucs2() -> None:
    """Once the text is UCS-2, { and € are one unit like any other character."""
    m = measure(HINDI + "{" * 69)
    assert (m.encoding, m.units, m.parts) == ("UCS-2", 70, 1)


def test_non_ascii_gsm_characters_stay_gsm() -> None:
    """Accented letters in the GSM table (é, ü, £, Δ) keep a text GSM-7."""
    m = measure("Café für £5 Δ")
    assert (m.encoding, m.units, m.parts) == ("GSM-7", 13, 1)


# --------------------------------------------------------------------------------------- smart encoding


def test_smart_encode_replaces_look_alikes() -> None:
    """Curly quotes, dashes, ellipsis and odd spaces become their GSM-7 equivalents."""
    text = "\u201cHi\u201d \u2014 it\u2019s\u00a0done\u2026 \u2013 ok\u200b"
    assert smart_encode(text) == "\"Hi\" - it's done... - ok"
    assert measure(smart_encode(text)).encoding == "GSM-7"


def test_smart_replacements_map_non_gsm_to_gsm() -> None:
    """Every replaced character would force UCS-2 and every replacement is GSM-7."""
    for char, replacement in SMART_REPLACEMENTS.items():
        assert char not in GSM, repr(char)
        assert set(replacement) <= GSM, repr(char)


def test_smart_credits_reports_savings() -> None:
    """One curly apostrophe in a 100-character text costs 2 credits; smart-encoded it costs 1."""
    text = "Your order is confirmed and we\u2019ll deliver it by Monday. Thank you for shopping with us, " \
           "ACME Store."
    m = measure(text)
    assert (m.encoding, m.credits, m.smart_credits) == ("UCS-2", 2, 1)


def test_smart_credits_none_when_nothing_to_gain() -> None:
    """No saving: Hindi text stays UCS-2; an ellipsis text gets longer; plain GSM has nothing to replace."""
    assert measure(HINDI * 10 + "\u2019").smart_credits is None
    assert measure("\u2026" * 70).smart_credits is None  # 1 part as UCS-2, 210 septets (2 parts) as GSM
    assert measure("plain text").smart_credits is None


# ------------------------------------------------------------------------------------------- truncation


def test_truncate_gsm_to_765_characters() -> None:
    """A long GSM-7 text is cut to 765 characters (5 parts) when truncate=True."""
    m = measure("a" * 1000, truncate=True)
    assert (m.chars, m.parts, m.credits, m.truncated) == (GATEWAY_MAX_CHARS, 5, 5, True)
    assert truncate_text("a" * 1000) == "a" * 765


def test_truncate_ucs2_further_to_five_parts() -> None:
    """UCS-2 text is cut to 335 units (5 x 67), not 765 characters."""
    m = measure(HINDI * 1000, truncate=True)
    assert (m.chars, m.units, m.parts, m.truncated) == (335, 335, 5, True)


def test_truncate_gsm_with_escapes_to_five_parts() -> None:
    """Escapes: 76 per part, so 380 braces (760 septets) are kept."""
    assert truncate_text("{" * 765) == "{" * 380


def test_truncate_keeps_the_longer_gsm_prefix() -> None:
    """If the first non-GSM character comes late, the all-GSM prefix (longer than 335) is kept."""
    cut = truncate_text("a" * 400 + HINDI * 600)
    assert cut == "a" * 400
    assert measure(cut).encoding == "GSM-7"


def test_truncate_never_splits_a_surrogate_pair() -> None:
    """Emoji text is cut between characters: 33 emoji (66 units) per part."""
    cut = truncate_text(EMOJI * 400)
    assert cut == EMOJI * 165
    assert cut.encode("utf-16-le").decode("utf-16-le") == cut


def test_short_text_is_not_truncated() -> None:
    """truncate=True on a text that fits changes nothing."""
    m = measure("hello \u2019", truncate=True)
    assert (m.chars, m.truncated) == (7, False)
    assert truncate_text("hello") == "hello"


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text", ["", " ", "\n\r ", "\u3000"])
def test_empty_or_whitespace_is_refused(text: str) -> None:
    """Empty and whitespace-only texts are refused with field 'text'."""
    with pytest.raises(InvalidText, match="empty or only whitespace") as info:
        measure(text)
    assert isinstance(info.value, ValidationError) and info.value.field == "text"


@pytest.mark.parametrize(("text", "shown"), [
    ("ab\tc", r"'\\t' \(U\+0009\) at character 3"),
    ("\x00x", r"'\\x00' \(U\+0000\) at character 1"),
    ("x\x1b", r"'\\x1b' \(U\+001B\) at character 2"),
    ("x\x0b", r"U\+000B"),
    (HINDI + "\x07", r"U\+0007\) at character 2"),
])
def test_control_characters_are_refused(text: str, shown: str) -> None:
    """C0 controls other than \\n, \\r (and form feed, a GSM character) are refused, naming char and place."""
    with pytest.raises(InvalidText, match=shown):
        measure(text)
    with pytest.raises(InvalidText):
        split_parts(text)


def test_newlines_and_form_feed_are_allowed() -> None:
    """\\n and \\r are basic GSM characters; form feed is an extension character (2 septets)."""
    assert measure("a\r\nb").units == 4
    assert measure("a\x0cb").units == 4


def test_lone_surrogate_is_refused() -> None:
    """A lone surrogate cannot be encoded and is refused."""
    with pytest.raises(InvalidText, match="lone surrogate U\\+D800 at character 2"):
        measure("a\ud800")


def test_more_than_five_parts_is_refused() -> None:
    """766 GSM characters need 6 parts: refused, naming the count and the limit, and no argument (the CLI
    that shows this reason has no truncate option)."""
    with pytest.raises(InvalidText, match=r"needs 6 parts .* at most 5: shorten it$"):
        measure("a" * 766)
    with pytest.raises(InvalidText, match="needs 6 parts"):
        measure(HINDI * 336)
    with pytest.raises(InvalidText, match="needs 6 parts"):
        measure("{" * 381)


def test_non_string_is_refused() -> None:
    """A non-string text is refused as InvalidText, not a TypeError."""
    with pytest.raises(InvalidText, match="must be a string"):
        measure(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- properties

ALPHABET = st.sampled_from(list("abc XYZ09.,\n") + list("{}[]~|€^\\") + list("éΔ£") + [HINDI, "\u2019",
                           "\u2026", EMOJI, "\U0001f1ee"])
TEXTS = st.text(ALPHABET, min_size=1, max_size=900).filter(lambda t: not t.isspace())


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_parts_agree_with_split_parts(text: str) -> None:
    """parts == len(split_parts); parts join back to the text; each part within its limit, packed greedily."""
    parts = split_parts(text)
    assert "".join(parts) == text
    gsm = set(text) <= GSM
    total = ref_units(text)
    if len(parts) == 1:
        assert total <= (160 if gsm else 70)
    else:
        limit = 153 if gsm else 67
        units = [len(p) + sum(c in GSM7_EXTENSION for c in p) if gsm else len(p.encode("utf-16-le")) // 2
                 for p in parts]
        assert sum(units) == total
        assert all(0 < u <= limit for u in units)
        for used, nxt in zip(units, parts[1:], strict=False):  # greedy: the next character did not fit
            assert used + (ref_units(nxt[0]) if gsm else len(nxt[0].encode("utf-16-le")) // 2) > limit
    try:
        m = measure(text)
    except InvalidText as exc:
        assert len(parts) > MAX_PARTS and "truncate=True" in exc.reason
        return
    assert m.parts == m.credits == len(parts) <= MAX_PARTS
    assert m.units == total and m.chars == len(text)
    assert m.encoding == ("GSM-7" if gsm else "UCS-2") and m.is_unicode == (not gsm)
    assert m.parts >= math.ceil(m.units / (153 if gsm else 67))
    if gsm:
        assert m.units >= m.chars
    assert m.smart_credits is None or m.smart_credits < m.credits


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_truncate_gives_the_longest_fitting_prefix(text: str) -> None:
    """truncate_text is a prefix of <= 765 characters that fits 5 parts, and one more character would not."""
    cut = truncate_text(text)
    assert text.startswith(cut) and len(cut) <= GATEWAY_MAX_CHARS
    if cut.isspace():
        return
    m = measure(text, truncate=True)
    assert m.parts <= MAX_PARTS and m.chars == len(cut) and m.truncated == (cut != text)
    if cut != text and len(cut) < GATEWAY_MAX_CHARS:
        assert len(split_parts(text[:len(cut) + 1])) > MAX_PARTS


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_smart_encoding_never_costs_more_when_reported(text: str) -> None:
    """When smart_credits is reported, the smart-encoded text really measures that many credits."""
    try:
        m = measure(text)
    except InvalidText:
        return
    if m.smart_credits is not None:
        assert measure(smart_encode(text)).credits == m.smart_credits < m.credits
