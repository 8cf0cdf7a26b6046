"""Signatures: MinHash over word shingles, computed for a whole batch of units at once.

Signatures are the hot loop of ingest, so nothing here runs per shingle in
Python. Tokens are hashed once each (xxh32, memoised: news vocabulary is small
and Zipfian), shingle hashes are combined from token hashes with NumPy, and the
permutations are applied to every shingle of the batch in one array operation
followed by a segmented minimum (`np.minimum.reduceat`).

The result is bit-identical to datasketch's `affine32` scheme: the permutation
parameters are taken from `datasketch.MinHash(num_perm, seed, scheme="affine32")`
and `shingle_hash` is the `hashfunc` that makes `MinHash.update` reproduce a
row of our batch (a test holds us to that). Stored signatures therefore load
straight into `LeanMinHash` for Jaccard estimates with datasketch's own code.

Why word 2-grams by default (measured on the seed corpus' 83 sentences of 12+
words, all cross-article pairs, with US->USA, Russia->Russian Federation and one
dropped word applied to every sentence at once):

    shingle         unrelated p99.9  unrelated mean  edited p5  edited min
    1-gram -stop        0.231           0.026          0.79       0.60
    2-gram              0.105           0.0065         0.73       0.50
    3-gram              0.073           0.0012         0.64       0.46

2-grams keep edited copies well above a 0.5 threshold while chance overlap
stays near 0.1; 3-grams lose too much to a single substitution in a short
sentence. The shingle size is a stored parameter, so this can be revisited.

Band keys fold each band's `rows` values into one 32-bit key. 32 bits are
enough because look-ups are per band: a chance collision in one band only adds
a candidate that verification then drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import xxhash

from aggregator.config import SCHEME, MinHashParams

if TYPE_CHECKING:
    from datasketch import LeanMinHash

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


_STEP = np.uint64(0x9E3779B97F4A7C15)
_OUT = np.uint64(0xD6E8FEB86659FD93)
_SHIFT32 = np.uint64(32)
_MASK64 = (1 << 64) - 1
_MAX_CACHED_TOKENS = 2_000_000
# Shingles signed in one array operation: (shingles x 128) uint32 is 16 MiB.
MAX_SHINGLES = 1 << 15


class _TokenHashes(dict[str, int]):
    """Memoised 32-bit token hashes (plus one, so no token hashes to zero)."""

    def __missing__(self, token: str) -> int:
        if len(self) >= _MAX_CACHED_TOKENS:
            self.clear()
        value: int = xxhash.xxh32_intdigest(token.encode("utf-8")) + 1
        self[token] = value
        return value


_TOKENS = _TokenHashes()


def shingle_hash(shingle: Sequence[str]) -> int:
    """The 32-bit hash of one shingle (a tuple of tokens): datasketch's `hashfunc`.

    Scalar reference for the vectorised path in `Signer.sign`.
    """
    h = 0
    for token in shingle:
        h = (h * int(_STEP) + _TOKENS[token]) & _MASK64
    return ((h * int(_OUT)) & _MASK64) >> 32


def _fmix32(h: U32) -> U32:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@dataclass(frozen=True, slots=True)
class Signatures:
    """Signatures of a batch of units, row i for unit i."""

    minhash: U32  # (units, num_perm)
    band_keys: U32  # (units, bands)
    shingle_counts: npt.NDArray[np.int64]  # distinct shingles per unit


class Signer:
    """Computes datasketch-compatible MinHash signatures and LSH band keys."""

    def __init__(self, params: MinHashParams) -> None:
        # datasketch (and the SciPy it loads) is imported here, not at the top: it costs
        # about 0.7 s, which every CLI command that never signs (status, clusters,
        # sources, digest) would otherwise pay at start.
        from datasketch import MinHash

        self.params = params
        perms = MinHash(num_perm=params.num_perm, seed=params.seed, scheme=SCHEME).permutations
        self._a: U32 = np.ascontiguousarray(perms[0], dtype=np.uint32)
        self._b: U32 = np.ascontiguousarray(perms[1], dtype=np.uint32)
        rng = np.random.RandomState(params.seed ^ 0x5EED)
        mult = rng.randint(1, 2**63, size=params.rows, dtype=np.uint64)
        self._band_mult: U64 = mult | np.uint64(1)
        self._band_salt: U64 = rng.randint(1, 2**63, size=params.bands, dtype=np.uint64)

    def sign(self, units: Sequence[Sequence[str]]) -> Signatures:
        """Signatures for each token sequence in `units` (none may be empty).

        Units are signed in slices of at most `MAX_SHINGLES` shingles (a longer
        unit alone), so that the (num_perm x shingles) array stays bounded whatever
        the batch holds: the 1 MiB of text the caps let one file keep is about
        215,000 shingles, a 110 MB array signed at once (issue 13, item 5). The
        rows are the same either way.
        """
        k = self.params.shingle_words
        bounds = [0]
        shingles = 0
        for index, unit in enumerate(units):
            count = max(len(unit) - k + 1, 1)
            if shingles + count > MAX_SHINGLES and index > bounds[-1]:
                bounds.append(index)
                shingles = 0
            shingles += count
        if len(bounds) == 1:
            return self._sign(units)
        parts = [
            self._sign(units[a:b]) for a, b in zip(bounds, [*bounds[1:], len(units)], strict=True)
        ]
        return Signatures(
            np.concatenate([p.minhash for p in parts]),
            np.concatenate([p.band_keys for p in parts]),
            np.concatenate([p.shingle_counts for p in parts]),
        )

    def _sign(self, units: Sequence[Sequence[str]]) -> Signatures:
        k = self.params.shingle_words
        lengths = np.fromiter((len(u) for u in units), dtype=np.int64, count=len(units))
        if len(units) == 0:
            empty = np.zeros((0, self.params.num_perm), dtype=np.uint32)
            return Signatures(empty, np.zeros((0, self.params.bands), np.uint32), lengths)
        if lengths.min() < 1:
            raise ValueError("cannot sign an empty unit")
        tokens = _TOKENS
        flat = [tokens[t] for unit in units for t in unit]
        hashes = np.array(flat, dtype=np.uint64)
        offsets = np.zeros(len(units), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        # Shingle i of a unit starts at token i; a unit shorter than k is one shingle.
        widths = np.minimum(lengths, k)
        per_unit = lengths - widths + 1
        unit_of = np.repeat(np.arange(len(units)), per_unit)
        first = np.zeros(len(units), dtype=np.int64)
        np.cumsum(per_unit[:-1], out=first[1:])
        starts = offsets[unit_of] + (np.arange(unit_of.size) - first[unit_of])
        width_of = widths[unit_of]
        combined = np.zeros(unit_of.size, dtype=np.uint64)
        for j in range(k):
            take = width_of > j
            combined[take] = combined[take] * _STEP + hashes[starts[take] + j]
        shingles = ((combined * _OUT) >> _SHIFT32).astype(np.uint32)

        mixed = _fmix32(shingles)
        # (num_perm x shingles): each permutation's values of a unit lie side by side,
        # so the minimum runs along contiguous memory (measured 1.4x faster for the
        # permute and reduce than the (shingles x num_perm) layout; the same values).
        permuted = self._a[:, None] * mixed[None, :]
        permuted += self._b[:, None]  # in place: one array, not two
        minhash = np.ascontiguousarray(np.minimum.reduceat(permuted, first, axis=1).T)
        return Signatures(minhash, self.band_keys(minhash), _distinct_counts(shingles, unit_of))

    def band_keys(self, minhash: U32) -> U32:
        """Fold each band's `rows` values into one 32-bit key per band."""
        bands, rows = self.params.bands, self.params.rows
        blocks = minhash[:, : bands * rows].reshape(-1, bands, rows).astype(np.uint64)
        key = np.broadcast_to(self._band_salt, blocks.shape[:2]).copy()
        for j in range(rows):
            key = (key ^ blocks[:, :, j]) * self._band_mult[j]
            key ^= key >> _SHIFT32
        return (key >> _SHIFT32).astype(np.uint32)

    def lean(self, row: U32) -> LeanMinHash:
        """A datasketch LeanMinHash for one stored signature row."""
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.params.seed, hashvalues=row, scheme=SCHEME)


def _distinct_counts(shingles: U32, unit_of: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    order = np.lexsort((shingles, unit_of))
    s, g = shingles[order], unit_of[order]
    new = np.ones(s.size, dtype=bool)
    new[1:] = (s[1:] != s[:-1]) | (g[1:] != g[:-1])
    return np.bincount(g[new], minlength=int(unit_of[-1]) + 1 if unit_of.size else 0)


def estimate_jaccard(a: U32, b: U32) -> npt.NDArray[np.float64]:
    """Jaccard estimates of signature `a` against each row of `b` (or row-wise pairs)."""
    return np.asarray(np.mean(a == b, axis=-1), dtype=np.float64)
