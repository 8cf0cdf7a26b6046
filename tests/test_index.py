"""The in-memory band index answers exactly what a brute-force scan would."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dedup.index import BandIndex
from aggregator.dedup.pairs import self_join


def _brute(stored: dict[int, np.ndarray], queries: np.ndarray) -> Counter[tuple[int, int]]:
    hits: Counter[tuple[int, int]] = Counter()
    for q, row in enumerate(queries):
        for unit_id, keys in stored.items():
            hits[(q, unit_id)] += int(np.sum(keys == row))
    return +hits


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.tuples(st.integers(1, 30), st.booleans()), min_size=1, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_lookup_matches_brute_force_across_runs_merges_and_held_adds(
    batches: list[tuple[int, bool]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    bands = 4
    index = BandIndex(bands, max_bucket=10_000)
    stored: dict[int, np.ndarray] = {}
    next_id = 1
    queries = rng.integers(0, 6, size=(5, bands), dtype=np.uint32)
    for size, held in batches:
        ids = np.arange(next_id, next_id + size, dtype=np.int64)
        keys = rng.integers(0, 6, size=(size, bands), dtype=np.uint32)  # small range: collisions
        if held:
            with index.holding_runs():
                index.add(ids, keys)
                stored.update(zip(ids.tolist(), keys, strict=True))
                rows, found = index.lookup(queries)
                assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == _brute(
                    stored, queries
                )
        else:
            index.add(ids, keys)
            stored.update(zip(ids.tolist(), keys, strict=True))
        next_id += size
    rows, found = index.lookup(queries)
    assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == _brute(stored, queries)
    assert index.size == len(stored)
    assert index.max_unit_id == next_id - 1


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_self_join_finds_every_earlier_article_sharing_a_band(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 4, size=(sum(sizes), 3), dtype=np.uint32)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    rows, earlier = self_join(keys, groups, max_bucket=10_000)
    expected: Counter[tuple[int, int]] = Counter()
    for i in range(len(keys)):
        for j in range(len(keys)):
            if groups[j] < groups[i]:
                expected[(i, j)] += int(np.sum(keys[i] == keys[j]))
    got = Counter(zip(rows.tolist(), earlier.tolist(), strict=True))
    assert got == +expected


def test_runs_stay_few_as_the_index_grows() -> None:
    index = BandIndex(8)
    rng = np.random.default_rng(1)
    for start in range(1, 50_000, 500):
        ids = np.arange(start, start + 500, dtype=np.int64)
        index.add(ids, rng.integers(0, 2**32, size=(500, 8), dtype=np.uint32))
    assert index.runs <= 8  # logarithmic: 100 batches


def test_bulk_load_equals_incremental_adds() -> None:
    rng = np.random.default_rng(2)
    ids = np.arange(1, 501, dtype=np.int64)
    keys = rng.integers(0, 50, size=(500, 4), dtype=np.uint32)
    bulk = BandIndex(4)
    bulk.add_chunks([(ids[:300], keys[:300]), (ids[300:], keys[300:])])
    step = BandIndex(4)
    for i in range(0, 500, 7):
        step.add(ids[i : i + 7], keys[i : i + 7])
    q = keys[:20]
    a, b = bulk.lookup(q), step.lookup(q)
    assert sorted(zip(*map(list, a), strict=True)) == sorted(zip(*map(list, b), strict=True))


def test_a_crowded_bucket_returns_only_its_most_recent_units() -> None:
    index = BandIndex(2, max_bucket=10)
    same = np.array([[7, 7]], dtype=np.uint32)
    for start in range(1, 121, 20):  # 120 units share every key, in several runs
        index.add(np.arange(start, start + 20, dtype=np.int64), np.repeat(same, 20, axis=0))
    _, found = index.lookup(same)
    newest = set(found.tolist())
    assert 120 in newest
    assert len(newest) <= 10 * index.runs  # each run gives at most 10
    assert not newest & set(range(1, 50)), "the oldest units are not returned"


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=15),
    max_units=st.integers(10, 60),
    seed=st.integers(0, 2**16),
)
def test_a_bounded_index_answers_for_exactly_its_newest_units(
    batches: list[tuple[int, bool]], max_units: int, seed: int
) -> None:
    """Once 10% over `max_units`, the oldest units leave down to `max_units` (never in the
    middle of a held block); look-ups then match a brute force over the units kept."""
    rng = np.random.default_rng(seed)
    bands = 4
    index = BandIndex(bands, max_bucket=10_000, max_units=max_units)
    stored: dict[int, np.ndarray] = {}
    next_id = 1
    queries = rng.integers(0, 6, size=(5, bands), dtype=np.uint32)

    dropped = False

    def bound() -> None:
        nonlocal dropped
        if len(stored) > max_units + max_units // 10:
            for unit_id in sorted(stored)[: len(stored) - max_units]:
                del stored[unit_id]
            dropped = True

    for size, held in batches:
        ids = np.arange(next_id, next_id + size, dtype=np.int64)
        keys = rng.integers(0, 6, size=(size, bands), dtype=np.uint32)
        if held:
            with index.holding_runs():
                index.add(ids, keys)
                stored.update(zip(ids.tolist(), keys, strict=True))
                assert index.size == len(stored)  # nothing leaves while held
        else:
            index.add(ids, keys)
            stored.update(zip(ids.tolist(), keys, strict=True))
        bound()
        next_id += size
        assert index.size == len(stored) <= max_units + max_units // 10
        assert index.floor == (min(stored) if dropped else 0)  # what `status` reports
        rows, found = index.lookup(queries)
        assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == _brute(stored, queries)


def test_keep_newest_drops_the_oldest_units_and_whole_runs() -> None:
    index = BandIndex(2, max_bucket=1000)
    for start, count in ((1, 1000), (1001, 150), (1151, 50)):  # each batch its own key
        key = np.array([[start, start]], dtype=np.uint32)
        index.add(np.arange(start, start + count, dtype=np.int64), np.repeat(key, count, axis=0))
    assert index.runs == 2  # 1000, and 150 + 50 merged (50 is over a quarter of 150)
    assert index.keep_newest(120) == 1080
    assert (index.size, index.runs) == (120, 1)  # the run of 1000 is gone entirely

    def found(key: int) -> set[int]:
        return set(index.lookup(np.array([[key, key]], dtype=np.uint32))[1].tolist())

    assert found(1) == set()
    assert found(1001) == set(range(1081, 1151))
    assert found(1151) == set(range(1151, 1201))
    assert index.keep_newest(500) == 0


def test_units_leaving_at_the_bound_are_said_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    index = BandIndex(2, max_units=100)
    index.add(np.arange(1, 111, dtype=np.int64), np.ones((110, 2), dtype=np.uint32))
    assert (index.size, index.floor, caplog.text) == (110, 0, "")
    index.add(np.arange(111, 121, dtype=np.int64), np.ones((10, 2), dtype=np.uint32))
    assert (index.size, index.floor) == (100, 21)
    assert "dedup.index_max_units = 100): the 20 oldest units left it" in caplog.text


# -- the packed base (dedup/packed.py) ------------------------------------------------


def _exact(stored: dict[int, np.ndarray], queries: np.ndarray, key_bits: int = 32) -> Counter:
    """Brute force on the top `key_bits` bits of each key."""
    shift = 32 - key_bits
    hits: Counter[tuple[int, int]] = Counter()
    for q, row in enumerate(queries):
        for unit_id, keys in stored.items():
            hits[(q, unit_id)] += int(np.sum((keys >> shift) == (row >> shift)))
    return +hits


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.tuples(st.integers(1, 40), st.booleans(), st.integers(1, 3000)), min_size=1, max_size=14
    ),
    max_units=st.one_of(st.none(), st.integers(20, 120)),
    seed=st.integers(0, 2**16),
)
def test_a_folded_index_answers_exactly_like_brute_force(
    batches: list[tuple[int, bool, int]], max_units: int | None, seed: int
) -> None:
    """Runs folded into the packed base (every 8 units here), ids with gaps that make the
    layout change, units dropped at the bound: look-ups equal a brute force. Keys are drawn
    from six full-width values per band, so they collide often but differ in their top bits."""
    rng = np.random.default_rng(seed)
    bands = 4
    pool = rng.integers(0, 2**32, size=(6, bands), dtype=np.uint32)
    index = BandIndex(bands, max_bucket=10_000, max_units=max_units, fold_min=8)
    stored: dict[int, np.ndarray] = {}
    next_id = 1
    queries = np.take_along_axis(pool, rng.integers(0, 6, size=(5, bands)), axis=0)
    for size, held, gap in batches:
        ids = np.arange(next_id, next_id + size, dtype=np.int64)
        keys = np.take_along_axis(pool, rng.integers(0, 6, size=(size, bands)), axis=0)
        if held:
            with index.holding_runs():
                index.add(ids, keys)
        else:
            index.add(ids, keys)
        stored.update(zip(ids.tolist(), keys, strict=True))
        if max_units and len(stored) > max_units + max_units // 10:
            for unit_id in sorted(stored)[: len(stored) - max_units]:
                del stored[unit_id]
        next_id += size + gap
        rows, found = index.lookup(queries)
        assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == _exact(stored, queries)
        assert index.size == len(stored)


def test_the_base_compares_the_top_key_bits_and_runs_every_bit() -> None:
    """Unit ids spanning 2^20 leave the base fewer key bits: keys that differ only below
    them collide there (a chance candidate for verification), never in a run."""
    index = BandIndex(2, max_bucket=1000, fold_min=4)
    first = np.array([[0xABCD0000, 0x12340000]] * 4, dtype=np.uint32)
    index.add(np.array([1, 2, 3, 1 << 20], dtype=np.int64), first)  # folded: the base
    assert index.key_bits < 32
    index.add(np.array([(1 << 20) + 1], dtype=np.int64), first[:1])  # a run
    near = first[:1] + np.uint32(1)  # differs in the lowest bit only
    rows, found = index.lookup(near)
    assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == Counter(
        {(0, unit): 2 for unit in (1, 2, 3, 1 << 20)}
    )
    stored = {1: first[0], 2: first[0], 3: first[0], 1 << 20: first[0]}
    assert _exact(stored, near, index.key_bits) == Counter(
        zip(rows.tolist(), found.tolist(), strict=True)
    )
    assert set(index.lookup(first[:1])[1].tolist()) == {1, 2, 3, 1 << 20, (1 << 20) + 1}


def test_the_table_grows_and_shrinks_with_the_base() -> None:
    """Past 2,048 units the offset table doubles (the bands are laid out again); after
    most units leave, the next fold lays them out smaller. Every unit stays findable."""
    rng = np.random.default_rng(7)
    bands = 3
    index = BandIndex(bands, max_bucket=10_000, fold_min=256)
    all_keys = rng.integers(0, 2**32, size=(20_000, bands), dtype=np.uint32)
    for start in range(0, 20_000, 500):
        ids = np.arange(start + 1, start + 501, dtype=np.int64)
        index.add(ids, all_keys[start : start + 500])
    layout = index._base.layout
    assert layout is not None and layout.prefix_bits > 8
    sample = rng.integers(0, 20_000, size=200)
    rows, found = index.lookup(all_keys[sample])
    assert set(zip(rows.tolist(), found.tolist(), strict=True)) >= {
        (row, int(unit) + 1) for row, unit in enumerate(sample)
    }
    assert index.keep_newest(1_000) == 19_000
    more = rng.integers(0, 2**32, size=(300, bands), dtype=np.uint32)
    index.add(np.arange(20_001, 20_301, dtype=np.int64), more)
    after = index._base.layout
    assert after is not None and after.prefix_bits < layout.prefix_bits
    rows, found = index.lookup(np.concatenate([all_keys[-5:], more[:5], all_keys[:5]]))
    assert set(found.tolist()) == set(range(19_996, 20_001)) | set(range(20_001, 20_006))


def test_a_crowded_bucket_in_the_base_returns_its_newest_units() -> None:
    index = BandIndex(2, max_bucket=10, fold_min=50)
    same = np.array([[7, 7]], dtype=np.uint32)
    index.add(np.arange(1, 121, dtype=np.int64), np.repeat(same, 120, axis=0))
    assert index.runs == 1  # all in the base
    _, found = index.lookup(same)
    assert sorted(found.tolist()) == sorted(list(range(111, 121)) * 2)
