"""The LSH look-up structure: band keys in memory, loaded from the store.

The band keys themselves are persisted in SQLite (`unit_signatures.band_keys`),
so nothing is ever recomputed from text; this module only decides how look-ups
are served. Measured before this was written (DESIGN.md): a B-tree band table
inside SQLite fell from 7,300 to 2,000 paragraphs/s between 10k and 500k
paragraphs once its index outgrew the page cache, while sorted in-memory key
arrays held 17,500 to 9,700/s, and datasketch's `MinHashLSH` costs about 8 KB
per entry. So: sorted NumPy arrays, one per band, 8 bytes per (unit, band).

Layout: a compact *base* and a small log-structured *delta* in front of it.

* The base (`packed.PackedBands`) holds nearly every unit at 4 bytes per
  (unit, band) under a per-band offset table: about 150 B per unit at 6M
  units, against 256 B for a key and an id array (docs/benchmarks.md,
  "Compact index"). It compares the top 29 or so bits of a key, not all 32:
  the few extra chance candidates are dropped by verification.
* New units arrive a batch at a time as a *run* of the delta: for each band a
  sorted uint32 key array with the unit ids in the same order. Runs are merged
  size-tiered (the newest into the previous while it is at least a quarter of
  its size), so there are O(log n) runs. Once the delta holds a 32nd of
  the base (at least `fold_min` units) it is folded into the base in one
  linear pass per band, so the memory of the delta's wider entries stays small
  and so does the number of places a look-up searches.
* A look-up searches the base for every query of every band at once, then
  each run with two `searchsorted` calls per band. The pipeline makes one
  look-up for a whole batch of articles against base and runs, which do not
  change during the batch (`holding_runs`), finds matches between articles of
  the same batch with `self_join`, and probes a small dict (`pending`) only
  for units that another process stored meanwhile. Per article, nothing here
  runs a Python loop over its keys;
* a bucket returns at most `max_bucket` units (the most recent) from the base
  and from each run. A key shared by thousands of units is a footer or a wire
  story carried everywhere; the most recent few are enough to join its
  cluster or to recognise boilerplate, and returning all of them would make
  every article pay for the whole history.

The index is **bounded**: with `max_units` set, once it holds 10% more than
that, the oldest units (smallest ids, the first stored) are dropped down to
`max_units`, and a start loads only the newest `max_units`. They stay in the
database; a passage whose only earlier copy has left the index is not found
again, so the bound is logged and `status` shows how far back the index
reaches. Start-up sorts every band once. A shared index for several machines
would be a different backend behind the same `add`/`lookup` methods.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.dedup.packed import PackedBands
from aggregator.dedup.pairs import joined

log = logging.getLogger(__name__)

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
_EMPTY: U32 = np.zeros(0, dtype=np.uint32)


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


# The delta is folded into the base once it holds this many units and a
# 32nd of the base: a fold costs one pass over the base, and the runs (whose
# look-ups cost more per unit than the base's) stay small (docs/benchmarks.md).
FOLD_MIN = 1 << 16
FOLD_FRACTION = 32


class BandIndex:
    """Band keys of indexed units; answers which stored units share a band with a query."""

    def __init__(
        self,
        bands: int,
        max_bucket: int = 64,
        max_units: int | None = None,
        fold_min: int = FOLD_MIN,
    ) -> None:
        self.bands = bands
        self.max_bucket = max_bucket
        self.max_units = max_units
        self.fold_min = fold_min
        self._base = PackedBands(bands)
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
        self.size += len(ids)
        if not self._runs and not self._base.size and len(ids) >= self.fold_min:

            def column(band: int) -> tuple[U32, I64]:
                keys = np.concatenate(columns[band])
                columns[band] = []  # released once the band is laid out
                return keys, ids

            self._base.insert(len(ids), (int(ids[0]), int(ids[-1])), column, self._reserve())
        else:
            unit_ids = ids.astype(np.uint32)
            run = _Run([], [])
            for band in range(self.bands):
                band_keys, band_ids = _sort_band(np.concatenate(columns[band]), unit_ids)
                columns[band] = []
                run.keys.append(band_keys)
                run.ids.append(band_ids)
            self._add_run(run)
        self.max_unit_id = max(self.max_unit_id, int(ids[-1]))
        self._bound()

    def keep_newest(self, keep: int) -> int:
        """Drop all but the `keep` newest units (largest ids) from the runs; how many went.

        One pass over each band of each run; the filtered arrays keep their order,
        so runs stay sorted. Units waiting in `pending` are left alone.
        """
        firsts = [self._base.ids()] + [run.ids[0] for run in self._runs]  # each unit once
        total = sum(len(ids) for ids in firsts)
        if total <= keep:
            return 0
        threshold = np.partition(np.concatenate(firsts), total - keep)[total - keep]
        self.floor = max(self.floor, int(threshold))
        self._base.keep_from(int(threshold))
        runs: list[_Run] = []
        for run in self._runs:
            for band in range(self.bands):
                kept = run.ids[band] >= threshold
                run.keys[band] = run.keys[band][kept]
                run.ids[band] = run.ids[band][kept]
            if run.size:
                runs.append(run)
        self._runs = runs
        dropped = total - self._base.size - sum(run.size for run in runs)
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
        delta = sum(run.size for run in self._runs)
        if delta >= max(self.fold_min, self._base.size // FOLD_FRACTION):
            self._fold(delta)

    def _fold(self, count: int) -> None:
        """Move every run into the base (runs hold ids above the base's)."""
        runs, self._runs = self._runs, []
        low = min(int(run.ids[0].min()) for run in runs)
        high = max(int(run.ids[0].max()) for run in runs)

        def column(band: int) -> tuple[U32, I64]:
            keys = np.concatenate([run.keys[band] for run in runs])
            ids = np.concatenate([run.ids[band] for run in runs]).astype(np.int64)
            for run in runs:  # released as soon as the band is folded in
                run.keys[band] = run.ids[band] = _EMPTY
            return keys, ids

        self._base.insert(count, (low, high), column, self._reserve())

    def _reserve(self) -> int:
        """Base capacity to plan for: the bound, its 10% slack and a fold's worth."""
        if self.max_units is None:
            return 0
        return self.max_units + self.max_units // 10 + self.max_units // FOLD_FRACTION

    def lookup(self, keys: U32) -> tuple[I64, I64]:
        """Pairs (query row, stored unit id), one per shared band (so repeats count hits)."""
        a_rows, a_found = self.lookup_runs(keys)
        b_rows, b_found = self.lookup_pending(keys)
        return np.concatenate([a_rows, b_rows]), np.concatenate([a_found, b_found])

    def lookup_runs(self, keys: U32) -> tuple[I64, I64]:
        """`lookup` restricted to the base and the sorted runs."""
        base_rows, base_found = self._base.lookup(keys, self.max_bucket)
        queries: list[I64] = [base_rows]
        found: list[I64] = [base_found]
        if self._runs:
            # Each band's keys in order: a binary search then starts where the
            # previous one ended, which halves its cost on runs that miss the cache.
            order = np.argsort(keys, axis=0)
            ordered = np.take_along_axis(keys, order, axis=0)
        for run in self._runs:
            for band in range(self.bands):
                row = run.keys[band]
                wanted = ordered[:, band]
                lo = np.searchsorted(row, wanted, side="left")
                # Most keys are absent: look for the end of a bucket only where
                # one starts, which halves the binary searches.
                present = np.flatnonzero(row[np.minimum(lo, len(row) - 1)] == wanted)
                if not present.size:
                    continue
                lo = lo[present]
                hi = np.searchsorted(row, wanted[present], side="right")
                # Equal keys sit in insertion (= id) order, so the newest are last.
                lo = np.maximum(lo, hi - self.max_bucket)
                counts = hi - lo
                total = int(counts.sum())
                queries.append(np.repeat(order[present, band], counts))
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                found.append(run.ids[band][starts + np.arange(total)].astype(np.int64))
        return joined(queries, found)

    def lookup_pending(self, keys: U32) -> tuple[I64, I64]:
        """`lookup` restricted to the units added while the runs were held."""
        if not self._pending:
            return joined([], [])
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
        """Places a look-up searches: the base (once it holds units) and each run."""
        return len(self._runs) + (1 if self._base.size else 0)

    @property
    def key_bits(self) -> int:
        """How many top bits of a key the base compares (32: every key exactly)."""
        return self._base.key_bits

    @property
    def nbytes(self) -> int:
        """Bytes of the base, the runs and pending units (not allocator slack)."""
        runs = sum(a.nbytes for run in self._runs for a in (*run.keys, *run.ids))
        pending = sum(ids.nbytes + keys.nbytes for ids, keys in self._pending_parts)
        return self._base.nbytes + runs + pending
