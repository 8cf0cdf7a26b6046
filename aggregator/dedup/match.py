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

Matched units that touch in both articles (overlap, or only the whitespace
between two sentences apart, within one paragraph on each side) are merged into
one reported passage whose similarity is the mean of its units'. Units of one
paragraph overlap (a merged run of sentences and the sentences inside it,
segment.py), so this is decided on character spans, not on unit positions.
Passages never span paragraphs: a paragraph is the largest thing we can show
side by side without ambiguity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.config import DedupConfig
from aggregator.storage.articles import CandidateRows, CandidateSignatures

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
    # The distinct (row, candidate) pairs in (row, candidate) order: a sort of the
    # two columns, not np.unique(axis=0), which sorts rows as opaque byte strings
    # (half of verify's time, measured).
    order = np.lexsort((candidate_ids, query_rows))
    rows_sorted, cands_sorted = query_rows[order], candidate_ids[order]
    distinct = np.ones(len(order), dtype=bool)
    distinct[1:] = (rows_sorted[1:] != rows_sorted[:-1]) | (cands_sorted[1:] != cands_sorted[:-1])
    pairs = np.stack([rows_sorted[distinct], cands_sorted[distinct]], axis=1)
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
    equal = np.count_nonzero(query_minhash[q] == rows.minhash[cand], axis=1)
    jaccard = equal / query_minhash.shape[1]
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


# Two units of one paragraph are adjacent when at most this many characters
# (the whitespace between two sentences) separate them; any sentence between
# them takes at least four ("x. Go! Y").
ADJACENT_GAP = 3


def merge_passages(
    matches: list[UnitMatch],
    query_paragraphs: I64,
    query_positions: I64,
    rows: CandidateRows,
    *,
    query_starts: I64 | None = None,
    query_ends: I64 | None = None,
) -> list[Passage]:
    """Group unit matches by the other article and merge touching ones into passages.

    Per stored article only the best match of each query unit is kept (the
    higher similarity; on a tie, the earlier candidate row). Two matches join
    one passage when their units touch (overlap, or at most `ADJACENT_GAP`
    characters apart) within one paragraph in both articles; a passage is a
    set of matches whose units, on each side, make one stretch of text. Units
    of a paragraph overlap (a merged unit and the sentences inside it), so
    adjacency is decided on character spans, never on positions.

    `query_starts` and `query_ends` are the query units' character spans. A
    caller that does not pass them gets the old rule on the query side
    (consecutive positions are adjacent), which is exact only for units that do
    not overlap.

    Of each passage, `query_first` is the unit that starts first (the longer on
    a tie) and `query_last` the one that ends last (the later on a tie), so
    their start and end are the passage's span in the new article; with units
    ordered by start, as `segment` returns them, query_first <= query_last.
    Units listed between the two may reach beyond that span, so the span is
    theirs, not a minimum and maximum over the range. On the stored side the
    span runs from the smallest start to the largest end, and
    `other_first_unit_id` / `other_last_unit_id` are the units holding them.
    The similarity is the mean over the passage's matches.
    """
    if query_starts is None or query_ends is None:
        query_starts = np.asarray(query_positions, dtype=np.int64) * 10
        query_ends = query_starts + 9  # consecutive positions 1 apart, others 11 or more
    best: dict[tuple[int, int], UnitMatch] = {}
    for m in matches:
        key = (int(rows.article_ids[m.candidate]), m.query)
        held = best.get(key)
        if held is None or (m.similarity, -m.candidate) > (held.similarity, -held.candidate):
            best[key] = m
    by_article: dict[int, list[_Side]] = {}
    for (article, query), m in best.items():
        c = m.candidate
        by_article.setdefault(article, []).append(
            _Side(
                int(query_paragraphs[query]),
                int(query_starts[query]),
                int(query_ends[query]),
                int(rows.paragraph_ids[c]),
                int(rows.char_starts[c]),
                int(rows.char_ends[c]),
                m,
            )
        )
    passages: list[Passage] = []
    for article in sorted(by_article):
        passages.extend(_passage(run, rows) for run in _runs(by_article[article]))
    return passages


@dataclass(frozen=True, slots=True)
class _Side:
    """One match with both units' places: (paragraph, start, end) in each article."""

    paragraph: int
    start: int
    end: int
    other_paragraph: int
    other_start: int
    other_end: int
    match: UnitMatch


@dataclass(slots=True)
class _Run:
    """Matches that touch in both articles, and the span each side covers."""

    paragraph: int
    start: int
    end: int
    other_paragraph: int
    other_start: int
    other_end: int
    members: list[_Side]


def _runs(sides: list[_Side]) -> list[list[_Side]]:
    """Connected sets of matches (of one stored article) that touch in both articles.

    A sweep over the matches in reading order of the new article (by start):
    a run stays open while the sweep has not passed its end there by more
    than `ADJACENT_GAP`, so every open run touches the current match in the
    new article; the match joins each open run whose span in the stored
    article it touches, and the runs it joins become one. Spans grow only by
    touching members, so a run covers one stretch of text on each side. Linear
    in the matches but for the open runs, which are few (units overlap only
    within one merged unit).
    """
    done: list[_Run] = []
    open_runs: list[_Run] = []
    for side in sorted(
        sides,
        key=lambda s: (
            s.paragraph,
            s.start,
            -s.end,
            s.other_paragraph,
            s.other_start,
            s.match.query,
        ),
    ):
        still_open: list[_Run] = []
        joined: list[_Run] = []
        for run in open_runs:
            if run.paragraph != side.paragraph or run.end + ADJACENT_GAP < side.start:
                done.append(run)
            elif (
                run.other_paragraph == side.other_paragraph
                and side.other_start <= run.other_end + ADJACENT_GAP
                and run.other_start <= side.other_end + ADJACENT_GAP
            ):
                joined.append(run)
            else:
                still_open.append(run)
        run = _Run(
            side.paragraph,
            side.start,
            side.end,
            side.other_paragraph,
            side.other_start,
            side.other_end,
            [side],
        )
        for other in joined:
            run.start = min(run.start, other.start)
            run.end = max(run.end, other.end)
            run.other_start = min(run.other_start, other.other_start)
            run.other_end = max(run.other_end, other.other_end)
            run.members.extend(other.members)
        still_open.append(run)
        open_runs = still_open
    done.extend(open_runs)
    runs = [run.members for run in done]
    runs.sort(key=lambda members: min((s.paragraph, s.start, s.match.query) for s in members))
    return runs


def _passage(run: list[_Side], rows: CandidateRows) -> Passage:
    first = min(run, key=lambda s: (s.start, -s.end, s.match.query))
    last = max(run, key=lambda s: (s.end, s.match.query))
    other_first = min(run, key=lambda s: (s.other_start, -s.other_end, s.match.candidate))
    other_last = max(run, key=lambda s: (s.other_end, s.match.candidate))
    c = first.match.candidate
    return Passage(
        other_article_id=int(rows.article_ids[c]),
        other_source_id=int(rows.source_ids[c]),
        other_published_at=rows.published_at[c],
        query_first=first.match.query,
        query_last=last.match.query,
        other_paragraph_id=first.other_paragraph,
        other_first_unit_id=int(rows.unit_ids[other_first.match.candidate]),
        other_last_unit_id=int(rows.unit_ids[other_last.match.candidate]),
        other_char_start=other_first.other_start,
        other_char_end=other_last.other_end,
        similarity=float(np.mean([s.match.similarity for s in run])),
    )
