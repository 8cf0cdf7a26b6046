"""The LSH look-up structure: band keys in memory, loaded from the store.

The band keys themselves are persisted in SQLite (`unit_signatures.band_keys`),
so nothing is ever recomputed from text; this module only decides how look-ups
are served. Measured before this was written (DESIGN.md): a B-tree band table
inside SQLite fell from 7,300 to 2,000 paragraphs/s between 10k and 500k
paragraphs once its index outgrew the page cache, while sorted in-memory key
arrays held 17,500 to 9,700/s, and datasketch's `MinHashLSH` costs about 8 KB
per entry. So: sorted NumPy arrays, one per band, 8 bytes per (unit, band).

Layout, a small log-structured merge tree per band:

* new units go into a dict (`pending`) keyed by (band, key); a look-up there
  is a dict probe;
* when `pending` holds `flush_units` units it is sorted into a *run*: for each
  band a sorted uint32 key array with the unit ids in the same order;
* runs are merged size-tiered (the newest run is merged into the previous one
  while it is at least a quarter of its size), so there are O(log n) runs and
  each entry is copied O(log n) times in all;
* a look-up is two `searchsorted` calls per band per run, over all of an
  article's units at once: its cost grows with the logarithm of the store, not
  with its size;
* a bucket returns at most `max_bucket` units (the most recent). A key shared by
  thousands of units is a footer or a wire story carried everywhere; the most
  recent few are enough to join its cluster or to recognise boilerplate, and
  returning all of them would make every article pay for the whole history.

Trade-off: memory is 8 bytes x bands per unit (256 B at 32 bands), about
0.5 GB at two million units; start-up sorts every band once (seconds at 100k
articles). A shared index for several machines would be a different backend
behind the same `add`/`lookup` methods (e.g. datasketch's Redis storage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Run:
    keys: U32  # (bands, n), each row sorted
    ids: npt.NDArray[np.uint32]  # (bands, n), row-aligned with keys

    @property
    def size(self) -> int:
        return int(self.keys.shape[1])


def _sorted_run(ids: I64, keys: U32) -> _Run:
    """A run from unit ids (n,) and their band keys (n, bands)."""
    by_band = np.ascontiguousarray(keys.T)
    order = np.argsort(by_band, axis=1, kind="stable")
    sorted_keys = np.take_along_axis(by_band, order, axis=1)
    sorted_ids = ids.astype(np.uint32)[order]
    return _Run(sorted_keys, sorted_ids)


def _merge(a: _Run, b: _Run) -> _Run:
    keys = np.concatenate([a.keys, b.keys], axis=1)
    ids = np.concatenate([a.ids, b.ids], axis=1)
    order = np.argsort(keys, axis=1, kind="stable")
    return _Run(np.take_along_axis(keys, order, axis=1), np.take_along_axis(ids, order, axis=1))


class BandIndex:
    """Band keys of indexed units; answers which stored units share a band with a query."""

    def __init__(self, bands: int, flush_units: int = 4096, max_bucket: int = 64) -> None:
        self.bands = bands
        self.flush_units = flush_units
        self.max_bucket = max_bucket
        self._runs: list[_Run] = []
        self._pending: dict[int, list[int]] = {}
        self._pending_units = 0
        self.max_unit_id = 0
        self.size = 0

    def add(self, ids: I64, keys: U32) -> None:
        """Index units `ids` (ascending) with band keys `keys` of shape (len(ids), bands)."""
        if len(ids) == 0:
            return
        if len(ids) >= self.flush_units:
            self._add_run(_sorted_run(ids, keys))
        else:
            pending = self._pending
            shift = np.arange(self.bands, dtype=np.int64) << 32
            composite = (keys.astype(np.int64) | shift).tolist()
            for unit_id, row in zip(ids.tolist(), composite, strict=True):
                for key in row:
                    bucket = pending.get(key)
                    if bucket is None:
                        pending[key] = [unit_id]
                    else:
                        bucket.append(unit_id)
            self._pending_units += len(ids)
            if self._pending_units >= self.flush_units:
                self._flush()
        self.size += len(ids)
        self.max_unit_id = max(self.max_unit_id, int(ids[-1]))

    def add_chunks(self, chunks: Iterable[tuple[I64, U32]]) -> None:
        """Bulk load, e.g. from `Store.units_since` at start-up."""
        id_parts: list[I64] = []
        key_parts: list[U32] = []
        for ids, keys in chunks:
            id_parts.append(ids)
            key_parts.append(keys)
        if id_parts:
            ids = np.concatenate(id_parts)
            keys = np.concatenate(key_parts)
            if len(ids) >= self.flush_units:
                self._add_run(_sorted_run(ids, keys))
                self.size += len(ids)
                self.max_unit_id = max(self.max_unit_id, int(ids[-1]))
            else:
                self.add(ids, keys)

    def _flush(self) -> None:
        if not self._pending:
            return
        unit_ids: list[int] = []
        key_list: list[int] = []
        for composite, bucket in self._pending.items():
            unit_ids.extend(bucket)
            key_list.extend([composite] * len(bucket))
        composite_arr = np.array(key_list, dtype=np.int64)
        band = composite_arr >> 32
        key = (composite_arr & 0xFFFFFFFF).astype(np.uint32)
        ids = np.array(unit_ids, dtype=np.uint32)
        # Every pending unit has exactly one key per band, so the per-band
        # groups are equally long and reshape into (bands, n).
        order = np.lexsort((key, band))
        n = self._pending_units
        self._add_run(_Run(key[order].reshape(self.bands, n), ids[order].reshape(self.bands, n)))
        self._pending = {}
        self._pending_units = 0

    def _add_run(self, run: _Run) -> None:
        self._runs.append(run)
        while len(self._runs) >= 2 and self._runs[-1].size * 4 >= self._runs[-2].size:
            newest = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], newest)

    def lookup(self, keys: U32) -> tuple[I64, I64]:
        """Pairs (query row, stored unit id), one per shared band (so repeats count hits)."""
        queries: list[I64] = []
        found: list[I64] = []
        for run in self._runs:
            for band in range(self.bands):
                row = run.keys[band]
                wanted = keys[:, band]
                lo = np.searchsorted(row, wanted, side="left")
                hi = np.searchsorted(row, wanted, side="right")
                # Equal keys sit in insertion (= id) order, so the newest are last.
                lo = np.maximum(lo, hi - self.max_bucket)
                counts = hi - lo
                total = int(counts.sum())
                if total == 0:
                    continue
                query_rows = np.repeat(np.arange(len(wanted)), counts)
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                positions = starts + np.arange(total)
                queries.append(query_rows)
                found.append(run.ids[band][positions].astype(np.int64))
        if self._pending:
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
            if q_list:
                queries.append(np.array(q_list, dtype=np.int64))
                found.append(np.array(f_list, dtype=np.int64))
        if not queries:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        return np.concatenate(queries), np.concatenate(found)

    @property
    def runs(self) -> int:
        return len(self._runs)
