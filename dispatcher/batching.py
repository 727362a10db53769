"""Grouping and splitting (pure): ids read from a lane become chunks of at most ``batch_size`` ids of
one group. A group is flushed when it is full, or when its oldest id has waited ``flush_interval_s``.

Stream entries are acknowledged only once every id they carried has been put into a committed batch;
``Chunk.completes`` lists the entries that a chunk finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Chunk:
    group: str
    ids: list[str]
    completes: list[str] = field(default_factory=list)


@dataclass
class _Group:
    ids: list[tuple[str, str, float]] = field(default_factory=list)  # (message id, entry id, arrived)

    @property
    def since(self) -> float:
        return self.ids[0][2]


class GroupBuffer:
    """Ids waiting to be batched, per group, with the entries they came from."""

    def __init__(self, batch_size: int, flush_interval_s: float) -> None:
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._groups: dict[str, _Group] = {}
        self._remaining: dict[str, int] = {}  # entry id -> ids not yet flushed
        self._empty_entries: list[str] = []

    def add(self, entry_id: str, group: str, ids: Sequence[str], now: float) -> None:
        ids = [i for i in ids if i]
        if not ids:
            self._empty_entries.append(entry_id)
            return
        if entry_id in self._remaining:  # the same entry read twice (reclaimed): ignore
            return
        g = self._groups.setdefault(group, _Group())
        g.ids.extend((i, entry_id, now) for i in ids)
        self._remaining[entry_id] = len(ids)

    def __len__(self) -> int:
        return sum(len(g.ids) for g in self._groups.values())

    def next_deadline(self) -> float | None:
        """When the oldest partial group must be flushed (None when empty)."""
        if not self._groups:
            return None
        return min(g.since for g in self._groups.values()) + self.flush_interval_s

    def take(self, now: float, *, force: bool = False) -> list[Chunk]:
        """Full chunks of every group, plus partial ones that waited long enough (or all, with force)."""
        out: list[Chunk] = []
        for key in list(self._groups):
            g = self._groups[key]
            due = force or now - g.since >= self.flush_interval_s
            while len(g.ids) >= self.batch_size or (due and g.ids):
                part, g.ids = g.ids[:self.batch_size], g.ids[self.batch_size:]
                out.append(self._chunk(key, part))
            if not g.ids:
                del self._groups[key]
        if self._empty_entries and out:
            out[0].completes.extend(self._empty_entries)
            self._empty_entries = []
        elif self._empty_entries and force:
            out.append(Chunk(group="", ids=[], completes=self._empty_entries))
            self._empty_entries = []
        return out

    def _chunk(self, group: str, part: list[tuple[str, str, float]]) -> Chunk:
        completes: list[str] = []
        for _, entry_id, _t in part:
            left = self._remaining[entry_id] - 1
            if left:
                self._remaining[entry_id] = left
            else:
                del self._remaining[entry_id]
                completes.append(entry_id)
        return Chunk(group=group, ids=[i for i, _, _ in part], completes=completes)
