"""The messages the benchmarks send: texts that match the simulator's default DLT templates, unique per
index (so a ledger entry names its message), and the mixed workload of the end-to-end scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dispatcher.api import Dispatcher
from dispatcher.simulator.samples import (  # noqa: F401  (OTP, otp_text re-exported for otp_load)
    OTP,
    PROMO,
    TXN,
    TXN_HI,
    hi_text,
    number,
    otp_text,
    promo_text,
    txn_text,
)


@dataclass(frozen=True)
class Group:
    """One batching group of the mix: its send parameters, texts and share of the messages."""

    name: str
    params: dict[str, Any]
    share: float

    def text(self, i: int) -> str:
        return {"txn": txn_text, "txn_hi": hi_text, "promo": promo_text, "otp": otp_text}[self.name](i)

    @property
    def is_unicode(self) -> bool:
        return self.name == "txn_hi"


#: The end-to-end mix: English and Hindi transactional (one lane, two groups) and promotional (another).
MIX = (Group("txn", TXN, 0.5), Group("txn_hi", TXN_HI, 0.2), Group("promo", PROMO, 0.3))
MIX_TEXT = "50% transactional GSM, 20% transactional Hindi (UCS-2), 30% promotional"


def split_mix(n: int, offset: int = 0) -> list[tuple[Group, range]]:
    """The message indexes of each group for ``n`` messages (indexes unique across groups)."""
    out, start = [], offset
    for k, g in enumerate(MIX):
        count = n - (start - offset) if k == len(MIX) - 1 else int(n * g.share)
        out.append((g, range(start, start + count)))
        start += count
    return out


def rows(group: Group, indexes: range) -> Iterator[tuple[str, str]]:
    return ((number(i), group.text(i)) for i in indexes)


Prepared = list[tuple["Group", list[tuple[str, str]]]]


def prepare_mix(n: int, *, offset: int = 0, slice_size: int = 100_000) -> Prepared:
    """The rows of ``n`` mixed messages, one list per send_bulk call (per group and slice), built ahead:
    a scenario that times the pipeline builds them before its clock starts, as the limit scenario builds
    its calls."""
    out: Prepared = []
    for group, idx in split_mix(n, offset):
        for start in range(idx.start, idx.stop, slice_size):
            out.append((group, list(rows(group, range(start, min(start + slice_size, idx.stop))))))
    return out


def enqueue_prepared(dispatcher: Dispatcher, calls: Prepared) -> int:
    """One send_bulk per prepared call; returns the count enqueued."""
    return sum(len(dispatcher.send_bulk(part, **group.params)) for group, part in calls)


def enqueue_mix(dispatcher: Dispatcher, n: int, *, offset: int = 0, slice_size: int = 100_000) -> int:
    """Enqueue ``n`` mixed messages with send_bulk (one call per group and slice); returns the count."""
    return enqueue_prepared(dispatcher, prepare_mix(n, offset=offset, slice_size=slice_size))
