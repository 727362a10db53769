"""Putting message ids into their lanes and waking the lanes' collectors: the one place that does both.

A collector run is published only when the lane's kick flag was not already set (``Lanes.push`` and
``Lanes.request_kick`` set it with ``SET NX``), so a burst of enqueues publishes one ``collect_lane`` task;
the running collector republishes itself when it ends if a wake-up was requested meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context


def push(ctx: Context, items: Iterable[tuple[str, str]]) -> list[str]:
    """Push (message id, group key) pairs into their lanes and wake each lane that needs a collector run;
    returns the lanes woken."""
    woken = ctx.lanes.push(items)
    for lane in woken:
        ctx.publisher.collect(lane)
    return woken


def wake_if_idle(ctx: Context, lane: str) -> bool:
    """Wake the lane's collector unless a wake-up is already pending (the beat's safety net)."""
    if ctx.lanes.request_kick(lane):
        ctx.publisher.collect(lane)
        return True
    return False


def wake(ctx: Context, lane: str) -> None:
    """Publish a collector run for the lane whatever its flag (a collector handing over to the next run)."""
    ctx.publisher.collect(lane)
