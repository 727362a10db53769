"""How an accepted message moves through the documented statuses over (simulated) time.

Every accepted message is ``Sent`` at once. Its fate is drawn from a hash of the seed and its message id
(never from call order), so a seeded run gives every message the same fate and delays each time:

* delivered: ``Delivered`` after about ``delivered_after_s``;
* undelivered: ``UnDelivered`` after about ``undelivered_after_s``, with a remark (``DND``...);
* pending: ``Expired`` ("message pending, en route" in the documentation) after ``pending_after_s``,
  then ``UnDelivered`` only after ``pending_hold_s`` (48 h by default);

each delay scaled by a per-message factor in ``[1 - jitter, 1 + jitter]``. Magic numbers force fates.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

SENT = "Sent"
DELIVERED = "Delivered"
UNDELIVERED = "UnDelivered"
EXPIRED = "Expired"

FATE_DELIVERED = "delivered"
FATE_UNDELIVERED = "undelivered"
FATE_PENDING = "pending"  # Expired for pending_hold_s, then UnDelivered
FATE_NEVER = "never"  # Expired for ever

#: Magic numbers (valid Indian mobiles, so clients accept them) and the fate each forces.
MAGIC_DELIVERED = "919000000001"
MAGIC_UNDELIVERED = "919000000002"
MAGIC_NEVER_FINAL = "919000000003"
MAGIC_INVALID = "919000000004"  # the gateway itself rejects it as an invalid number
MAGIC_DND = "919000000005"

MAGIC_FATES: dict[str, tuple[str, str]] = {
    MAGIC_DELIVERED: (FATE_DELIVERED, ""),
    MAGIC_UNDELIVERED: (FATE_UNDELIVERED, "Absent subscriber"),
    MAGIC_NEVER_FINAL: (FATE_NEVER, "Message pending"),
    MAGIC_DND: (FATE_UNDELIVERED, "DND"),
}

#: Remarks for randomly undelivered messages, picked per message.
UNDELIVERED_REMARKS: tuple[str, ...] = (
    "Absent subscriber", "DND", "Handset switched off", "Invalid subscriber", "Network failure",
)
PENDING_REMARK = "Message pending"
PENDING_FINAL_REMARK = "Validity expired"

_BITS = 20
_SCALE = float(1 << _BITS)
_MASK = (1 << _BITS) - 1


@dataclass
class Lifecycle:
    """Delays (simulated seconds) and rates that decide fates; changes apply to messages accepted later."""

    delivered_after_s: float = 2.0
    undelivered_after_s: float = 4.0
    jitter: float = 0.5
    undelivered_rate: float = 0.05
    pending_rate: float = 0.02
    pending_after_s: float = 1.0
    pending_hold_s: float = 172_800.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (names as the fields); raise ValueError on an unknown name or a bad value."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown lifecycle setting(s): {', '.join(sorted(unknown))}")
        values = {k: float(v) for k, v in changes.items()}
        if any(v < 0 or math.isnan(v) for v in values.values()):
            raise ValueError("lifecycle settings must be >= 0")
        merged = asdict(self) | values
        if merged["jitter"] > 1 or merged["undelivered_rate"] + merged["pending_rate"] > 1:
            raise ValueError("jitter must be <= 1 and undelivered_rate + pending_rate <= 1")
        for key, value in values.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(slots=True)
class Fate:
    """What will happen to one message: when it turns Expired and final, and the final remark (never changed
    once decided; not frozen only because frozen dataclasses are slower to build)."""

    fate: str
    expired_at: float
    final_at: float
    remark: str
    variant: int  # hash bits the report shapes use to vary key names and casing


def message_hash(seed: int, message_id: str) -> int:
    """A stable 64-bit hash of seed and message id."""
    digest = hashlib.blake2b(f"{seed}:{message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def decide(cfg: Lifecycle, seed: int, message_id: str, number: str, accepted_at: float) -> Fate:
    """The fate of a message accepted at ``accepted_at`` (simulated epoch seconds)."""
    h = message_hash(seed, message_id)
    u_fate = (h & _MASK) / _SCALE
    u_delay = ((h >> _BITS) & _MASK) / _SCALE
    variant = h >> (2 * _BITS)
    factor = 1.0 + cfg.jitter * (2.0 * u_delay - 1.0)
    fate, remark = MAGIC_FATES.get(number, ("", ""))
    if not fate:
        if u_fate < cfg.undelivered_rate:
            fate, remark = FATE_UNDELIVERED, UNDELIVERED_REMARKS[variant % len(UNDELIVERED_REMARKS)]
        elif u_fate < cfg.undelivered_rate + cfg.pending_rate:
            fate, remark = FATE_PENDING, PENDING_FINAL_REMARK
        else:
            fate = FATE_DELIVERED
    if fate == FATE_DELIVERED:
        return Fate(fate, math.inf, accepted_at + cfg.delivered_after_s * factor, "", variant)
    if fate == FATE_UNDELIVERED:
        return Fate(fate, math.inf, accepted_at + cfg.undelivered_after_s * factor, remark, variant)
    expired_at = accepted_at + cfg.pending_after_s * factor
    final_at = math.inf if fate == FATE_NEVER else accepted_at + cfg.pending_hold_s
    return Fate(fate, expired_at, final_at, remark, variant)


def status_at(fate: Fate, now: float) -> tuple[str, str]:
    """The documented status and remark of a message with this fate at simulated time ``now``."""
    if now >= fate.final_at:
        return (DELIVERED, "") if fate.fate == FATE_DELIVERED else (UNDELIVERED, fate.remark)
    if now >= fate.expired_at:
        return EXPIRED, PENDING_REMARK
    return SENT, ""
