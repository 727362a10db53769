"""Time-ordered identifiers: 48-bit millisecond timestamp + 80 random bits, as 32 hex characters.

Generated in the producer (no database round trip), roughly sortable by creation time, index friendly.
"""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """A new 32-hex-character id whose prefix orders by creation time."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
