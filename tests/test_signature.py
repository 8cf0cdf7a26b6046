"""Signatures: bit-identical to datasketch, deterministic, and good Jaccard estimates."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import MinHashParams
from aggregator.dedup.signature import Signer, estimate_jaccard, shingle_hash

WORDS = st.lists(st.sampled_from([f"w{i}" for i in range(60)]), min_size=1, max_size=40)


def _reference(tokens: list[str], params: MinHashParams) -> MinHash:
    k = params.shingle_words
    m = MinHash(
        num_perm=params.num_perm, seed=params.seed, scheme="affine32", hashfunc=shingle_hash
    )
    for i in range(max(1, len(tokens) - k + 1)):
        m.update(tuple(tokens[i : i + k]))
    return m


@settings(max_examples=60, deadline=None)
@given(units=st.lists(WORDS, min_size=1, max_size=6), k=st.integers(1, 4))
def test_batch_signatures_equal_datasketch_update(units: list[list[str]], k: int) -> None:
    params = MinHashParams(num_perm=64, bands=16, rows=4, seed=7, shingle_words=k)
    signed = Signer(params).sign(units)
    for row, tokens in zip(signed.minhash, units, strict=True):
        assert np.array_equal(row, _reference(tokens, params).hashvalues)


def test_signatures_load_into_leanminhash_and_agree_on_jaccard() -> None:
    signer = Signer(MinHashParams())
    a = "the ministry said the missiles have a range of two thousand kilometres".split()
    b = "the ministry said its missiles have a range of about two thousand kilometres".split()
    signed = signer.sign([a, b])
    lean_a, lean_b = signer.lean(signed.minhash[0]), signer.lean(signed.minhash[1])
    assert lean_a.jaccard(lean_b) == float(estimate_jaccard(signed.minhash[0], signed.minhash[1]))


def test_signatures_are_deterministic_across_signers() -> None:
    units = [["a", "b", "c", "d"], ["x", "y"]]
    first = Signer(MinHashParams()).sign(units)
    second = Signer(MinHashParams()).sign(units)
    assert np.array_equal(first.minhash, second.minhash)
    assert np.array_equal(first.band_keys, second.band_keys)


def test_seed_changes_signatures() -> None:
    units = [["a", "b", "c", "d"]]
    assert not np.array_equal(
        Signer(MinHashParams(seed=1)).sign(units).minhash,
        Signer(MinHashParams(seed=2)).sign(units).minhash,
    )


@settings(max_examples=40, deadline=None)
@given(common=st.integers(5, 80), only_a=st.integers(0, 80), only_b=st.integers(0, 80))
def test_jaccard_estimate_is_close_to_true_jaccard(common: int, only_a: int, only_b: int) -> None:
    shared = [f"c{i}" for i in range(common)]
    a = shared + [f"a{i}" for i in range(only_a)]
    b = shared + [f"b{i}" for i in range(only_b)]
    params = MinHashParams(num_perm=256, bands=64, rows=4, shingle_words=1)
    signed = Signer(params).sign([a, b])
    true = common / (common + only_a + only_b)
    estimate = float(estimate_jaccard(signed.minhash[0], signed.minhash[1]))
    assert abs(estimate - true) < 0.16  # > 5 standard deviations at 256 permutations
    assert list(signed.shingle_counts) == [len(a), len(b)]


def test_similarity_is_symmetric() -> None:
    signed = Signer(MinHashParams()).sign([["p", "q", "r", "s"], ["p", "q", "r", "t"]])
    assert estimate_jaccard(signed.minhash[0], signed.minhash[1]) == estimate_jaccard(
        signed.minhash[1], signed.minhash[0]
    )


def test_identical_units_share_every_band_key() -> None:
    signed = Signer(MinHashParams()).sign([["u", "v", "w"], ["u", "v", "w"], ["x", "y", "z"]])
    assert np.array_equal(signed.band_keys[0], signed.band_keys[1])
    assert not np.any(signed.band_keys[0] == signed.band_keys[2])
