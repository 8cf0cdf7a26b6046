"""The band index's compact base: one uint32 per (unit, band) under an offset table.

What it decides, and why. The index spends its memory on one entry per unit and
band (32 per unit by default). As a key array and an id array that is 256 B
per unit before merge copies (the daemon measured about 870 B), so a window of
6M units (10k feeds, three days) would need 5 GiB. Here an entry is 4 bytes:

* the key's top P bits are not stored: they pick a bucket in an offset table
  (per band, 2^P + 1 positions), P chosen so that a bucket holds 4 to 8
  entries on average (4 x 2^P / n bytes of table per entry);
* the entry holds the key's next R bits and the unit's *slot* (its id minus
  the layout's `base`, S bits): ``rest << S | slot``. S is the width of the
  id range held, R what is left of 32 bits.

So P + R bits of each key are compared. When that is fewer than 32, keys that
differ only in their low bits collide: a chance candidate, which verification
against the stored signature drops like any other LSH chance candidate. At 6M
units P = 20, S = 23 and R = 9: 29 bits, about 0.011 chance entries per
looked-up key. Figures: docs/benchmarks.md, "Compact index".

A band's entries are sorted by (bucket, rest, slot), so the units sharing a key
are contiguous and the newest is last, as in `index._Run`. A look-up gathers
each query's bucket bounds from the table and binary-searches inside the
bucket, for every query of every band at once (bands are segments of one flat
array), so its cost follows the bucket's length, not the number of units.

The base changes rarely: `BandIndex` collects new units in small sorted runs
and folds them in here once they reach a fraction of the base (`insert`, one
linear pass per band, new ids always above the held ones). Units leave from
the oldest (`keep_from`). When ids outgrow the slot or the table should grow
(n doubled), the bands are laid out again, one sort per band.
"""

from __future__ import annotations

import logging
import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

MIN_PREFIX_BITS = 8
MAX_PREFIX_BITS = 24
MAX_SLOT_BITS = 31
CHUNK = 1 << 20  # entries re-encoded at once when a band is laid out again

# The keys and ids of one band, asked for band by band so a caller can release each.
BandColumns = Callable[[int], tuple[U32, I64]]


@dataclass(frozen=True, slots=True)
class Layout:
    """How a key and a unit id are split between the offset table and an entry."""

    prefix_bits: int
    rest_bits: int
    slot_bits: int
    base: int

    @property
    def key_bits(self) -> int:
        """How many top bits of a key take part in a look-up."""
        return self.prefix_bits + self.rest_bits

    @property
    def buckets(self) -> int:
        return 1 << self.prefix_bits

    def split(self, keys: npt.NDArray[np.uint32 | np.int64]) -> tuple[I64, I64]:
        """Each key's bucket and the rest of its compared bits."""
        wide = keys.astype(np.int64)
        bucket = wide >> (32 - self.prefix_bits)
        rest = (wide >> (32 - self.key_bits)) & ((1 << self.rest_bits) - 1)
        return bucket, rest

    def encode(self, keys: U32, ids: I64) -> tuple[I64, U32]:
        """Bucket and packed entry of each (key, unit id)."""
        bucket, rest = self.split(keys)
        packed = (rest << self.slot_bits) | (ids.astype(np.int64) - self.base)
        return bucket, packed.astype(np.uint32)

    def sort_key(self, keys: U32, ids: I64) -> U64:
        """(bucket << 32 | entry): a band's entries in order, and where each bucket starts."""
        bucket, packed = self.encode(keys, ids)
        return (bucket.astype(np.uint64) << np.uint64(32)) | packed

    def decode(self, entries: U32, offsets: U32, first: int = 0) -> tuple[U32, I64]:
        """Keys (to `key_bits`, low bits zero) and unit ids of entries at positions first, ..."""
        positions = np.arange(first, first + len(entries), dtype=np.int64)
        bucket = np.searchsorted(offsets, positions, side="right").astype(np.int64) - 1
        rest = entries.astype(np.int64) >> self.slot_bits
        keys = ((bucket << self.rest_bits) | rest) << (32 - self.key_bits)
        ids = (entries & np.uint32((1 << self.slot_bits) - 1)).astype(np.int64) + self.base
        return keys.astype(np.uint32), ids


def layout_for(units: int, low_id: int, high_id: int, key_bits: int = 32) -> Layout:
    """The layout for `units` units with ids in [low_id, high_id], at most `key_bits` compared."""
    slot_bits = max(1, (high_id - low_id).bit_length())
    if slot_bits > MAX_SLOT_BITS:
        raise ValueError(f"unit ids {low_id}..{high_id} span more than 2^{MAX_SLOT_BITS}")
    prefix_bits = min(max(units.bit_length() - 3, MIN_PREFIX_BITS), MAX_PREFIX_BITS, key_bits)
    rest_bits = max(0, min(32 - slot_bits, key_bits - prefix_bits))
    return Layout(prefix_bits, rest_bits, slot_bits, low_id)


def lower_bound(entries: U32, lo: I64, hi: I64, target: I64) -> I64:
    """Per query, the first position in [lo, hi) whose entry is >= target (hi if none).

    A binary search run for all queries together; each step keeps only the
    queries whose range is not yet empty, so short buckets finish first.
    """
    pos = lo.copy()
    left = hi - lo
    active = np.flatnonzero(left > 0)
    while active.size:
        start, span = pos[active], left[active]
        half = span >> 1
        probe = start + half
        right = entries[probe] < target[active]
        pos[active] = np.where(right, probe + 1, start)
        span = np.where(right, span - half - 1, half)
        left[active] = span
        active = active[span > 0]
    return pos


class PackedBands:
    """Every band's entries in one flat array: band b at [b * capacity, b * capacity + size)."""

    def __init__(self, bands: int) -> None:
        self.bands = bands
        self.layout: Layout | None = None
        self.size = 0
        self.low_id = 0  # no unit below this is held
        self._capacity = 0
        self._buffer: mmap.mmap | None = None
        self._entries: U32 = np.zeros(0, dtype=np.uint32)
        self._offsets: U32 = np.zeros((bands, 1), dtype=np.uint32)

    @property
    def nbytes(self) -> int:
        """Bytes in use (entries held and offset tables; unused capacity is never touched)."""
        return self.size * self.bands * 4 + int(self._offsets.nbytes)

    @property
    def key_bits(self) -> int:
        return 32 if self.layout is None else self.layout.key_bits

    def band(self, band: int) -> U32:
        start = band * self._capacity
        return self._entries[start : start + self.size]

    def ids(self) -> I64:
        """The unit ids held (band 0 holds each unit once), in no particular order."""
        if self.layout is None or not self.size:
            return np.zeros(0, dtype=np.int64)
        slots = self.band(0) & np.uint32((1 << self.layout.slot_bits) - 1)
        return slots.astype(np.int64) + self.layout.base

    def insert(
        self, count: int, ids: tuple[int, int], columns: BandColumns, reserve: int = 0
    ) -> None:
        """Add `count` units with ids in `ids` (first, last), all above those held.

        `columns(band)` gives the new units' keys and ids in that band, in any
        order. The layout is kept when the new ids fit its slot and the table
        still suits the size (one merge pass per band); otherwise every band is
        laid out again. `reserve` is the capacity to plan for (the index's bound).
        """
        if count == 0:
            return
        total = self.size + count
        low, high = (self.low_id if self.size else ids[0]), ids[1]
        current = self.layout
        wanted = layout_for(total, low, high, self.key_bits)
        self._ensure_capacity(total, reserve)
        if current is None or not self.size:
            self._rebuild(wanted, columns, count)
        else:
            # The table may stay one step larger than the size asks (after drops).
            table_fits = wanted.prefix_bits <= current.prefix_bits <= wanted.prefix_bits + 1
            room = 1 << current.slot_bits
            if table_fits and high - current.base < room:
                self._merge(current, columns, count)
            elif table_fits and high - low < room:
                self._merge(self._rebase(current, low), columns, count)
            else:
                self._rebuild(wanted, columns, count)
        self.low_id = low

    def keep_from(self, first_id: int) -> int:
        """Drop the units with ids below `first_id`; how many went."""
        if self.layout is None or not self.size or first_id <= self.low_id:
            return 0
        threshold = first_id - self.layout.base
        slot_mask = np.uint32((1 << self.layout.slot_bits) - 1)
        kept_count = self.size
        for band in range(self.bands):
            entries = self.band(band)
            kept = (entries & slot_mask) >= threshold
            positions = np.zeros(len(kept) + 1, dtype=np.uint32)
            np.cumsum(kept, dtype=np.uint32, out=positions[1:])
            self._offsets[band] = positions[self._offsets[band]]
            kept_count = int(positions[-1])
            start = band * self._capacity
            self._entries[start : start + kept_count] = entries[kept]
            self._release(start + kept_count, start + self.size)
        dropped = self.size - kept_count
        self.size = kept_count
        self.low_id = first_id
        return dropped

    def lookup(self, keys: U32, max_bucket: int) -> tuple[I64, I64]:
        """Pairs (query row, unit id), one per band whose key a held unit shares.

        At most `max_bucket` per (query row, band), the newest; keys are compared
        on their top `key_bits` bits.
        """
        layout = self.layout
        if layout is None or not self.size or len(keys) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        bucket, rest = layout.split(keys)
        table = self._offsets.ravel()
        row_start = np.arange(self.bands, dtype=np.int64) * (layout.buckets + 1)
        segment = np.arange(self.bands, dtype=np.int64) * self._capacity
        slot = (bucket + row_start).ravel()
        lo = table[slot].astype(np.int64) + np.tile(segment, len(keys))
        hi = table[slot + 1].astype(np.int64) + np.tile(segment, len(keys))
        rest = rest.ravel()
        first = lower_bound(self._entries, lo, hi, rest << layout.slot_bits)
        inside = np.flatnonzero(first < hi)
        entry_rest = self._entries[first[inside]].astype(np.int64) >> layout.slot_bits
        hits = inside[entry_rest == rest[inside]]
        stop = lower_bound(
            self._entries, first[hits], hi[hits], (rest[hits] + 1) << layout.slot_bits
        )
        start = np.maximum(first[hits], stop - max_bucket)
        counts = stop - start
        total = int(counts.sum())
        positions = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(total)
        slot_mask = np.uint32((1 << layout.slot_bits) - 1)
        found = (self._entries[positions] & slot_mask).astype(np.int64) + layout.base
        return np.repeat(hits // self.bands, counts), found

    # -- changing the layout -------------------------------------------------------

    def _ensure_capacity(self, total: int, reserve: int) -> None:
        """Room for `total` units per band. The entries live in an anonymous mapping:
        its pages are touched only as they are filled, and handed back when units leave."""
        if total <= self._capacity:
            return
        capacity = max(total, reserve, self._capacity * 3 // 2)
        size = capacity * self.bands * 4
        private = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
        buffer = mmap.mmap(-1, size, flags=private) if private else mmap.mmap(-1, size)
        grown: U32 = np.frombuffer(buffer, dtype=np.uint32)
        for band in range(self.bands):
            grown[band * capacity : band * capacity + self.size] = self.band(band)
        self._buffer, self._entries, self._capacity = buffer, grown, capacity

    def _release(self, first: int, end: int) -> None:
        """Give the whole pages of entries [first, end) back to the system."""
        if self._buffer is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = -(-first * 4 // mmap.PAGESIZE) * mmap.PAGESIZE
        stop = end * 4 // mmap.PAGESIZE * mmap.PAGESIZE
        if stop > start:
            self._buffer.madvise(mmap.MADV_DONTNEED, start, stop - start)

    def _merge(self, layout: Layout, columns: BandColumns, count: int) -> None:
        """Insert new entries band by band: one bucket search and one pass per band."""
        for band in range(self.bands):
            keys, ids = columns(band)
            bucket, packed = layout.encode(keys, ids)
            composite = (bucket.astype(np.uint64) << np.uint64(32)) | packed
            composite.sort()
            bucket = (composite >> np.uint64(32)).astype(np.int64)
            wanted = (composite & np.uint64(0xFFFFFFFF)).astype(np.int64)
            table = self._offsets[band]
            held = self.band(band)
            at = lower_bound(held, table[bucket].astype(np.int64), table[bucket + 1], wanted)
            start = band * self._capacity
            merged = self._entries[start : start + self.size + len(wanted)]
            new_at = at + np.arange(len(wanted))
            keep = np.ones(len(merged), dtype=bool)
            keep[new_at] = False
            merged[keep] = held.copy()  # `held` is the start of `merged`
            merged[new_at] = wanted
            added = np.bincount(bucket, minlength=layout.buckets).cumsum()
            np.add(table[1:], added, out=table[1:], casting="unsafe")
        self.size += count

    def _rebase(self, layout: Layout, low: int) -> Layout:
        """Count slots from `low` (no held id is below it): a subtraction per entry."""
        shift = np.uint32(low - layout.base)
        for band in range(self.bands):
            start = band * self._capacity
            self._entries[start : start + self.size] -= shift
        self.layout = Layout(layout.prefix_bits, layout.rest_bits, layout.slot_bits, low)
        return self.layout

    def _rebuild(self, layout: Layout, columns: BandColumns, count: int) -> None:
        """Lay every band out again under `layout`, with the new units: one sort per band.

        Held entries are re-encoded a chunk at a time, so the memory this takes
        beyond the base is one band's sort keys (8 bytes per unit) and a chunk.
        """
        began = time.perf_counter()
        old, held = self.layout, self.size
        offsets, total = self._offsets, held + count
        self._offsets = np.zeros((self.bands, layout.buckets + 1), dtype=np.uint32)
        for band in range(self.bands):
            keys, ids = columns(band)
            composite = np.empty(total, dtype=np.uint64)
            entries = self.band(band)
            for first in range(0, held if old is not None else 0, CHUNK):
                assert old is not None
                chunk = entries[first : first + CHUNK]
                composite[first : first + len(chunk)] = layout.sort_key(
                    *old.decode(chunk, offsets[band], first)
                )
            for first in range(0, count, CHUNK):
                end = min(first + CHUNK, count)
                composite[held + first : held + end] = layout.sort_key(
                    keys[first:end], ids[first:end]
                )
            composite.sort()
            start = band * self._capacity
            sizes = np.zeros(layout.buckets, dtype=np.int64)
            for first in range(0, total, CHUNK):
                part = composite[first : first + CHUNK]
                self._entries[start + first : start + first + len(part)] = part  # low 32 bits
                sizes += np.bincount(part >> np.uint64(32), minlength=layout.buckets)
            self._offsets[band, 1:] = sizes.cumsum()
        if old is not None and held:
            log.info(
                "band index laid out again for %d units (%d key bits) in %.1f s",
                total,
                layout.key_bits,
                time.perf_counter() - began,
            )
        self.size = total
        self.layout = layout
