"""Verify: turn LSH candidates into passage matches with a score.

The band index is tuned to catch pairs well below the threshold we report at
(32 bands of 4 rows: about 50% candidate probability at Jaccard 0.42, 99% at
0.6), because a layout tuned to the reporting threshold itself misses about a
fifth of real near-duplicates. Every candidate is then checked against its
stored signature over all `num_perm` permutations. A unit pair is a match when

* its estimated Jaccard similarity is at least `jaccard_threshold`, or
* one unit is (nearly) contained in the other: estimated containment of the
  smaller in the larger at least `containment_threshold`, with at least
  `min_shared_shingles` shingles in common. This keeps a passage whose first
  sentence was merged with a short sentence of its new host paragraph.

The intersection is estimated from the Jaccard estimate J and the exact
shingle counts: |A & B| = J (|A| + |B|) / (1 + J).

Matched units that are adjacent in both articles (same paragraph on each side,
consecutive positions) are merged into one reported passage whose similarity is
the mean of its units'. Passages never span paragraphs: a paragraph is the
largest thing we can show side by side without ambiguity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.config import DedupConfig
from aggregator.store import CandidateRows, CandidateSignatures

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class UnitMatch:
    """One verified pair: a unit of the new article and a stored unit (row in CandidateRows)."""

    query: int
    candidate: int
    similarity: float


@dataclass(frozen=True, slots=True)
class Passage:
    """A run of matched units between the new article and one stored article."""

    other_article_id: int
    other_source_id: int
    other_published_at: str
    query_first: int
    query_last: int
    other_paragraph_id: int
    other_first_unit_id: int
    other_last_unit_id: int
    other_char_start: int
    other_char_end: int
    similarity: float


def verify(
    query_minhash: U32,
    query_counts: I64,
    query_rows: I64,
    candidate_ids: I64,
    rows: CandidateSignatures,
    own_article_id: int | None,
    config: DedupConfig,
) -> list[UnitMatch]:
    """Check each (query row, candidate unit id) pair against the stored signature."""
    if len(query_rows) == 0 or len(rows.unit_ids) == 0:
        return []
    pairs = np.unique(np.stack([query_rows, candidate_ids], axis=1), axis=0)
    order = np.argsort(rows.unit_ids)
    sorted_ids = rows.unit_ids[order]
    slot = np.searchsorted(sorted_ids, pairs[:, 1])
    slot = np.minimum(slot, len(sorted_ids) - 1)
    present = sorted_ids[slot] == pairs[:, 1]
    pairs, cand = pairs[present], order[slot[present]]
    if own_article_id is not None:
        foreign = rows.article_ids[cand] != own_article_id
        pairs, cand = pairs[foreign], cand[foreign]
    if len(cand) == 0:
        return []
    q = pairs[:, 0]
    jaccard = np.mean(query_minhash[q] == rows.minhash[cand], axis=1)
    nq = query_counts[q].astype(np.float64)
    nc = rows.shingle_counts[cand].astype(np.float64)
    shared = jaccard / (1.0 + jaccard) * (nq + nc)
    containment = shared / np.maximum(np.minimum(nq, nc), 1.0)
    accepted = (jaccard >= config.jaccard_threshold) | (
        (containment >= config.containment_threshold) & (shared >= config.min_shared_shingles)
    )
    return [
        UnitMatch(int(a), int(b), float(j))
        for a, b, j in zip(q[accepted], cand[accepted], jaccard[accepted], strict=True)
    ]


def relocate(
    matches: list[UnitMatch], verified: CandidateSignatures, rows: CandidateRows
) -> list[UnitMatch]:
    """Point matches made against `verified` at the same units in `rows`."""
    slot = {int(unit_id): i for i, unit_id in enumerate(rows.unit_ids)}
    return [
        UnitMatch(m.query, slot[int(verified.unit_ids[m.candidate])], m.similarity)
        for m in matches
        if int(verified.unit_ids[m.candidate]) in slot
    ]


def merge_passages(
    matches: list[UnitMatch],
    query_paragraphs: I64,
    query_positions: I64,
    rows: CandidateRows,
) -> list[Passage]:
    """Group unit matches by the other article and merge adjacent ones into passages."""
    best: dict[tuple[int, int], UnitMatch] = {}
    for m in matches:
        key = (int(rows.article_ids[m.candidate]), m.query)
        if key not in best or m.similarity > best[key].similarity:
            best[key] = m
    passages: list[Passage] = []
    run: list[UnitMatch] = []

    def close() -> None:
        if not run:
            return
        first, last = run[0].candidate, run[-1].candidate
        passages.append(
            Passage(
                other_article_id=int(rows.article_ids[first]),
                other_source_id=int(rows.source_ids[first]),
                other_published_at=rows.published_at[first],
                query_first=run[0].query,
                query_last=run[-1].query,
                other_paragraph_id=int(rows.paragraph_ids[first]),
                other_first_unit_id=int(rows.unit_ids[first]),
                other_last_unit_id=int(rows.unit_ids[last]),
                other_char_start=int(rows.char_starts[first]),
                other_char_end=int(rows.char_ends[last]),
                similarity=float(np.mean([m.similarity for m in run])),
            )
        )
        run.clear()

    for (article, _), m in sorted(best.items()):
        if run:
            prev = run[-1]
            adjacent = (
                int(rows.article_ids[prev.candidate]) == article
                and query_paragraphs[m.query] == query_paragraphs[prev.query]
                and query_positions[m.query] == query_positions[prev.query] + 1
                and rows.paragraph_ids[m.candidate] == rows.paragraph_ids[prev.candidate]
                and rows.positions[m.candidate] == rows.positions[prev.candidate] + 1
            )
            if not adjacent:
                close()
        run.append(m)
    close()
    return passages
