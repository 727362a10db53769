"""Grouping and splitting into gateway calls (pure logic, no infrastructure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.batching import GroupBuffer

G1 = "promotional|123456|T1|0"
G2 = "promotional|123456|T1|1"


def test_4500_ids_of_one_group_become_2000_2000_500():
    """4,500 messages of one group become calls of 2,000 + 2,000 + 500."""
    buf = GroupBuffer(batch_size=2000, flush_interval_s=60)
    buf.add("e0", G1, [f"m{i}" for i in range(4500)], now=0.0)
    assert [len(c.ids) for c in buf.take(now=0.0, force=True)] == [2000, 2000, 500]


def test_full_group_flushes_at_batch_size_without_waiting():
    """A group that reaches the batch size is flushed at once, in chunks of exactly batch_size."""
    buf = GroupBuffer(batch_size=2000, flush_interval_s=60)
    for n in range(9):
        buf.add(f"e{n}", G1, [f"m{n}-{i}" for i in range(500)], now=0.0)
    chunks = buf.take(now=0.0)
    assert [len(c.ids) for c in chunks] == [2000, 2000]
    assert len(buf) == 500  # the rest waits for more or for the interval


def test_partial_group_waits_for_the_flush_interval():
    """A partial group is held until its oldest message has waited flush_interval_s."""
    buf = GroupBuffer(batch_size=2000, flush_interval_s=1.0)
    buf.add("e1", G1, ["a", "b"], now=10.0)
    assert buf.take(now=10.5) == []
    assert buf.next_deadline() == 11.0
    chunks = buf.take(now=11.0)
    assert [c.ids for c in chunks] == [["a", "b"]]
    assert chunks[0].completes == ["e1"]


def test_groups_never_share_a_chunk():
    """Messages of different groups (here: unicode vs not) never share a gateway call."""
    buf = GroupBuffer(batch_size=10, flush_interval_s=0)
    buf.add("e1", G1, ["a", "b"], now=0)
    buf.add("e2", G2, ["c"], now=0)
    buf.add("e3", G1, ["d"], now=0)
    chunks = buf.take(now=0)
    assert sorted((c.group, tuple(c.ids)) for c in chunks) == [(G1, ("a", "b", "d")), (G2, ("c",))]


def test_entry_is_completed_only_when_all_its_ids_are_batched():
    """A stream entry split across two chunks is acknowledged with the chunk holding its last id."""
    buf = GroupBuffer(batch_size=3, flush_interval_s=100)
    buf.add("e1", G1, ["a", "b"], now=0)
    buf.add("e2", G1, ["c", "d"], now=0)
    first = buf.take(now=0)
    assert [c.ids for c in first] == [["a", "b", "c"]]
    assert first[0].completes == ["e1"]
    rest = buf.take(now=0, force=True)
    assert rest[0].ids == ["d"] and rest[0].completes == ["e2"]


def test_reclaimed_entry_is_not_buffered_twice():
    """The same entry read twice (reclaimed after a crash) contributes its ids once."""
    buf = GroupBuffer(batch_size=10, flush_interval_s=0)
    buf.add("e1", G1, ["a"], now=0)
    buf.add("e1", G1, ["a"], now=0)
    assert [c.ids for c in buf.take(now=0)] == [["a"]]


@given(st.lists(st.tuples(st.sampled_from([G1, G2]), st.integers(1, 700)), min_size=1, max_size=30),
       st.integers(1, 2000))
def test_every_id_lands_in_exactly_one_chunk_of_its_group(entries, size):
    """Whatever the entries, each id is batched exactly once, in a chunk of its own group, <= size."""
    buf = GroupBuffer(batch_size=size, flush_interval_s=5)
    expected = {}
    for n, (group, count) in enumerate(entries):
        ids = [f"{n}-{i}" for i in range(count)]
        expected.update({i: group for i in ids})
        buf.add(f"e{n}", group, ids, now=float(n))
    chunks = buf.take(now=1.0) + buf.take(now=1e9, force=True)
    seen = [(i, c.group) for c in chunks for i in c.ids]
    assert len(seen) == len(expected)
    assert dict(seen) == expected
    assert all(0 < len(c.ids) <= size for c in chunks if c.ids)
    assert sorted(e for c in chunks for e in c.completes) == sorted(f"e{n}" for n in range(len(entries)))
    assert len(buf) == 0
