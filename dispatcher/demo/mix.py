"""The demo's message mix, built from the account's own catalogue (so it also fits a real account):
promotional campaigns, transactional notices (some in Hindi: unicode), OTPs sent one by one, a sprinkle
of invalid numbers that enqueue refuses, and a few requests that show enqueue's other checks."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..catalog import Catalog, Tmpl
from ..simulator.lifecycle import MAGIC_DND, MAGIC_INVALID
from ..templates import VARIABLE

#: Share of the messages per kind (promotional is split into two campaigns).
SHARES = {"promotional": 0.60, "transactional": 0.30, "otp": 0.10}
#: Mobile prefixes whose numbers are all in allocated Indian ranges.
PREFIXES = ("99", "98", "97", "96", "95", "94", "93", "85", "84", "74", "72", "70")
#: Numbers enqueue refuses, each for a different reason.
INVALID_NUMBERS = ("12345", "+1 415 555 2671", "011 2345 6789", "1800 123 4567", "98765-4321x", "5551234567")
NAMES = ("Asha", "Rahul", "Priya", "Vikram", "Neha", "Arjun", "Kavya", "Imran", "Meera", "Sanjay")
HINDI_NAMES = ("राहुल", "प्रिया", "अमित", "सुनीता", "विकास", "अंजलि")
PRODUCTS = ("sarees", "smartphones", "shoes", "kurtas", "headphones", "home decor")
DATES = ("12 Mar", "3 Apr", "21 May", "9 Jun", "30 Jul", "14 Aug")


@dataclass
class Campaign:
    """One enqueue request's worth of rows: a bulk request, or OTPs sent one by one."""

    name: str
    channel: str
    sender_id: str
    template_id: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    one_by_one: bool = False


def _value(before: str, rng: random.Random, unicode: bool) -> str:
    """A plausible value for a {#var#}, guessed from the text just before it."""
    b = before.lower().rstrip()[-24:]
    if not b or b.endswith(("code", "otp")):
        return f"{rng.randint(0, 999_999):06d}"
    if re.search(r"rs\.?$", b):
        return f"{rng.randint(99, 25_000):,}"
    if b.endswith(("order", "ऑर्डर")):
        return f"OD{rng.randint(10**7, 10**8 - 1)}"
    if b.endswith(("account", "a/c")):
        return f"XX{rng.randint(1000, 9999)}"
    if b.endswith(("dear", "hello", "hi", "प्रिय")):
        return rng.choice(HINDI_NAMES if unicode else NAMES)
    if b.endswith(" by"):
        return rng.choice(DATES)
    if b.endswith("get"):
        return f"{rng.choice((10, 20, 25, 40, 50))}%"
    if b.endswith("off on"):
        return rng.choice(PRODUCTS)
    if b.endswith(" at"):
        return f"shop.example.in/{rng.randint(100, 999)}"
    return rng.choice(NAMES + DATES)


def render(tmpl: Tmpl, rng: random.Random) -> str:
    """The template with every variable filled (each value well under DLT's 30 characters)."""
    unicode = not tmpl.message.isascii()
    pieces = VARIABLE.split(tmpl.message)
    out = [pieces[0]]
    for after in pieces[1:]:
        out += (_value("".join(out), rng, unicode), after)
    return "".join(out)


def usable(catalog: Catalog, channel: str) -> list[Tmpl]:
    """Approved templates of ``channel`` whose sender id is approved for it, fewest variables first."""
    seen: dict[str, Tmpl] = {}
    for t in catalog.templates.values():
        sender = catalog.senders.get(t.sender_id)
        if (t.approved and t.channel == channel and sender is not None and sender.approved
                and sender.channel in (None, channel)):
            seen[t.template_id] = t
    return sorted(seen.values(), key=lambda t: (len(VARIABLE.findall(t.message)), t.template_id))


def numbers(rng: random.Random, to: list[str]) -> Iterator[str]:
    """Recipients: the given numbers in turn (a real gateway), or made-up valid mobiles (the simulator)."""
    i = 0
    while True:
        if to:
            yield to[i % len(to)]
        else:
            yield "91" + rng.choice(PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"
        i += 1


def plan(catalog: Catalog, total: int, to: list[str], seed: int = 2024) -> list[Campaign]:
    """Split ``total`` messages over the kinds the catalogue can carry, in the order they are enqueued."""
    rng = random.Random(seed)
    kinds = {k: usable(catalog, k) for k in SHARES}
    shares = {k: s for k, s in SHARES.items() if kinds[k]}
    if not shares:
        raise ValueError("the account has no approved template with an approved sender id")
    norm = sum(shares.values())
    counts = {k: int(total * s / norm) for k, s in shares.items()}
    smallest_first = sorted(counts, key=lambda k: counts[k])  # a tiny run still gets one of each kind
    for i in range(total - sum(counts.values())):
        counts[smallest_first[i % len(smallest_first)]] += 1
    nums = numbers(rng, to)
    campaigns: list[Campaign] = []

    def add(name: str, kind: str, tmpl: Tmpl, n: int, one_by_one: bool = False) -> None:
        if n > 0:
            rows = [(next(nums), render(tmpl, rng)) for _ in range(n)]
            campaigns.append(Campaign(name, kind, tmpl.sender_id, tmpl.template_id, rows, one_by_one))

    if "promotional" in counts:
        promo = kinds["promotional"]
        half = counts["promotional"] // 2
        add("promotional campaign A", "promotional", promo[0], half)
        add("promotional campaign B", "promotional", promo[-1], counts["promotional"] - half)
    if "otp" in counts:
        add("OTPs (first half)", "otp", kinds["otp"][0], counts["otp"] // 2, one_by_one=True)
    if "transactional" in counts:
        txn = kinds["transactional"]
        hindi = [t for t in txn if not t.message.isascii()]
        plain = [t for t in txn if t.message.isascii()] or txn
        n_hi = counts["transactional"] // 6 if hindi else 0
        rest = counts["transactional"] - n_hi
        for i, tmpl in enumerate(plain[:2]):
            share = rest // min(2, len(plain)) + (rest % min(2, len(plain)) if i == 0 else 0)
            add(f"transactional notices ({tmpl.template_id})", "transactional", tmpl, share)
        if hindi:
            add("transactional notices in Hindi (unicode)", "transactional", hindi[0], n_hi)
    if "otp" in counts:
        add("OTPs (second half)", "otp", kinds["otp"][0], counts["otp"] - counts["otp"] // 2, one_by_one=True)
    if not to:  # made-up recipients only: a real run sends exactly what was asked for
        _sprinkle(campaigns, rng, total)
    return campaigns


def _sprinkle(campaigns: list[Campaign], rng: random.Random, total: int) -> None:
    """Replace some numbers of bulk requests with invalid ones (refused at enqueue), one the simulated
    gateway itself rejects and one on its DND list."""
    bulk = [c for c in campaigns if not c.one_by_one and c.rows]
    if not bulk:
        return
    for i in range(max(len(INVALID_NUMBERS), total // 250)):
        c = bulk[i % len(bulk)]
        pos = rng.randrange(len(c.rows))
        c.rows[pos] = (INVALID_NUMBERS[i % len(INVALID_NUMBERS)], c.rows[pos][1])
    c = bulk[-1]
    for magic in (MAGIC_INVALID, MAGIC_DND):
        pos = rng.randrange(len(c.rows))
        c.rows[pos] = (magic, c.rows[pos][1])


@dataclass(frozen=True)
class BadRequest:
    """A request enqueue refuses, to show its checks."""

    what: str
    to: str
    text: str
    channel: str
    sender_id: str
    template_id: str


def bad_requests(catalog: Catalog) -> list[BadRequest]:
    rng = random.Random(7)
    out: list[BadRequest] = []
    otp, txn = usable(catalog, "otp"), usable(catalog, "transactional")
    if otp:
        t = otp[0]
        out.append(BadRequest("an OTP to a landline", "+91 11 2345 6789", render(t, rng), "otp", t.sender_id,
                              t.template_id))
    if txn:
        t = txn[0]
        out.append(BadRequest("a notice whose text was edited after DLT approval", "9876543210",
                              render(t, rng).replace(" ", "  ", 1), "transactional", t.sender_id,
                              t.template_id))
        promo = usable(catalog, "promotional")
        if promo:
            p = promo[0]
            out.append(BadRequest("a promotion sent with the transactional sender id", "9876543210",
                                  render(p, rng), "promotional", t.sender_id, p.template_id))
    return out
