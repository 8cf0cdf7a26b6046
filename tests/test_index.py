"""The in-memory band index answers exactly what a brute-force scan would."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.index import BandIndex


def _brute(stored: dict[int, np.ndarray], queries: np.ndarray) -> Counter[tuple[int, int]]:
    hits: Counter[tuple[int, int]] = Counter()
    for q, row in enumerate(queries):
        for unit_id, keys in stored.items():
            hits[(q, unit_id)] += int(np.sum(keys == row))
    return +hits


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    flush=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_lookup_matches_brute_force_across_pending_runs_and_merges(
    batches: list[int], flush: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    bands = 4
    index = BandIndex(bands, flush_units=flush)
    stored: dict[int, np.ndarray] = {}
    next_id = 1
    for size in batches:
        ids = np.arange(next_id, next_id + size, dtype=np.int64)
        keys = rng.integers(0, 6, size=(size, bands), dtype=np.uint32)  # small range: collisions
        index.add(ids, keys)
        stored.update(zip(ids.tolist(), keys, strict=True))
        next_id += size
    queries = rng.integers(0, 6, size=(5, bands), dtype=np.uint32)
    rows, found = index.lookup(queries)
    assert Counter(zip(rows.tolist(), found.tolist(), strict=True)) == _brute(stored, queries)
    assert index.size == len(stored)
    assert index.max_unit_id == next_id - 1


def test_runs_stay_few_as_the_index_grows() -> None:
    index = BandIndex(8, flush_units=16)
    rng = np.random.default_rng(1)
    for start in range(1, 20_000, 10):
        ids = np.arange(start, start + 10, dtype=np.int64)
        index.add(ids, rng.integers(0, 2**32, size=(10, 8), dtype=np.uint32))
    assert index.runs <= 8  # logarithmic: 20,000 units in 16-unit flushes


def test_bulk_load_equals_incremental_adds() -> None:
    rng = np.random.default_rng(2)
    ids = np.arange(1, 501, dtype=np.int64)
    keys = rng.integers(0, 50, size=(500, 4), dtype=np.uint32)
    bulk = BandIndex(4, flush_units=64)
    bulk.add_chunks([(ids[:300], keys[:300]), (ids[300:], keys[300:])])
    step = BandIndex(4, flush_units=64)
    for i in range(0, 500, 7):
        step.add(ids[i : i + 7], keys[i : i + 7])
    q = keys[:20]
    a, b = bulk.lookup(q), step.lookup(q)
    assert sorted(zip(*map(list, a), strict=True)) == sorted(zip(*map(list, b), strict=True))


def test_a_crowded_bucket_returns_only_its_most_recent_units() -> None:
    index = BandIndex(2, flush_units=50, max_bucket=10)
    same = np.array([[7, 7]], dtype=np.uint32)
    for unit_id in range(1, 121):  # 120 units share every key: runs and pending both hold some
        index.add(np.array([unit_id], dtype=np.int64), same)
    _, found = index.lookup(same)
    newest = set(found.tolist())
    assert max(newest) == 120
    assert len(newest) <= 10 * (index.runs + 1)  # each run and the pending dict give <= 10
    assert not newest & set(range(1, 50)), "the oldest units are not returned"
