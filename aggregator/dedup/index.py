"""The LSH look-up structure: band keys in memory, loaded from the store.

The band keys themselves are persisted in SQLite (`unit_signatures.band_keys`),
so nothing is ever recomputed from text; this module only decides how look-ups
are served. Measured before this was written (DESIGN.md): a B-tree band table
inside SQLite fell from 7,300 to 2,000 paragraphs/s between 10k and 500k
paragraphs once its index outgrew the page cache, while sorted in-memory key
arrays held 17,500 to 9,700/s, and datasketch's `MinHashLSH` costs about 8 KB
per entry. So: sorted NumPy arrays, one per band, 8 bytes per (unit, band).

Layout, a small log-structured merge tree per band:

* units are added a batch at a time as a *run*: for each band a sorted uint32
  key array with the unit ids in the same order, built with NumPy;
* runs are merged size-tiered (the newest run is merged into the previous one,
  in linear time, while it is at least a quarter of its size), so there are
  O(log n) runs and each entry is copied a bounded number of times on average;
* a look-up is two `searchsorted` calls per band per run. The pipeline makes
  one look-up for a whole batch of articles against the runs, which do not
  change during the batch (`holding_runs`), finds matches between articles of
  the same batch with `self_join`, and probes a small dict (`pending`) only for
  units that another process stored meanwhile. Per article, nothing here runs
  a Python loop over its keys;
* a bucket returns at most `max_bucket` units (the most recent). A key shared by
  thousands of units is a footer or a wire story carried everywhere; the most
  recent few are enough to join its cluster or to recognise boilerplate, and
  returning all of them would make every article pay for the whole history.

Trade-off: memory is 8 bytes x bands per unit (256 B at 32 bands); measured
in the soak, the daemon's RSS grows by about 0.87 KiB per unit with merge
copies and allocator slack. So the index is **bounded**: with `max_units`
set, once it holds 10% more than that, the oldest units (smallest ids, the
first stored) are dropped down to `max_units`, and a start loads only the
newest `max_units`. They stay in the database; a passage whose only earlier
copy has left the index is not found again. Start-up sorts every band once
(seconds at 100k articles). A shared index for several machines would be a
different backend behind the same `add`/`lookup` methods (e.g. datasketch's
Redis storage).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Run:
    """Per band, sorted keys and the unit ids in the same order.

    Bands are separate arrays (not one 2-D block) so that a merge can replace
    them one at a time: the peak memory of a merge is one band, not the index.
    """

    keys: list[U32]
    ids: list[U32]

    @property
    def size(self) -> int:
        return int(self.keys[0].shape[0])


def _sort_band(column: U32, unit_ids: npt.NDArray[np.uint32]) -> tuple[U32, npt.NDArray[np.uint32]]:
    """One band's keys sorted, ties in input order, with the unit ids alongside.

    Sorting (key << 32 | position) as one uint64 array is unique, so the fast
    unstable sort keeps ties in input (= id) order; measured 0.11 s against
    0.28 s for a stable argsort of two million keys.
    """
    composite = (column.astype(np.uint64) << np.uint64(32)) | np.arange(
        column.size, dtype=np.uint64
    )
    composite.sort()
    order = (composite & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return (composite >> np.uint64(32)).astype(np.uint32), unit_ids[order]


def _sorted_run(ids: I64, keys: U32) -> _Run:
    """A run from unit ids (n,) ascending and their band keys (n, bands)."""
    unit_ids = ids.astype(np.uint32)
    run = _Run([], [])
    for band in range(keys.shape[1]):
        band_keys, band_ids = _sort_band(keys[:, band], unit_ids)
        run.keys.append(band_keys)
        run.ids.append(band_ids)
    return run


def _merge(older: _Run, newer: _Run) -> _Run:
    """Merge `newer` into `older` in linear time, band by band; equal keys keep older first."""
    n = older.size + newer.size
    positions = np.arange(newer.size)
    for band in range(len(older.keys)):
        slots = np.searchsorted(older.keys[band], newer.keys[band], side="right") + positions
        take_older = np.ones(n, dtype=bool)
        take_older[slots] = False
        for parts in (older.keys, older.ids):
            merged = np.empty(n, dtype=np.uint32)
            merged[take_older] = parts[band]
            parts[band] = merged  # the old band array is released here
        older.keys[band][slots] = newer.keys[band]
        older.ids[band][slots] = newer.ids[band]
    return older


class BandIndex:
    """Band keys of indexed units; answers which stored units share a band with a query."""

    def __init__(self, bands: int, max_bucket: int = 64, max_units: int | None = None) -> None:
        self.bands = bands
        self.max_bucket = max_bucket
        self.max_units = max_units
        self._runs: list[_Run] = []
        self._pending: dict[int, list[int]] = {}
        self._pending_parts: list[tuple[I64, U32]] = []
        self.max_unit_id = 0
        self.floor = 0  # units with smaller ids were dropped (or never loaded) to the bound
        self.size = 0
        self._held = False

    def add(self, ids: I64, keys: U32) -> None:
        """Index units `ids` (ascending) with band keys `keys` of shape (len(ids), bands)."""
        if len(ids) == 0:
            return
        if self._held:
            self._add_pending(ids, keys)
        else:
            self._add_run(_sorted_run(ids, keys))
        self.size += len(ids)
        self.max_unit_id = max(self.max_unit_id, int(ids[-1]))
        self._bound()

    def add_chunks(self, chunks: Iterable[tuple[I64, U32]]) -> None:
        """Add units given in chunks, e.g. from `store.articles.units_since`, as one run.

        Chunks are split into per-band columns as they arrive, and each column
        is released once sorted, so loading needs little more than the index.
        """
        id_parts: list[I64] = []
        columns: list[list[U32]] = [[] for _ in range(self.bands)]
        for ids, keys in chunks:
            id_parts.append(ids)
            for band in range(self.bands):
                columns[band].append(np.ascontiguousarray(keys[:, band]))
        if not id_parts:
            return
        ids = np.concatenate(id_parts)
        if self._held:
            self.add(ids, np.stack([np.concatenate(c) for c in columns], axis=1))
            return
        unit_ids = ids.astype(np.uint32)
        run = _Run([], [])
        for band in range(self.bands):
            band_keys, band_ids = _sort_band(np.concatenate(columns[band]), unit_ids)
            columns[band] = []
            run.keys.append(band_keys)
            run.ids.append(band_ids)
        self._add_run(run)
        self.size += len(ids)
        self.max_unit_id = max(self.max_unit_id, int(ids[-1]))
        self._bound()

    def keep_newest(self, keep: int) -> int:
        """Drop all but the `keep` newest units (largest ids) from the runs; how many went.

        One pass over each band of each run; the filtered arrays keep their order,
        so runs stay sorted. Units waiting in `pending` are left alone.
        """
        firsts = [run.ids[0] for run in self._runs]  # band 0 holds each unit once
        total = sum(len(ids) for ids in firsts)
        if total <= keep:
            return 0
        threshold = np.partition(np.concatenate(firsts), total - keep)[total - keep]
        self.floor = max(self.floor, int(threshold))
        runs: list[_Run] = []
        for run in self._runs:
            for band in range(self.bands):
                kept = run.ids[band] >= threshold
                run.keys[band] = run.keys[band][kept]
                run.ids[band] = run.ids[band][kept]
            if run.size:
                runs.append(run)
        self._runs = runs
        dropped = total - sum(run.size for run in runs)
        self.size -= dropped
        return dropped

    def _bound(self) -> None:
        """Keep to `max_units`, dropping the oldest once 10% over (not at every add)."""
        if self.max_units is not None and not self._held:
            if self.size > self.max_units + self.max_units // 10:
                dropped = self.keep_newest(self.max_units)
                log.warning(
                    "LSH index at its bound (dedup.index_max_units = %d): the %d oldest units "
                    "left it; copies of what they say are no longer found (`status` shows "
                    "since when the index reaches)",
                    self.max_units,
                    dropped,
                )

    def _add_pending(self, ids: I64, keys: U32) -> None:
        self._pending_parts.append((ids, keys))
        shift = np.arange(self.bands, dtype=np.int64) << 32
        composite = (keys.astype(np.int64) | shift).tolist()
        pending = self._pending
        for unit_id, row in zip(ids.tolist(), composite, strict=True):
            for key in row:
                pending.setdefault(key, []).append(unit_id)

    @contextmanager
    def holding_runs(self) -> Iterator[None]:
        """Keep the runs unchanged for the block; units added meanwhile wait in `pending`.

        Look-ups against the runs made at the start of the block stay valid for
        the whole block, so a batch of articles can query the runs once.
        """
        self._held = True
        try:
            yield
        finally:
            self._held = False
            if self._pending_parts:
                parts = self._pending_parts
                self._pending, self._pending_parts = {}, []
                ids = np.concatenate([p[0] for p in parts])
                keys = np.concatenate([p[1] for p in parts])
                order = np.argsort(ids, kind="stable")
                self._add_run(_sorted_run(ids[order], keys[order]))
                self._bound()

    def _add_run(self, run: _Run) -> None:
        self._runs.append(run)
        while len(self._runs) >= 2 and self._runs[-1].size * 4 >= self._runs[-2].size:
            newest = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], newest)

    def lookup(self, keys: U32) -> tuple[I64, I64]:
        """Pairs (query row, stored unit id), one per shared band (so repeats count hits)."""
        a_rows, a_found = self.lookup_runs(keys)
        b_rows, b_found = self.lookup_pending(keys)
        return np.concatenate([a_rows, b_rows]), np.concatenate([a_found, b_found])

    def lookup_runs(self, keys: U32) -> tuple[I64, I64]:
        """`lookup` restricted to the sorted runs."""
        queries: list[I64] = []
        found: list[I64] = []
        for run in self._runs:
            for band in range(self.bands):
                row = run.keys[band]
                wanted = keys[:, band]
                lo = np.searchsorted(row, wanted, side="left")
                # Most keys are absent: look for the end of a bucket only where
                # one starts, which halves the binary searches.
                present = row[np.minimum(lo, len(row) - 1)] == wanted
                if not present.any():
                    continue
                rows_hit = np.flatnonzero(present)
                lo = lo[rows_hit]
                hi = np.searchsorted(row, wanted[rows_hit], side="right")
                # Equal keys sit in insertion (= id) order, so the newest are last.
                lo = np.maximum(lo, hi - self.max_bucket)
                counts = hi - lo
                total = int(counts.sum())
                query_rows = np.repeat(rows_hit, counts)
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                queries.append(query_rows)
                found.append(run.ids[band][starts + np.arange(total)].astype(np.int64))
        return _joined(queries, found)

    def lookup_pending(self, keys: U32) -> tuple[I64, I64]:
        """`lookup` restricted to the units added while the runs were held."""
        if not self._pending:
            return _joined([], [])
        shift = np.arange(self.bands, dtype=np.int64) << 32
        composite = (keys.astype(np.int64) | shift).tolist()
        q_list: list[int] = []
        f_list: list[int] = []
        get = self._pending.get
        for query_row, row in enumerate(composite):
            for key in row:
                bucket = get(key)
                if bucket:
                    bucket = bucket[-self.max_bucket :]
                    q_list.extend([query_row] * len(bucket))
                    f_list.extend(bucket)
        return np.array(q_list, dtype=np.int64), np.array(f_list, dtype=np.int64)

    @property
    def runs(self) -> int:
        return len(self._runs)


def self_join(keys: U32, groups: I64, max_bucket: int) -> tuple[I64, I64]:
    """Pairs (row, earlier row) of a batch that share a band key, across groups.

    `keys` is (rows, bands); `groups` gives each row's article, non-decreasing.
    Only pairs whose earlier row belongs to an earlier group are returned, at
    most `max_bucket` per key, the nearest first, like `BandIndex.lookup`.
    """
    rows, bands = keys.shape
    if rows == 0:
        return _joined([], [])
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
        return _joined([], [])
    later = np.repeat(np.arange(flat.size), before)
    offsets = np.arange(total) - np.repeat(np.cumsum(before) - before, before)
    earlier = later - 1 - offsets
    query, found = row_of[later], row_of[earlier]
    keep = groups[found] < groups[query]
    return query[keep], found[keep]


def _joined(queries: list[I64], found: list[I64]) -> tuple[I64, I64]:
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
