"""Redis lanes: producers append message ids to a stream per lane; collectors read them in a consumer
group, so entries a crashed collector had read stay pending and are claimed back.

Key names (all under the configured prefix):
    {prefix}:lane:{lane}    stream; entry fields g=group key, ids=comma-separated message ids
    {prefix}:kick:{lane}    "a collector run is requested" flag (coalesces wake-ups)
    {prefix}:epoch          set once; its absence means Redis lost its data (flush, restart without AOF)
    {prefix}:priority:otp   OTP ids not yet answered (dispatcher.priority), added with their push
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from . import priority
from .channels import Channel
from .errors import QueueUnavailable
from .where import cause, redis_url

GROUP = "collectors"
IDS_PER_ENTRY = 500
#: Entries a collector reads (or reclaims) at a time: at most 20,000 ids. Redis counts entries, not ids;
#: reading a batch size's worth of entries (2,000 x 500 ids) pulled up to a million ids of a backlog into
#: one collector's memory at once (+70 MB for a while in the benchmark's memory run).
READ_ENTRIES = 40
KICK_TTL_MS = 2000
#: Group keys of the lane whose messages bulk senders yield to (dispatcher.priority).
PRIORITY_LANE_KEY = f"{Channel.OTP.value}|"


@dataclass
class Entry:
    """One stream entry: message ids of one batching group."""

    entry_id: str
    group: str
    ids: list[str]


def lane_of(group: str) -> str:
    """Lanes are named after channels, the first field of a group key."""
    return group.split("|", 1)[0]


class Lanes:
    """The lane streams of one deployment (one Redis, one prefix)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def stream(self, lane: str) -> str:
        return f"{self.prefix}:lane:{lane}"

    def kick_key(self, lane: str) -> str:
        return f"{self.prefix}:kick:{lane}"

    # ------------------------------------------------------------------ producer side

    def push(self, items: Iterable[tuple[str, str]]) -> list[str]:
        """Append (message id, group key) pairs; returns the lanes whose collector should be woken.

        Consecutive ids of one group share an entry (up to IDS_PER_ENTRY), so a bulk request costs a
        few hundred XADDs per million messages. One round trip per call.
        """
        pipe = self.redis.pipeline(transaction=False)
        lanes: list[str] = []
        group: str | None = None
        chunk: list[str] = []

        def flush() -> None:
            if chunk and group is not None:
                lane = lane_of(group)
                pipe.xadd(self.stream(lane), {"g": group, "ids": ",".join(chunk)})
                if lane not in lanes:
                    lanes.append(lane)

        otps: list[str] = []
        for message_id, g in items:
            if g != group or len(chunk) >= IDS_PER_ENTRY:
                flush()
                group, chunk = g, []
            chunk.append(message_id)
            if g.startswith(PRIORITY_LANE_KEY):
                otps.append(message_id)
        flush()
        if not lanes:
            return []
        priority.mark(pipe, self.prefix, otps, int(time.time() * 1000))  # bulk yields while they wait
        for lane in lanes:
            pipe.set(self.kick_key(lane), "1", nx=True, px=KICK_TTL_MS)
        try:
            results = pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"Redis unavailable at {redis_url(self.redis)}: {cause(exc)}") from exc
        kicks = results[-len(lanes):]
        return [lane for lane, kicked in zip(lanes, kicks, strict=True) if kicked]

    def request_kick(self, lane: str) -> bool:
        """Set the lane's kick flag; True when the caller should publish a collector run."""
        return bool(self.redis.set(self.kick_key(lane), "1", nx=True, px=KICK_TTL_MS))

    def kick_requested(self, lane: str) -> bool:
        return bool(self.redis.exists(self.kick_key(lane)))

    def clear_kick(self, lane: str) -> None:
        self.redis.delete(self.kick_key(lane))

    # ------------------------------------------------------------------ collector side

    def ensure_group(self, lane: str) -> None:
        try:
            self.redis.xgroup_create(self.stream(lane), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, lane: str, consumer: str, count: int, block_ms: int | None) -> list[Entry]:
        """New entries for ``consumer`` (blocking up to block_ms; None = don't block)."""
        try:
            resp = self.redis.xreadgroup(GROUP, consumer, {self.stream(lane): ">"}, count=count,
                                         block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group(lane)
            return []
        streams: list[Any] = list(resp or [])  # type: ignore[arg-type]
        return [e for _, entries in streams for e in _entries(entries)]

    def reclaim(self, lane: str, consumer: str, min_idle_ms: int, count: int = READ_ENTRIES) -> list[Entry]:
        """Take over entries other (dead) collectors read but never acknowledged."""
        try:
            resp = self.redis.xautoclaim(self.stream(lane), GROUP, consumer, min_idle_ms, "0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group(lane)
            return []
        return list(_entries(resp[1]))

    def ack(self, lane: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge and delete processed entries (the stream holds only unprocessed work)."""
        if entry_ids:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xack(self.stream(lane), GROUP, *entry_ids)
            pipe.xdel(self.stream(lane), *entry_ids)
            pipe.execute()

    # ------------------------------------------------------------------ observation and repair

    def unread(self, lane: str) -> int:
        """Entries not yet delivered to any collector (the group's lag; Redis 7+, else the length)."""
        try:
            for info in self.redis.xinfo_groups(self.stream(lane)):
                name = info.get("name")
                if name in (GROUP, GROUP.encode()):
                    lag = info.get("lag")
                    if lag is not None:
                        return int(lag)
        except ResponseError:
            return 0  # no stream yet
        return self.depth(lane)

    def depth(self, lane: str) -> int:
        """Entries waiting or in flight in the lane (not messages: an entry may carry many ids)."""
        return int(self.redis.xlen(self.stream(lane)))

    def oldest_age_s(self, lane: str) -> float:
        """Age of the oldest entry still in the lane, by Redis time; 0 when empty."""
        first = self.redis.xrange(self.stream(lane), count=1)
        if not first:
            return 0.0
        entry_ms = int(first[0][0].decode().split("-")[0] if isinstance(first[0][0], bytes)
                       else str(first[0][0]).split("-")[0])
        secs, micros = self.redis.time()
        return max(0.0, secs + micros / 1e6 - entry_ms / 1000.0)

    def lost_data(self) -> bool:
        """True (once) when Redis has lost its data since the last check: the epoch marker is gone."""
        return bool(self.redis.set(f"{self.prefix}:epoch", uuid.uuid4().hex, nx=True))


def _entries(raw: Iterable[tuple[bytes | str, dict[bytes, bytes] | None]]) -> Iterable[Entry]:
    for entry_id, fields in raw:
        if not fields:  # deleted while pending
            continue
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        g = fields.get(b"g") or fields.get("g")  # type: ignore[call-overload]
        ids = fields.get(b"ids") or fields.get("ids")  # type: ignore[call-overload]
        group = g.decode() if isinstance(g, bytes) else str(g)
        idlist = (ids.decode() if isinstance(ids, bytes) else str(ids)).split(",")
        yield Entry(eid, group, idlist)
