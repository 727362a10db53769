"""Time-ordered identifiers: 48-bit millisecond timestamp + 80 random bits, as 32 hex characters.

Generated in the producer (no database round trip), roughly sortable by creation time, index friendly.
"""

from __future__ import annotations

import os
import time
from datetime import datetime


def new_id() -> str:
    """A new 32-hex-character id whose prefix orders by creation time."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_ids(n: int, at: datetime | None = None) -> list[str]:
    """``n`` new ids sharing one timestamp prefix (now, or ``at``: data made for tests and benchmarks),
    from one read of the random source (bulk enqueue)."""
    prefix = f"{time.time_ns() // 1_000_000:012x}" if at is None else id_floor(at)
    rnd = os.urandom(10 * n).hex()
    return [prefix + rnd[k:k + 20] for k in range(0, 20 * n, 20)]


def id_floor(at: datetime) -> str:
    """The smallest id made at ``at`` (to the millisecond): every id made earlier sorts below it."""
    return f"{int(at.timestamp() * 1000):012x}"
