"""DLT typed variables ({#numeric#}, {#url#}, {#cbn#}...) and the URL / call-back number whitelists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import LinkNotWhitelisted, TemplateMismatch, ValidationError
from dispatcher.links import (
    LinkRules,
    cbn_key,
    check_entry,
    find_phones,
    find_urls,
    parse_whitelist,
    url_key,
    url_listed,
    whitelist_lines,
)
from dispatcher.templates import (
    KINDS,
    VAR_MAX,
    kind_error,
    match_slots,
    match_template,
    render_template,
    variable_kinds,
)

TYPED = "Rs {#numeric#} for {#alphanumeric#}: pay at {#url#} or call {#cbn#}"

# one strategy of valid values per kind (each at most 30 characters)
DIGITS = st.text("0123456789", min_size=1, max_size=8)
VALUES = {
    "numeric": st.builds(lambda a, b: a if b is None else f"{a}.{b}", DIGITS, st.none() | DIGITS),
    "alphanumeric": st.text("abcXYZ019", min_size=1, max_size=VAR_MAX),
    "url": st.builds(lambda h, p: f"https://{h}.in/{p}", st.text("abcdef", min_size=1, max_size=8),
                     st.text("abc123", max_size=8)),
    "urlott": st.builds(lambda h: f"{h}.com", st.text("abcdef", min_size=1, max_size=10)),
    "cbn": st.builds(lambda d: "1800" + d, st.text("0123456789", min_size=3, max_size=8)),
    "email": st.builds(lambda u, h: f"{u}@{h}.in", st.text("abc.1", min_size=1, max_size=8).filter(
        lambda u: u.strip(".")), st.text("abcdef", min_size=1, max_size=8)),
    "var": st.text("ab 1,.", max_size=VAR_MAX),
}


def test_kinds_are_read_from_the_template() -> None:
    """Each variable's kind comes from its name; unknown names are untyped."""
    assert variable_kinds(TYPED) == ("numeric", "alphanumeric", "url", "cbn")
    assert variable_kinds("{#var#} {#Numeric#} {#foo#}") == ("var", "numeric", "var")


def test_typed_values_match_and_say_where_they_are() -> None:
    """A text whose values fit their kinds gives each value's kind and position."""
    text = "Rs 1,500.00 for AC42: pay at https://pay.in/x or call 1800 123 4567"
    slots = match_slots(TYPED, text)
    assert [(s.kind, s.value) for s in slots] == [("numeric", "1,500.00"), ("alphanumeric", "AC42"),
                                                  ("url", "https://pay.in/x"), ("cbn", "1800 123 4567")]
    assert all(text[s.start:s.start + len(s.value)] == s.value for s in slots)


def test_kinds_steer_the_split_between_variables() -> None:
    """'Hi {#var#} {#numeric#}' puts the words in the untyped value and the number in the numeric one."""
    assert match_template("Hi {#var#} {#numeric#}", "Hi Ravi Kumar 123") == ["Ravi Kumar", "123"]


@pytest.mark.parametrize(("template", "text", "reason"), [
    ("Rs {#numeric#} due", "Rs 12a due",
     'variable 1 {#numeric#} at character 4: "12a" is not digits (with , or . between them)'),
    ("Code {#alphanumeric#}.", "Code AB-12.",
     'variable 1 {#alphanumeric#} at character 6: "AB-12" is not letters'),
    ("Visit {#url#} now", "Visit my shop now", 'variable 1 {#url#} at character 7: "my shop" is not a URL'),
    ("Call {#cbn#}", "Call 12", 'variable 1 {#cbn#} at character 6: "12" is not a call-back number'),
    ("Mail {#email#}", "Mail a@b", 'variable 1 {#email#} at character 6: "a@b" is not an e-mail address'),
    ("Rs {#numeric#} due", "Rs  due", 'variable 1 {#numeric#} at character 4: "" is not digits'),
])
def test_a_value_of_the_wrong_kind_is_refused_with_variable_position_and_rule(template: str, text: str,
                                                                             reason: str) -> None:
    """The refusal names the variable (number and kind), the value's 1-based position and the rule."""
    with pytest.raises(TemplateMismatch) as info:
        match_template(template, text)
    assert info.value.reason.startswith(reason), info.value.reason
    assert info.value.field == "text"


def test_fixed_text_and_length_reasons_are_unchanged_for_typed_templates() -> None:
    """A typed template's fixed-text mismatch or over-long value is reported as for {#var#}."""
    with pytest.raises(TemplateMismatch, match='fixed text differs at character 2: expected "Rs", got "Rx"'):
        match_template("Rs {#numeric#} due", "Rx 12 due")
    with pytest.raises(TemplateMismatch, match="variable 1 is 31 characters"):
        match_template("Rs {#numeric#} due", "Rs " + "1" * 31 + " due")


def test_render_checks_kinds_too() -> None:
    """render_template refuses a value of the wrong kind, naming where it would stand."""
    with pytest.raises(TemplateMismatch, match=r'variable 2 \{#numeric#\} at character 9: "ten"'):
        render_template("Hi {#var#} {#numeric#}", ["Ravi", "ten"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted([*KINDS, "var"])), min_size=1, max_size=4).flatmap(
    lambda kinds: st.tuples(st.just(kinds), st.tuples(*[VALUES[k] for k in kinds]))))
def test_values_of_their_kind_round_trip(case: tuple[list[str], tuple[str, ...]]) -> None:
    """Rendering values of the right kind and matching the text gives back every value, kind and place."""
    kinds, values = case
    template = "Start " + " | ".join(f"v{i}={{#{k}#}}" for i, k in enumerate(kinds)) + " end"
    text = render_template(template, list(values))
    slots = match_slots(template, text)
    assert [s.value for s in slots] == list(values)
    assert [s.kind for s in slots] == kinds
    assert all(text[s.start:s.start + len(s.value)] == s.value for s in slots)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(KINDS)), st.text(min_size=0, max_size=VAR_MAX))
def test_match_accepts_a_value_exactly_when_its_kind_does(kind: str, value: str) -> None:
    """For any value, matching succeeds iff kind_error finds nothing; a refusal points at the value."""
    template = f"A: {{#{kind}#}} ."
    text = f"A: {value} ."
    if kind_error(kind, value) is None:
        assert match_template(template, text) == [value]
        return
    with pytest.raises(TemplateMismatch) as info:
        match_template(template, text)
    assert isinstance(info.value, ValidationError)
    assert info.value.reason.startswith(f"variable 1 {{#{kind}#}} at character 4:") or \
        "fixed text" in info.value.reason or "continues" in info.value.reason


# --------------------------------------------------------------------------- whitelists


def test_url_entries_match_at_boundaries_only() -> None:
    """An entry lists its own host and paths under it, never a longer host or a longer path segment."""
    entries = {url_key("smspoint.in"), url_key("https://Pay.example.com/track")}
    assert url_listed("https://smspoint.in", entries)
    assert url_listed("http://www.SMSPOINT.in/a?b=1", entries)
    assert url_listed("pay.example.com/track/123", entries)
    assert not url_listed("https://smspoint.in.evil.com/x", entries)
    assert not url_listed("pay.example.com/tracker", entries)
    assert not url_listed("https://evil.com/smspoint.in", entries)


@settings(max_examples=200, deadline=None)
@given(st.text("abcdef", min_size=1, max_size=10),
       st.sampled_from(["", "/", "/x/y", "?q=1", "#f", ":8080/p"]),
       st.sampled_from(["", "http://", "https://", "https://www."]))
def test_any_url_under_a_host_entry_is_listed_and_a_longer_host_is_not(host: str, rest: str,
                                                                       scheme: str) -> None:
    """host.in lists scheme + host.in + any path/query; host.in.x.com and xhost.in are not listed."""
    entries = {url_key(f"{host}.in")}
    assert url_listed(f"{scheme}{host}.in{rest}", entries)
    assert not url_listed(f"{scheme}{host}.in.x.com{rest}", entries)
    assert not url_listed(f"{scheme}x{host}.in{rest}", entries)


@given(st.text("0123456789", min_size=10, max_size=10).filter(lambda d: d[0] in "6789"))
def test_call_back_numbers_compare_by_digits(digits: str) -> None:
    """+91, 91, 0 and separators do not change a call-back number's key."""
    spaced = f"{digits[:5]} {digits[5:]}"
    assert cbn_key(f"+91 {spaced}") == cbn_key(f"91{digits}") == cbn_key(f"0{digits}") == cbn_key(spaced)


def test_typed_mode_checks_url_and_cbn_values() -> None:
    """Typed values must be listed; the refusal names the variable, position and list."""
    rules = LinkRules.build(["pay.in"], ["1800 123 4567"])
    ok = "Rs 10 for A1: pay at https://pay.in/x or call 18001234567"
    rules.check(ok, match_slots(TYPED, ok))
    bad = "Rs 10 for A1: pay at https://bit.ly/x or call 18001234567"
    with pytest.raises(LinkNotWhitelisted,
                       match=r'variable 3 \{#url#\} at character 22: "https://bit.ly/x" is not on the URL'):
        rules.check(bad, match_slots(TYPED, bad))
    other = "Rs 10 for A1: pay at pay.in or call 1800 999 0000"
    with pytest.raises(LinkNotWhitelisted, match=r"variable 4 \{#cbn#\} at character 37: .*call-back number"):
        rules.check(other, match_slots(TYPED, other))


def test_an_empty_whitelist_says_how_to_fill_it() -> None:
    """With no entries at all the refusal names the command and the settings that fill the whitelist."""
    text = "Visit https://pay.in"
    why = "list is empty: 'smsdispatch whitelist add', or set DLT_URL_WHITELIST, DLT_CBN_WHITELIST or DLT_"
    with pytest.raises(LinkNotWhitelisted, match=why):
        LinkRules().check(text, match_slots("Visit {#url#}", text))


def test_strict_mode_checks_links_anywhere_and_typed_mode_does_not() -> None:
    """A URL or phone number in fixed text passes typed mode and is refused in strict mode."""
    text = "Offer! Details at www.shop.in/deal, call 98765 43210."
    LinkRules.build([], [], "typed").check(text)
    LinkRules.build([], [], "off").check(text)
    with pytest.raises(LinkNotWhitelisted, match=r'URL at character 19: "www.shop.in/deal" .*strict'):
        LinkRules.build([], [], "strict").check(text)
    with pytest.raises(LinkNotWhitelisted, match=r'phone number at character 42: "98765 43210"'):
        LinkRules.build(["shop.in"], [], "strict").check(text)
    LinkRules.build(["shop.in"], ["9876543210"], "strict").check(text)


def test_finders_skip_amounts_and_otps() -> None:
    """Amounts, OTPs and account numbers are not phone numbers; plain words are not URLs."""
    assert find_phones("OTP 482913, Rs 1,50,000, A/c 12345678901234") == []
    assert find_urls("Thanks. See you soon.") == []
    assert find_urls("go to (https://a.in/x).") == [(7, "https://a.in/x")]


def test_whitelist_file_lines() -> None:
    """Lines are 'url X', 'cbn N' or bare entries; comments and blanks are skipped; bad lines are named."""
    text = "# ours\nurl smspoint.in/t\ncbn +91 1800 123 4567\n\nshop.in\n1800-111-222\n"
    urls, cbns = parse_whitelist(text)
    assert urls == ["smspoint.in/t", "shop.in"] and cbns == ["+91 1800 123 4567", "1800-111-222"]
    with pytest.raises(ValueError, match="wl line 2: 'not a url' is not a URL prefix"):
        parse_whitelist("shop.in\nnot a url\n", "wl")
    with pytest.raises(ValueError, match="wl line 1: '12' is not a call-back number"):
        parse_whitelist("cbn 12", "wl")


hosts = st.from_regex(r"(www\.)?[a-zA-Z0-9-]{1,12}(\.[a-zA-Z0-9-]{1,8}){0,2}\.(in|com|IN)", fullmatch=True)
paths = st.from_regex(r"(/[a-zA-Z0-9_-]{1,8}){0,3}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["", "http://", "https://", "HTTPS://"]), hosts, paths)
def test_an_accepted_url_entry_lists_itself_and_what_lies_below_it(scheme, host, path):
    """Every URL prefix check_entry accepts is keyed as links compares URLs: the entry itself, any scheme
    of it, and any path below it are listed; a longer host is not."""
    entry = scheme + host + path
    key = check_entry("url", entry)
    assert key == url_key(entry)
    rules = LinkRules.build([entry], [])
    assert url_listed(entry, rules.urls)
    assert url_listed(f"https://{host}{path}/more?x=1", rules.urls)
    assert not url_listed(f"https://{host}x{path}", rules.urls)  # pay.inx is another host


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["", "+91 ", "91", "0"]), st.from_regex(r"[6-9][0-9]{9}", fullmatch=True),
       st.sampled_from(["", "-", " "]))
def test_a_call_back_number_entry_is_keyed_by_its_national_digits(prefix, digits, sep):
    entry = prefix + digits[:5] + sep + digits[5:]
    assert check_entry("cbn", entry) == digits == cbn_key(entry)


@pytest.mark.parametrize(("kind", "entry", "reason"), [
    ("url", "localhost/x", "is not a URL prefix"), ("url", "a b.in", "is not a URL prefix"),
    ("cbn", "12", "is not a call-back number"), ("cbn", "1234567890123456", "is not a call-back number"),
    ("url", "x" * 190 + ".in/" + "y" * 10, "is not an entry (1-200 printable characters)"),
    ("url", "pay.in/\t", "is not an entry"), ("tel", "18001234567", "is not a kind of entry"),
])
def test_check_entry_says_why_an_entry_is_refused(kind, entry, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_entry(kind, entry)


def test_whitelist_lines_read_kinds_and_bare_entries_with_their_line_numbers():
    text = "# comment\n\nurl pay.in/t\ncbn 1800 123 4567\n+91 98765 43210\nexample.com\nurl\n"
    assert whitelist_lines(text) == [(3, ("url", "pay.in/t")), (4, ("cbn", "1800 123 4567")),
                                     (5, ("cbn", "+91 98765 43210")), (6, ("url", "example.com")),
                                     (7, ("url", "url"))]
    with pytest.raises(ValueError, match="whitelist line 7: 'url' is not a URL prefix"):
        parse_whitelist(text)


@pytest.mark.parametrize("written", ["1800 123 4567", "+91 1800-123-4567", "91 1800 1234567", "18001234567"])
def test_a_toll_free_number_is_one_entry_however_it_is_written(written):
    assert cbn_key(written) == "18001234567"
    assert LinkRules.build([], [written]).cbns == frozenset({"18001234567"})


def test_with_dlt_links_off_no_whitelist_source_is_read(tmp_path):
    """Nothing is checked with DLT_LINKS=off, so a missing file (refused, typed, in the other modes) and
    the database are not read."""
    from dispatcher.errors import ConfigurationError
    from dispatcher.settings import Settings
    from dispatcher.whitelist import WhitelistSource

    def no_engine():  # the database is never asked
        raise AssertionError("the database was read")

    missing = str(tmp_path / "missing.txt")
    off = WhitelistSource(Settings(dlt_links="off", dlt_whitelist_file=missing, dlt_whitelist_db=True),
                          no_engine)
    off.get().check("Pay at https://bit.ly/abc or call 9876543210")
    assert off.get().mode == "off"
    with pytest.raises(ConfigurationError, match="dlt_whitelist_file"):
        WhitelistSource(Settings(dlt_links="typed", dlt_whitelist_file=missing), no_engine).get()
