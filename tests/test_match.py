"""Verify and merge (`aggregator.match`), tested directly rather than end to end.

`verify` accepts a candidate pair by estimated Jaccard or by estimated containment of
the smaller unit in the larger (with a minimum of shared shingles); `merge_passages`
joins matched units that are consecutive in the same paragraph on both sides into
one passage per stored article. Texts are chosen with an exact set-based oracle;
thresholds are probed with hand-built signatures whose Jaccard estimate is exact.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from aggregator.config import DedupConfig
from aggregator.match import Passage, UnitMatch, merge_passages, verify
from aggregator.segment import tokenise
from aggregator.signature import Signer, estimate_jaccard
from aggregator.store import CandidateRows, CandidateSignatures

CONFIG = DedupConfig(jaccard_threshold=0.5, containment_threshold=0.8, min_shared_shingles=8)
PERM = CONFIG.minhash.num_perm

WIRE = (
    "The ministry said the new missiles have a range of two thousand kilometres "
    "and can carry several warheads."
)
HOST = (
    "Officials in the capital declined to comment on Tuesday. "
    + WIRE
    + " Analysts said the test was timed to coincide with arms control talks due to open"
    " in Geneva early next week."
)
HALF = (
    "The ministry said the new missiles have a range of two thousand kilometres, "
    "according to diplomats briefed on the closed meeting in Vienna today."
)
EDITED = WIRE.replace("the new missiles", "its new missiles")


def shingles(text: str) -> set[tuple[str, ...]]:
    """The oracle: exact word 2-gram shingles, as a set."""
    words = tokenise(text)
    return {tuple(words[i : i + 2]) for i in range(len(words) - 1)}


def verify_texts(query: str, candidate: str) -> list[UnitMatch]:
    signed = Signer(CONFIG.minhash).sign([tokenise(query), tokenise(candidate)])
    rows = CandidateSignatures(
        unit_ids=np.array([500], dtype=np.int64),
        minhash=signed.minhash[1:],
        shingle_counts=signed.shingle_counts[1:],
        article_ids=np.array([9], dtype=np.int64),
    )
    one = np.array([0], dtype=np.int64)
    query_minhash, query_counts = signed.minhash[:1], signed.shingle_counts[:1]
    return verify(query_minhash, query_counts, one, one + 500, rows, 1, CONFIG)


def verify_built(equal: int, query_count: int, candidate_count: int) -> list[UnitMatch]:
    """Verify one pair of hand-built signatures agreeing on exactly `equal` permutations."""
    query = np.arange(1, PERM + 1, dtype=np.uint32)[None, :]
    candidate = query.copy()
    candidate[0, equal:] += np.uint32(1000)
    rows = CandidateSignatures(
        unit_ids=np.array([500], dtype=np.int64),
        minhash=candidate,
        shingle_counts=np.array([candidate_count], dtype=np.int64),
        article_ids=np.array([9], dtype=np.int64),
    )
    counts = np.array([query_count], dtype=np.int64)
    one = np.array([0], dtype=np.int64)
    return verify(query, counts, one, one + 500, rows, 1, CONFIG)


def test_a_short_sentence_inside_a_longer_unit_is_accepted_by_containment() -> None:
    wire, host = shingles(WIRE), shingles(HOST)
    assert wire <= host and len(wire) / len(host) < 0.4  # exact: contained, Jaccard 0.38
    (match,) = verify_texts(WIRE, HOST)
    assert (match.query, match.candidate) == (0, 0)
    assert match.similarity < CONFIG.jaccard_threshold  # accepted by containment alone


def test_a_sentence_only_half_contained_in_the_longer_unit_is_refused() -> None:
    half, host = shingles(HALF), shingles(HOST)
    assert 0.4 < len(half & host) / len(half) < 0.6 and len(half & host) >= 8
    assert verify_texts(HALF, HOST) == []


def test_a_lightly_edited_copy_is_accepted_by_jaccard_and_scored_by_its_estimate() -> None:
    a, b = shingles(WIRE), shingles(EDITED)
    assert len(a & b) / len(a | b) > 0.7
    (match,) = verify_texts(WIRE, EDITED)
    signed = Signer(CONFIG.minhash).sign([tokenise(WIRE), tokenise(EDITED)])
    assert match.similarity == float(estimate_jaccard(signed.minhash[0], signed.minhash[1]))
    assert match.similarity >= CONFIG.jaccard_threshold


@pytest.mark.parametrize(("equal", "accepted"), [(PERM // 2, True), (PERM // 2 - 1, False)])
def test_the_jaccard_threshold_is_inclusive(equal: int, accepted: bool) -> None:
    # Equal counts: containment is Jaccard's 2J/(1+J), under 0.8 at J = 0.5 exactly.
    matches = verify_built(equal, 4, 4)
    assert [m.similarity for m in matches] == ([equal / PERM] if accepted else [])


@pytest.mark.parametrize(
    ("query_count", "candidate_count", "accepted"),
    [
        (20, 60, True),  # J = 0.25: shared 16, containment exactly 0.8
        (20, 61, True),
        (20, 59, False),  # containment 0.79
        (60, 20, True),  # the smaller unit may be on either side
        (59, 20, False),
    ],
)
def test_the_containment_threshold_is_inclusive_on_either_side(
    query_count: int, candidate_count: int, accepted: bool
) -> None:
    matches = verify_built(PERM // 4, query_count, candidate_count)
    assert [m.similarity for m in matches] == ([0.25] if accepted else [])


@pytest.mark.parametrize(("candidate_count", "accepted"), [(35, True), (34, False)])
def test_containment_needs_at_least_min_shared_shingles(
    candidate_count: int, accepted: bool
) -> None:
    # J = 0.25 and 5 query shingles: containment > 1.5, shared 8 or 7.8.
    assert len(verify_built(PERM // 4, 5, candidate_count)) == (1 if accepted else 0)


def test_units_of_the_querying_article_itself_are_never_matched() -> None:
    built = np.arange(1, PERM + 1, dtype=np.uint32)[None, :]
    rows = CandidateSignatures(
        np.array([500], np.int64), built, np.array([20], np.int64), np.array([9], np.int64)
    )
    one = np.array([0], dtype=np.int64)
    counts = np.array([20], dtype=np.int64)
    assert len(verify(built, counts, one, one + 500, rows, None, CONFIG)) == 1
    assert verify(built, counts, one, one + 500, rows, 9, CONFIG) == []


# Stored units: (article, paragraph, position); unit id 100 + row, chars 10*pos .. 10*pos + 9.
STORED = [(1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 0, 3), (1, 1, 4), (2, 0, 1), (1, 0, 5)]


def stored_rows(units: list[tuple[int, int, int]]) -> CandidateRows:
    def col(values: list[int]) -> npt.NDArray[np.int64]:
        return np.array(values, dtype=np.int64)

    return CandidateRows(
        unit_ids=col([100 + i for i in range(len(units))]),
        minhash=np.zeros((len(units), PERM), dtype=np.uint32),
        shingle_counts=col([20] * len(units)),
        article_ids=col([a for a, _, _ in units]),
        source_ids=col([10 * a for a, _, _ in units]),
        published_at=[f"2026-01-0{a}T00:00:00Z" for a, _, _ in units],
        paragraph_ids=col([p for _, p, _ in units]),
        positions=col([pos for _, _, pos in units]),
        char_starts=col([10 * pos for _, _, pos in units]),
        char_ends=col([10 * pos + 9 for _, _, pos in units]),
    )


def merge(matches: list[UnitMatch], query_units: list[tuple[int, int]]) -> list[Passage]:
    """Merge against STORED; `query_units` are the new article's (paragraph, position)."""
    paragraphs = np.array([p for p, _ in query_units], dtype=np.int64)
    positions = np.array([pos for _, pos in query_units], dtype=np.int64)
    return merge_passages(matches, paragraphs, positions, stored_rows(STORED))


def spans(passages: list[Passage]) -> list[tuple[int, int, int, int, int]]:
    return [
        (
            p.other_article_id,
            p.query_first,
            p.query_last,
            p.other_first_unit_id,
            p.other_last_unit_id,
        )
        for p in passages
    ]


QUERY = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]


def test_units_consecutive_on_both_sides_merge_into_one_passage() -> None:
    matches = [UnitMatch(0, 0, 0.6), UnitMatch(1, 1, 0.8), UnitMatch(2, 2, 1.0)]
    (passage,) = merge(matches, QUERY)
    assert passage == Passage(
        other_article_id=1,
        other_source_id=10,
        other_published_at="2026-01-01T00:00:00Z",
        query_first=0,
        query_last=2,
        other_paragraph_id=0,
        other_first_unit_id=100,
        other_last_unit_id=102,
        other_char_start=0,
        other_char_end=29,
        similarity=passage.similarity,
    )
    assert passage.similarity == pytest.approx(0.8)


def test_the_order_of_the_matches_does_not_change_the_passages() -> None:
    matches = [UnitMatch(0, 0, 0.6), UnitMatch(1, 1, 0.8), UnitMatch(2, 5, 0.7)]
    expected = merge(matches, QUERY)
    assert spans(expected) == [(1, 0, 1, 100, 101), (2, 2, 2, 105, 105)]
    for order in itertools.permutations(matches):
        assert merge(list(order), QUERY) == expected


def test_a_gap_in_the_new_article_splits_the_passage() -> None:
    matches = [UnitMatch(0, 0, 0.9), UnitMatch(2, 1, 0.9)]
    assert spans(merge(matches, QUERY)) == [(1, 0, 0, 100, 100), (1, 2, 2, 101, 101)]


def test_a_gap_in_the_stored_article_splits_the_passage() -> None:
    matches = [UnitMatch(0, 0, 0.9), UnitMatch(1, 2, 0.9)]
    assert spans(merge(matches, QUERY)) == [(1, 0, 0, 100, 100), (1, 1, 1, 102, 102)]


def test_a_passage_never_spans_paragraphs_of_the_new_article() -> None:
    query = [(0, 0), (1, 1)]  # consecutive positions, but different paragraphs
    matches = [UnitMatch(0, 2, 0.9), UnitMatch(1, 3, 0.9)]
    assert spans(merge(matches, query)) == [(1, 0, 0, 102, 102), (1, 1, 1, 103, 103)]


def test_a_passage_never_spans_paragraphs_of_the_stored_article() -> None:
    matches = [UnitMatch(0, 3, 0.9), UnitMatch(1, 4, 0.9)]  # stored positions 3, 4
    assert spans(merge(matches, QUERY)) == [(1, 0, 0, 103, 103), (1, 1, 1, 104, 104)]


def test_matches_to_different_stored_articles_never_merge() -> None:
    matches = [UnitMatch(0, 0, 0.9), UnitMatch(1, 5, 0.9)]  # article 1 pos 0, article 2 pos 1
    assert spans(merge(matches, QUERY)) == [(1, 0, 0, 100, 100), (2, 1, 1, 105, 105)]


def test_the_best_stored_unit_per_query_unit_and_article_is_kept() -> None:
    matches = [UnitMatch(0, 0, 0.95), UnitMatch(1, 6, 0.6), UnitMatch(1, 1, 0.7)]
    (passage,) = merge(matches, QUERY)
    assert spans([passage]) == [(1, 0, 1, 100, 101)]
    assert passage.similarity == pytest.approx(0.825)
