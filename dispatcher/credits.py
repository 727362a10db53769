"""Credit reservations per gateway package, shared by every worker through Redis.

A worker reserves the parts of a batch before calling the gateway, then commits (charged), releases
(provably not charged) or settles as unknown (maybe charged). Every change is one Lua script, so
concurrent workers can never reserve more than the known balance.

Redis keys (``prefix`` is ``Settings.redis_prefix``):

- ``{prefix}:credits:{package}`` hash: ``available``, ``inflight``, ``spent``, ``unknown`` (integers) and
  ``refreshed_us`` (Redis ``TIME`` of the last ``set_balance``, microseconds since the epoch).
- ``{prefix}:credits:packages`` set: every package ever given a balance (for ``snapshot``).

Needs Redis >= 5 (scripts that call ``TIME`` and then write).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from redis import Redis

from .channels import PACKAGES

log = logging.getLogger(__name__)

_RESERVE = """
local h = redis.call('HMGET', KEYS[1], 'available', 'refreshed_us')
if not h[2] then return 2 end
if ARGV[2] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if now - tonumber(h[2]) > tonumber(ARGV[2]) then return 2 end
end
local amount = tonumber(ARGV[1])
if tonumber(h[1]) < amount then return 1 end
redis.call('HINCRBY', KEYS[1], 'available', -amount)
redis.call('HINCRBY', KEYS[1], 'inflight', amount)
return 0
"""

# Move `amount` out of inflight (never below zero) into ARGV[2]; returns the shortfall.
# A release credits back only what really was in flight, so a double release cannot inflate the balance.
_SETTLE = """
local amount = tonumber(ARGV[1])
local inflight = tonumber(redis.call('HGET', KEYS[1], 'inflight') or '0')
local take = math.max(math.min(inflight, amount), 0)
if take > 0 then redis.call('HINCRBY', KEYS[1], 'inflight', -take) end
if ARGV[2] == 'available' then
  if take > 0 then redis.call('HINCRBY', KEYS[1], 'available', take) end
else
  redis.call('HINCRBY', KEYS[1], ARGV[2], amount)
end
return amount - take
"""

_SET_BALANCE = """
local inflight = tonumber(redis.call('HGET', KEYS[1], 'inflight') or '0')
local avail = tonumber(ARGV[1]) - inflight
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'available', string.format('%.0f', avail),
           'refreshed_us', t[1] .. string.format('%06d', tonumber(t[2])))
redis.call('SADD', KEYS[2], ARGV[2])
return avail
"""


class ReserveResult(StrEnum):
    """Outcome of ``CreditLedger.reserve``."""

    RESERVED = "reserved"
    INSUFFICIENT = "insufficient"
    #: Balance never fetched or older than ``max_age_s``: refresh from get-sms-balance and retry.
    UNKNOWN = "unknown"


_RESULTS = (ReserveResult.RESERVED, ReserveResult.INSUFFICIENT, ReserveResult.UNKNOWN)


def _positive(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int, got {amount!r}")
    if amount <= 0:
        raise ValueError(f"amount must be > 0, got {amount!r}")
    return amount


def _int(value: bytes | str | None) -> int | None:
    return None if value is None else int(value)


class CreditLedger:
    """Per-package credits: ``available`` to reserve, ``inflight`` in calls, ``spent`` as charged."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._set_balance = redis.register_script(_SET_BALANCE)

    def key(self, package: str) -> str:
        """The hash holding one package's counters."""
        return f"{self.prefix}:credits:{package}"

    @property
    def packages_key(self) -> str:
        return f"{self.prefix}:credits:packages"

    def reserve(self, package: str, amount: int, *, max_age_s: float | None = None) -> ReserveResult:
        """Atomically move ``amount`` from available to inflight if enough is available."""
        age = "" if max_age_s is None else str(int(max_age_s * 1_000_000))
        code = self._reserve(keys=[self.key(package)], args=[_positive(amount), age])
        return _RESULTS[int(code)]

    def commit(self, package: str, amount: int) -> None:
        """The call completed and the gateway charged: inflight -> spent."""
        self._move(package, amount, "spent")

    def release(self, package: str, amount: int) -> None:
        """The call did not charge (rejected or provably unsent): inflight -> available."""
        self._move(package, amount, "available")

    def charge_unreserved(self, package: str, amount: int) -> None:
        """The gateway charged credits we had already released (a message reported after it became
        unknown): spent += amount, available -= amount (the next balance refresh sets it exactly)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(self.key(package), "spent", _positive(amount))
        pipe.hincrby(self.key(package), "available", -amount)
        pipe.execute()

    def settle_unknown(self, package: str, amount: int) -> None:
        """Outcome ambiguous: leave inflight, keep available as is (the next refresh corrects it)."""
        self._move(package, amount, "unknown")

    def _move(self, package: str, amount: int, to: str) -> None:
        short = int(self._settle(keys=[self.key(package)], args=[_positive(amount), to]))
        if short:
            log.warning("credits %s: settled %d to %s but only %d was in flight", package, amount, to,
                        amount - short)

    def set_balance(self, package: str, gateway_balance: int) -> int:
        """Record a get-sms-balance answer: available = balance - inflight. Returns available."""
        keys = [self.key(package), self.packages_key]
        return int(self._set_balance(keys=keys, args=[int(gateway_balance), package]))

    def set_inflight(self, package: str, amount: int) -> None:
        """Reset the in-flight count from the database's truth (credits of batches in `sending`).

        Reservations leak when a worker dies between reserving and settling; the sweeper calls this so
        that a leak cannot shrink the available balance for ever. A reservation made in the instant
        between the database read and this call is forgotten; its later settlement clamps at 0.
        """
        if amount < 0:
            raise ValueError("amount must be >= 0")
        self.redis.hset(self.key(package), "inflight", amount)

    def available(self, package: str) -> int | None:
        """Credits free to reserve; None if the balance was never fetched."""
        return _int(self.redis.hget(self.key(package), "available"))

    def age_s(self, package: str) -> float | None:
        """Seconds since the last ``set_balance`` by any worker (Redis clock); None if never."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.hget(self.key(package), "refreshed_us")
        (sec, usec), refreshed = pipe.execute()
        return _age(sec * 1_000_000 + usec, _int(refreshed))

    def snapshot(self) -> dict[str, dict[str, int | float | None]]:
        """Every package's counters and age (known packages always included), for metrics and views."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.smembers(self.packages_key)
        (sec, usec), members = pipe.execute()
        names = sorted(set(PACKAGES) | {m.decode() if isinstance(m, bytes) else m for m in members})
        for name in names:
            pipe.hgetall(self.key(name))
        now_us = sec * 1_000_000 + usec
        out: dict[str, dict[str, int | float | None]] = {}
        for name, raw in zip(names, pipe.execute(), strict=True):
            h = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
            out[name] = {
                "available": h.get("available"),
                "inflight": h.get("inflight", 0),
                "spent": h.get("spent", 0),
                "unknown": h.get("unknown", 0),
                "age_s": _age(now_us, h.get("refreshed_us")),
            }
        return out


def _age(now_us: int, refreshed_us: int | None) -> float | None:
    return None if refreshed_us is None else max(now_us - refreshed_us, 0) / 1_000_000
