"""Cost preview: what a bulk request would cost and what it would refuse, before anything is written.

``Tally`` is pure: it is fed each row's outcome (refused with a reason, or measured) and adds up credits,
a parts histogram, the rows that go out as UCS-2 with the first character that forced it, and what
smart encoding would save. ``Dispatcher.estimate`` validates rows exactly as ``send_bulk`` does (opt-outs
included), feeds a Tally and adds the package's balance; nothing is written or enqueued.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import GatewayError, RowError
from .segments import Measurement, first_ucs2

if TYPE_CHECKING:
    from .context import Context

#: At most this many UCS-2 rows and refusals are listed one by one (all are counted).
LISTED = 1000


@dataclass(frozen=True)
class Ucs2Row:
    """A row sent as UCS-2 (70/67 characters a part) and the character that forced it."""

    index: int
    position: int  #: 1-based, in the text as sent
    char: str
    code_point: str  #: "U+20B9"


@dataclass
class Estimate:
    """What enqueuing the rows would cost. ``balance_after`` is None when the balance is unknown."""

    channel: str
    package: str
    rows: int = 0
    accepted: int = 0
    credits: int = 0
    parts: dict[int, int] = field(default_factory=dict)  #: parts per message -> messages
    refused: list[RowError] = field(default_factory=list)
    refused_count: int = 0
    refused_by_reason: dict[str, int] = field(default_factory=dict)  #: "field: reason" -> rows
    ucs2: list[Ucs2Row] = field(default_factory=list)
    ucs2_count: int = 0
    smart_saving: int = 0  #: credits smart encoding saves (or would save, when it is off)
    smart_encoding: bool = False
    balance: int | None = None
    balance_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


class Tally:
    """Adds rows up into an Estimate (pure)."""

    def __init__(self, channel: str, package: str, *, smart_encoding: bool) -> None:
        self.est = Estimate(channel, package, smart_encoding=smart_encoding)
        self._parts: Counter[int] = Counter()
        self._reasons: Counter[str] = Counter()

    def refuse(self, error: RowError) -> None:
        e = self.est
        e.rows += 1
        e.refused_count += 1
        self._reasons[f"{error.field}: {_general(error.reason)}"] += 1
        if len(e.refused) < LISTED:
            e.refused.append(error)

    def accept(self, index: int, text: str, m: Measurement, original: Measurement) -> None:
        """A row that would be enqueued: ``text`` as sent and its measurement, and the measurement of the
        text as given (they differ when smart encoding replaced look-alikes)."""
        e = self.est
        e.rows += 1
        e.accepted += 1
        e.credits += m.credits
        self._parts[m.parts] += 1
        if e.smart_encoding:
            e.smart_saving += original.credits - m.credits
        elif m.smart_credits is not None:
            e.smart_saving += m.credits - m.smart_credits
        if m.is_unicode:
            e.ucs2_count += 1
            first = first_ucs2(text)
            if first is not None and len(e.ucs2) < LISTED:
                e.ucs2.append(Ucs2Row(index, first[0], first[1], f"U+{ord(first[1]):04X}"))

    def result(self, balance: int | None) -> Estimate:
        e = self.est
        e.parts = dict(sorted(self._parts.items()))
        e.refused_by_reason = dict(self._reasons.most_common())
        e.refused.sort(key=lambda r: r.index)
        e.balance = balance
        e.balance_after = None if balance is None else balance - e.credits
        return e


def _general(reason: str) -> str:
    """A reason without its row-specific tail (for grouping): up to the first ':'."""
    head, sep, _ = reason.partition(":")
    return head if sep and len(head) < len(reason) else reason


def available_credits(ctx: Context, package: str) -> int | None:
    """The package's credits free to spend now: the gateway's balance minus what batches in flight hold
    (the shared ledger's figure when the gateway cannot be asked); None when neither is known."""
    snap = ctx.ledger.snapshot().get(package, {})
    try:
        balance = int(ctx.client.balance().for_package(package))
    except GatewayError:
        cached = snap.get("available")
        return None if cached is None else int(cached)
    return balance - int(snap.get("inflight") or 0)
