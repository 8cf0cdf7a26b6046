"""Verify and merge (`aggregator.dedup.match`), tested directly rather than end to end.

`verify` accepts a candidate pair by estimated Jaccard or by estimated containment of
the smaller unit in the larger (with a minimum of shared shingles); `merge_passages`
joins matched units that touch (overlap, or are adjacent) within one paragraph on both
sides into one passage per stored article, on character spans; a caller that gives no
spans for the new article gets consecutive positions as adjacency there. Texts are
chosen with an exact set-based oracle; thresholds are probed with hand-built signatures
whose Jaccard estimate is exact.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from aggregator.config import DedupConfig
from aggregator.dedup.match import ADJACENT_GAP, Passage, UnitMatch, merge_passages, verify
from aggregator.dedup.segment import segment_paragraph
from aggregator.dedup.signature import Signer, estimate_jaccard
from aggregator.sentences import split_sentences, tokenise
from aggregator.storage.articles import CandidateRows, CandidateSignatures

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


# -- found whatever the neighbours (issue 11): through segmentation and verify ------------

# An exact copy of two sentences (9 and 10 words) between other sentences: merged
# with different neighbours on each side, the unit pairs fall below both thresholds.
TWO_COPIED = (
    "The convoy reached the northern border crossing on Friday. "
    "Aid workers said the road beyond it was still closed."
)
FIRST_HOST = f"Aid agencies had waited weeks. {TWO_COPIED} Nobody was hurt in the attack."
SECOND_HOST = (
    f"Rain fell across the region overnight. {TWO_COPIED} "
    "More convoys are due next week, officials said."
)


def verify_paragraphs(
    original: str, copy: str, sentence_words: int | None = None
) -> list[tuple[str, str, float]]:
    """Every unit of `copy` verified against every unit of `original`: (copy text,
    original text, similarity) of the accepted pairs."""
    words = {} if sentence_words is None else {"sentence_words": sentence_words}
    stored = list(segment_paragraph(original, 0, CONFIG.min_unit_words, **words))
    query = list(segment_paragraph(copy, 0, CONFIG.min_unit_words, **words))
    signed = Signer(CONFIG.minhash).sign([u.tokens for u in stored + query])
    n = len(stored)
    rows = CandidateSignatures(
        unit_ids=np.arange(500, 500 + n, dtype=np.int64),
        minhash=signed.minhash[:n],
        shingle_counts=signed.shingle_counts[:n],
        article_ids=np.full(n, 9, dtype=np.int64),
    )
    query_rows = np.repeat(np.arange(len(query), dtype=np.int64), n)
    candidates = np.tile(np.arange(500, 500 + n, dtype=np.int64), len(query))
    matches = verify(
        signed.minhash[n:], signed.shingle_counts[n:], query_rows, candidates, rows, 1, CONFIG
    )
    return [
        (
            copy[query[m.query].start : query[m.query].end],
            original[stored[m.candidate].start : stored[m.candidate].end],
            m.similarity,
        )
        for m in matches
    ]


def test_an_exact_copy_between_other_neighbours_is_found_sentence_by_sentence() -> None:
    assert verify_paragraphs(FIRST_HOST, SECOND_HOST, sentence_words=0) == []  # merged only
    found = verify_paragraphs(FIRST_HOST, SECOND_HOST)
    first, second = (TWO_COPIED[slice(*span)] for span in split_sentences(TWO_COPIED))
    assert (first, first, 1.0) in found
    assert (second, second, 1.0) in found
    # Identical tokens, identical signatures: a candidate in every band, whatever the layout.
    assert len(tokenise(first)) == 9


# A boundary lost by an edit: "trail at night. reportedly ..." is one sentence to the
# segmenter, so the copy's unit holds two of the original's units.
FIRST = "The rebels moved the hostages along a narrow mountain trail at night in small groups."
SECOND = (
    "Reportedly they were taken by truck to a small village near the Turkish border on Tuesday."
)
THIRD = "The army said it had no information about the hostages or the route they took."
LOST = f"{FIRST} {SECOND[0].lower()}{SECOND[1:]}"


def test_a_unit_that_lost_a_boundary_is_caught_by_containment() -> None:
    (match,) = verify_texts(FIRST, LOST)  # the merged unit against the original sentence
    assert match.similarity < CONFIG.jaccard_threshold  # accepted by containment alone
    found = verify_paragraphs(f"{FIRST} {SECOND} {THIRD}", f"{LOST} {THIRD}")
    # ...and the pieces cut at the lost boundary are the original sentences exactly.
    assert (FIRST, FIRST, 1.0) in found
    assert (LOST[len(FIRST) + 1 :], SECOND, 1.0) in found
    assert (LOST, FIRST, match.similarity) in found


# Stored units: (article, paragraph, position); unit id 100 + row, chars 10*pos .. 10*pos + 9.
STORED = [(1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 0, 3), (1, 1, 4), (2, 0, 1), (1, 0, 5)]


def stored_rows(units: list[tuple[int, int, int]]) -> CandidateRows:
    return spanned_rows(
        [(a, p, 10 * pos, 10 * pos + 9) for a, p, pos in units],
        positions=[pos for _, _, pos in units],
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


# -- overlapping units: passages are merged on character spans --------------------------

# Stored: (article, paragraph, start, end); unit id 100 + row. Article 1, paragraph 7
# holds a merged unit (300-420) and its two sentences, then the next merged unit.
SPANNED = [
    (1, 7, 300, 420),
    (1, 7, 300, 350),
    (1, 7, 352, 420),
    (1, 7, 422, 500),
    (1, 8, 0, 80),
    (2, 0, 0, 50),
]
# The new article, in `segment`'s order: merged unit 0-120 and its sentences, the next
# merged unit, a unit of another paragraph. (paragraph, start, end)
QUERY_SPANS = [(0, 0, 120), (0, 0, 50), (0, 52, 120), (0, 122, 200), (1, 0, 80)]


def spanned_rows(
    units: list[tuple[int, int, int, int]], positions: list[int] | None = None
) -> CandidateRows:
    def col(values: list[int]) -> npt.NDArray[np.int64]:
        return np.array(values, dtype=np.int64)

    return CandidateRows(
        outlets=[None] * len(units),
        unit_ids=col([100 + i for i in range(len(units))]),
        minhash=np.zeros((len(units), PERM), dtype=np.uint32),
        shingle_counts=col([20] * len(units)),
        article_ids=col([u[0] for u in units]),
        source_ids=col([10 * u[0] for u in units]),
        published_at=[f"2026-01-0{u[0]}T00:00:00Z" for u in units],
        paragraph_ids=col([u[1] for u in units]),
        # Unless given, deliberately meaningless: adjacency is decided on spans.
        positions=col(positions if positions is not None else list(range(len(units)))),
        char_starts=col([u[2] for u in units]),
        char_ends=col([u[3] for u in units]),
    )


def merge_spans(
    matches: list[UnitMatch], query: list[tuple[int, int, int]] = QUERY_SPANS
) -> list[Passage]:
    def col(i: int) -> npt.NDArray[np.int64]:
        return np.array([u[i] for u in query], dtype=np.int64)

    return merge_passages(
        matches,
        col(0),
        np.arange(len(query), dtype=np.int64),
        spanned_rows(SPANNED),
        query_starts=col(1),
        query_ends=col(2),
    )


def test_overlapping_unit_matches_merge_into_one_passage_spanning_them() -> None:
    matches = [
        UnitMatch(0, 1, 0.55),  # merged unit -> a stored sentence (by containment)
        UnitMatch(1, 1, 1.0),  # sentence -> the same sentence
        UnitMatch(2, 0, 0.6),  # sentence -> the stored merged unit
        UnitMatch(3, 3, 0.9),  # the next merged unit, 2 characters on, on both sides
    ]
    (passage,) = merge_spans(matches)
    assert passage == Passage(
        other_article_id=1,
        other_source_id=10,
        other_published_at="2026-01-01T00:00:00Z",
        query_first=0,  # starts first (0), the longer of the two starting there
        query_last=3,  # ends last (200)
        other_paragraph_id=7,
        other_first_unit_id=100,
        other_last_unit_id=103,
        other_char_start=300,
        other_char_end=500,
        similarity=passage.similarity,
    )
    assert passage.similarity == pytest.approx((0.55 + 1.0 + 0.6 + 0.9) / 4)
    for order in itertools.permutations(matches):
        assert merge_spans(list(order)) == [passage]


def test_the_span_of_a_passage_comes_from_its_first_and_last_units() -> None:
    # Only the two sentences match: the passage is 0-120 and 300-420, and
    # query_first/query_last are the sentences, not the merged unit around them.
    (passage,) = merge_spans([UnitMatch(1, 1, 1.0), UnitMatch(2, 2, 0.8)])
    assert (passage.query_first, passage.query_last) == (1, 2)
    assert (passage.other_char_start, passage.other_char_end) == (300, 420)
    assert (passage.other_first_unit_id, passage.other_last_unit_id) == (101, 102)


def test_spans_not_positions_decide_adjacency() -> None:
    # Consecutive positions, but 10 characters apart in the new article: two passages.
    query = [(0, 0, 50), (0, 60, 120)]
    matches = [UnitMatch(0, 1, 1.0), UnitMatch(1, 2, 1.0)]
    assert spans(merge_spans(matches, query)) == [(1, 0, 0, 101, 101), (1, 1, 1, 102, 102)]
    # ADJACENT_GAP characters apart: one.
    query = [(0, 0, 50), (0, 50 + ADJACENT_GAP, 120)]
    assert spans(merge_spans(matches, query)) == [(1, 0, 1, 101, 102)]
    # Adjacent in the new article, but the stored units are 72 characters apart.
    assert len(merge_spans([UnitMatch(1, 1, 1.0), UnitMatch(2, 3, 1.0)])) == 2


def test_a_match_touching_two_runs_joins_them() -> None:
    # A and B overlap in the new article but their stored units do not touch; C
    # touches both of theirs (300-420 against 300-350 and 422-500): one passage.
    query = [(0, 0, 100), (0, 10, 60), (0, 60, 110)]
    matches = [UnitMatch(0, 1, 1.0), UnitMatch(1, 3, 1.0), UnitMatch(2, 0, 1.0)]
    assert len(merge_spans(matches[:2], query)) == 2
    for order in itertools.permutations(matches):
        (passage,) = merge_spans(list(order), query)
        assert (passage.query_first, passage.query_last) == (0, 2)
        assert (passage.other_char_start, passage.other_char_end) == (300, 500)


def test_overlapping_matches_never_merge_across_paragraphs_or_articles() -> None:
    matches = [UnitMatch(0, 0, 0.9), UnitMatch(1, 4, 0.9), UnitMatch(2, 5, 0.9)]
    assert spans(merge_spans(matches)) == [
        (1, 0, 0, 100, 100),
        (1, 1, 1, 104, 104),  # paragraph 8 of the stored article
        (2, 2, 2, 105, 105),
    ]
    # Paragraph 1 of the new article, at the same offsets: its own passage.
    matches = [UnitMatch(1, 1, 0.9), UnitMatch(4, 2, 0.9)]
    assert spans(merge_spans(matches)) == [(1, 1, 1, 101, 101), (1, 4, 4, 102, 102)]
