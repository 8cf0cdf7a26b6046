"""Pairs (query row, found unit) as band look-ups give them, and the batch self-join.

A look-up answers with two aligned arrays: the query row and the unit found,
one pair per shared band key (so a unit found in three bands appears three
times: repeats count hits). The pipeline looks up a whole batch of articles
at once, so it sorts the pairs by row once (`by_row`) and slices each
article's rows out (`rows_between`). Articles of one batch are matched with
each other by `self_join`, which needs no index: a sort of the batch's keys.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


def self_join(keys: U32, groups: I64, max_bucket: int) -> tuple[I64, I64]:
    """Pairs (row, earlier row) of a batch that share a band key, across groups.

    `keys` is (rows, bands); `groups` gives each row's article, non-decreasing.
    Only pairs whose earlier row belongs to an earlier group are returned, at
    most `max_bucket` per key, the nearest first, like `BandIndex.lookup`.
    """
    rows, bands = keys.shape
    if rows == 0:
        return joined([], [])
    composite = keys.astype(np.uint64) | (np.arange(bands, dtype=np.uint64) << np.uint64(32))
    flat = composite.ravel()
    row_of = np.repeat(np.arange(rows, dtype=np.int64), bands)
    order = np.lexsort((row_of, flat))
    flat, row_of = flat[order], row_of[order]
    start = np.ones(flat.size, dtype=bool)
    start[1:] = flat[1:] != flat[:-1]
    group_start = np.maximum.accumulate(np.where(start, np.arange(flat.size), 0))
    before = np.minimum(np.arange(flat.size) - group_start, max_bucket)
    total = int(before.sum())
    if total == 0:
        return joined([], [])
    later = np.repeat(np.arange(flat.size), before)
    offsets = np.arange(total) - np.repeat(np.cumsum(before) - before, before)
    earlier = later - 1 - offsets
    query, found = row_of[later], row_of[earlier]
    keep = groups[found] < groups[query]
    return query[keep], found[keep]


def joined(queries: list[I64], found: list[I64]) -> tuple[I64, I64]:
    if not queries:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(queries), np.concatenate(found)


# -- (query row, found unit) pairs, as look-ups give them ----------------------------


def by_row(rows: I64, found: I64) -> tuple[I64, I64]:
    """The pairs sorted by query row (stable: each row's finds keep their order)."""
    order = np.argsort(rows, kind="stable")
    return rows[order], found[order]


def rows_between(pairs: tuple[I64, I64], lo: int, hi: int) -> tuple[I64, I64]:
    """The (row - lo, found) pairs of rows lo..hi-1, from pairs sorted by row."""
    start, stop = np.searchsorted(pairs[0], [lo, hi])
    return pairs[0][start:stop] - lo, pairs[1][start:stop]


def concat_pairs(a: tuple[I64, I64], b: tuple[I64, I64]) -> tuple[I64, I64]:
    """The pairs of `a`, then those of `b`."""
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
