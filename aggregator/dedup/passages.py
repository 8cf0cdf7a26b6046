"""Passages: which passage group each found copy belongs to, and whether it links stories.

Verification finds pieces of text that the new article shares with stored
articles. This stage records them and decides what they mean.

**One group per passage, one row per carrier.** A passage carried by N
articles is one `passages` row and N `passage_carriers` rows: a new carrier is
matched to one earlier copy (the best one found, below) rather than to every
earlier carrier, so a wire passage carried by 200 articles costs 200 rows, not
200 x 199, and each new carrier costs the same bounded work (the index returns
at most `max_bucket` copies per key). `duplicate_passages` lists the pairs by
joining each carrier with the copy it matched; the carriers of one group are
the passage's copies. Pieces of the new article that overlap (it matched
several earlier copies at the same place) are one carrier; the groups those
copies belonged to merge into the oldest. A stored article that matched but
carried no group yet gets its row too: the first copy of a new group is its
`origin`, and any other is matched to the new article.

**Each match either links the two stories or records why not** (`reason`):

* `boilerplate`: both copies sit in the first or last
  `boilerplate_edge_paragraphs` paragraphs of their articles, the articles are
  from the same outlet, and the copies are near-identical (similarity at least
  `boilerplate_min_similarity`). That is what standfirsts, bylines, author
  bios, newsletter plugs and footers are: one outlet's fixed text at the same
  place in articles about different stories. Wire copy is placed anywhere,
  edited, and carried by many outlets, or by one folder of saved articles from
  many outlets, which is why no count of carriers can tell the two apart
  (measured for issue 11: planted wire passages reached 6-7 carriers in one
  source, genuine bios 7-8). Articles shorter than 2 x edge + 1 paragraphs
  have no edge: a brief is all body.
* `window`: the two were published more than `window_days` apart.
* `background`: the passage is spread across unrelated stories, the way
  outlets reuse standard background; once found to be (background.py), it
  links nothing and the links it made before are withdrawn.
* `linked`: none of the above; the two articles are one story.

A new carrier is matched to the copy it would link to if it can (the earliest
published of those), otherwise to its best copy, so one unlinked pair never
hides a linking one. A passage found but not linked is still found: the digest
collapses it as already read, and `duplicates --unlinked` lists it with its
reason.

**Deciding apart from doing.** `plan_passages` decides all of the above from
the carrier rows of the matched articles and the places of their paragraphs
(decide.py reads them), touching no store, and returns a `PassagePlan` that
`store.passages.apply` carries out. Rows and passages the plan adds are named
before they have ids, so a later carrier of the same article can be matched to
a row added for an earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from aggregator.config import ClusterConfig
from aggregator.dedup.match import Passage
from aggregator.model import parse_time
from aggregator.storage.passages import ParagraphPlace, StoredCarrier
from aggregator.storage.plans import (
    Carrier,
    CarrierRef,
    NewCarrier,
    NewPassage,
    PassagePlan,
    PassageRef,
    Placement,
    Reason,
    Widening,
)


def outlet_key(outlet: str | None, source_id: int) -> str:
    """Who published an article: its own outlet when it says, else its source."""
    return f"outlet:{outlet.strip().casefold()}" if outlet else f"source:{source_id}"


def within_window(published_at: str, other_published_at: str, config: ClusterConfig) -> bool:
    gap = abs(parse_time(published_at) - parse_time(other_published_at))
    return gap <= timedelta(days=config.window_days)


def is_edge(position: int, count: int, config: ClusterConfig) -> bool:
    """Is paragraph `position` of `count` in an article's frame (opening or closing)?"""
    edge = config.boilerplate_edge_paragraphs
    if edge == 0 or count < 2 * edge + 1:
        return False
    return position < edge or position >= count - edge


@dataclass(frozen=True, slots=True)
class Host:
    """The new article, as the passage rules need it; units are row-aligned."""

    article_id: int
    outlet: str
    published_at: str
    paragraph_ids: Sequence[int]
    unit_paragraphs: Sequence[int]
    unit_starts: Sequence[int]
    unit_ends: Sequence[int]
    unit_ids: Sequence[int]


@dataclass(frozen=True, slots=True)
class Copy:
    """One side of a match: a carrier row, or an article about to get one."""

    article_id: int
    outlet: str
    published_at: str
    similarity: float
    row_id: CarrierRef | None
    edge: bool
    piece: Passage


@dataclass(frozen=True, slots=True)
class Pair:
    """A match recorded: the new article and one earlier copy's article, through a passage."""

    passage: PassageRef
    partner: int
    linked: bool


@dataclass(frozen=True, slots=True)
class Recording:
    """What recording one article's passages decided: the plan, the matches it records
    (`pairs`), and the passages its carriers end up in (`touched`), after merges."""

    plan: PassagePlan
    pairs: tuple[Pair, ...] = ()
    touched: tuple[PassageRef, ...] = ()


@dataclass(frozen=True, slots=True)
class _Row:
    """A carrier row of another article, stored or added by the plan being made."""

    id: CarrierRef
    passage: PassageRef
    paragraph_id: int
    char_start: int
    char_end: int
    edge: bool


def _overlaps(row: _Row | StoredCarrier, piece: Passage) -> bool:
    return (
        row.paragraph_id == piece.other_paragraph_id
        and row.char_start < piece.other_char_end
        and piece.other_char_start < row.char_end
    )


def unplaced_paragraphs(pieces: Sequence[Passage], stored: Iterable[StoredCarrier]) -> list[int]:
    """The paragraphs whose place `plan_passages` needs: those of the copies that have
    no carrier row yet (a copy with one takes its edge from the row)."""
    rows: dict[int, list[StoredCarrier]] = {}
    for row in stored:
        rows.setdefault(row.article_id, []).append(row)
    return sorted(
        {
            p.other_paragraph_id
            for p in pieces
            if not any(_overlaps(r, p) for r in rows.get(p.other_article_id, ()))
        }
    )


def _order(ref: PassageRef) -> tuple[int, int]:
    """Stored passages by id, then those the plan opens: the order of the ids they get."""
    return (0, ref) if isinstance(ref, int) else (1, ref.index)


def plan_passages(
    host: Host,
    pieces: Sequence[Passage],
    outlets: Mapping[int, str],
    stored: Iterable[StoredCarrier],
    places: Mapping[int, ParagraphPlace],
    config: ClusterConfig,
    now: str,
) -> Recording:
    """Decide the passages `host` shares, from the carrier rows of the other articles
    (`stored`) and the places of the paragraphs of those with none (`places`)."""
    return _Planner(host, outlets, stored, places, config).plan(pieces, now)


class _Planner:
    """The decisions of one `plan_passages` call, in the order they are made."""

    def __init__(
        self,
        host: Host,
        outlets: Mapping[int, str],
        stored: Iterable[StoredCarrier],
        places: Mapping[int, ParagraphPlace],
        config: ClusterConfig,
    ) -> None:
        self.host, self.outlets, self.places, self.config = host, outlets, places, config
        self.known: dict[int, list[_Row]] = {}
        self.background: dict[int, bool] = {}
        for c in stored:
            self.known.setdefault(c.article_id, []).append(
                _Row(c.id, c.passage_id, c.paragraph_id, c.char_start, c.char_end, c.edge)
            )
            self.background[c.passage_id] = c.background
        # Passages merged away by this plan: old -> the one kept.
        self.alias: dict[PassageRef, PassageRef] = {}
        self.opened = self.added = 0  # passages opened, carrier rows added

    def plan(self, pieces: Sequence[Passage], now: str) -> Recording:
        placements: list[Placement] = []
        pairs: list[Pair] = []
        for group in self._groups(pieces):
            placement, made = self._place(group)
            placements.append(placement)
            pairs.extend(made)
        touched = sorted({self._resolve(p.passage) for p in placements}, key=_order)
        if self.alias:
            pairs = [replace(p, passage=self._resolve(p.passage)) for p in pairs]
        return Recording(PassagePlan(now, tuple(placements)), tuple(pairs), tuple(touched))

    def _resolve(self, passage: PassageRef) -> PassageRef:
        while passage in self.alias:
            passage = self.alias[passage]
        return passage

    # -- grouping -------------------------------------------------------------

    def _span(self, piece: Passage) -> tuple[int, int, int]:
        """(paragraph, start, end) of a piece in the host: its first unit's start to its
        last unit's end (units between them may overlap beyond; match.py)."""
        h, first = self.host, piece.query_first
        return h.unit_paragraphs[first], h.unit_starts[first], h.unit_ends[piece.query_last]

    def _groups(self, pieces: Sequence[Passage]) -> list[list[Passage]]:
        """Pieces of the host that overlap in its text: one carrier each group."""
        ordered = sorted(pieces, key=self._span)
        groups: list[list[Passage]] = []
        reach = (-1, -1)
        for piece in ordered:
            paragraph, start, end = self._span(piece)
            if groups and paragraph == reach[0] and start < reach[1]:
                groups[-1].append(piece)
                reach = (paragraph, max(reach[1], end))
            else:
                groups.append([piece])
                reach = (paragraph, end)
        return groups

    # -- placing one carrier --------------------------------------------------------

    def _place(self, group: list[Passage]) -> tuple[Placement, list[Pair]]:
        """The host's carrier of one passage, and the matches it records."""
        host = self.host
        copies: list[Copy] = []  # copies that have a row in a group
        pending: list[Copy] = []  # copies of articles that get their first row here
        existing: set[PassageRef] = set()
        widened: list[Widening] = []
        for piece in group:
            overlapping = [
                r for r in self.known.get(piece.other_article_id, []) if _overlaps(r, piece)
            ]
            existing |= {self._resolve(r.passage) for r in overlapping}
            row = overlapping[0] if overlapping else None
            if row is not None and (widening := self._widen(row, piece)) is not None:
                widened.append(widening)
            copy = Copy(
                piece.other_article_id,
                self.outlets[piece.other_article_id],
                piece.other_published_at,
                piece.similarity,
                row.id if row else None,
                row.edge if row else self._stored_edge(piece.other_paragraph_id),
                piece,
            )
            (copies if row else pending).append(copy)
        carriers: list[Carrier] = []
        merged: tuple[PassageRef, ...] = ()
        passage: PassageRef
        if existing:
            passage = min(existing, key=_order)
            merged = tuple(sorted(existing - {passage}, key=_order))
            self.alias.update(dict.fromkeys(merged, passage))
        else:
            pending.sort(key=lambda c: (c.published_at, c.article_id))
            origin = pending.pop(0)
            passage = NewPassage(self.opened)
            self.opened += 1
            row_id = self._add(carriers, self._copy_row(passage, origin, None, "origin"))
            copies.append(replace(origin, row_id=row_id))
        background = isinstance(passage, int) and self.background[passage]
        paragraph, start, end = self._span(group[0])
        for piece in group[1:]:
            _, s, e = self._span(piece)
            start, end = min(start, s), max(end, e)
        host_edge = is_edge(paragraph, len(host.paragraph_ids), self.config)
        decided = sorted(
            ((self._reason(background, host_edge, c), c) for c in copies),
            key=lambda d: (d[0] != "linked", d[1].published_at, -d[1].similarity, d[1].article_id),
        )
        reason, best = decided[0]
        host_carrier = Carrier(
            passage=passage,
            article_id=host.article_id,
            paragraph_id=host.paragraph_ids[paragraph],
            char_start=start,
            char_end=end,
            first_unit_id=host.unit_ids[min(p.query_first for p in group)],
            last_unit_id=host.unit_ids[max(p.query_last for p in group)],
            edge=host_edge,
            matched=best.row_id,
            similarity=best.similarity,
            reason=reason,
        )
        host_row = self._add(carriers, host_carrier, known=False)
        made = [Pair(passage, best.article_id, reason == "linked")]
        for copy in pending:
            pair = self._reason(background, host_edge, copy)
            self._add(carriers, self._copy_row(passage, copy, host_row, pair))
            made.append(Pair(passage, copy.article_id, pair == "linked"))
        published = [host.published_at, *(c.published_at for c in (*copies, *pending))]
        placement = Placement(
            passage=passage,
            opened=not existing,
            merged=merged,
            widened=tuple(widened),
            carriers=tuple(carriers),
            first_published_at=min(published),
            last_published_at=max(published),
        )
        return placement, made

    def _widen(self, row: _Row, piece: Passage) -> Widening | None:
        """Grow a carrier to the span this match found of it (same paragraph)."""
        start = min(row.char_start, piece.other_char_start)
        end = max(row.char_end, piece.other_char_end)
        if (start, end) == (row.char_start, row.char_end):
            return None
        rows = self.known[piece.other_article_id]
        rows[rows.index(row)] = replace(row, char_start=start, char_end=end)
        return Widening(row.id, start, end, piece.other_first_unit_id, piece.other_last_unit_id)

    def _reason(self, background: bool, host_edge: bool, copy: Copy) -> Reason:
        if (
            copy.outlet == self.host.outlet
            and host_edge
            and copy.edge
            and copy.similarity >= self.config.boilerplate_min_similarity
        ):
            return "boilerplate"
        if background:
            return "background"
        if not within_window(self.host.published_at, copy.published_at, self.config):
            return "window"
        return "linked"

    def _stored_edge(self, paragraph_id: int) -> bool:
        place = self.places[paragraph_id]
        return is_edge(place.position, place.count, self.config)

    def _copy_row(
        self, passage: PassageRef, copy: Copy, matched: CarrierRef | None, reason: Reason
    ) -> Carrier:
        """The first row of a stored article in this passage."""
        piece = copy.piece
        return Carrier(
            passage=passage,
            article_id=copy.article_id,
            paragraph_id=piece.other_paragraph_id,
            char_start=piece.other_char_start,
            char_end=piece.other_char_end,
            first_unit_id=piece.other_first_unit_id,
            last_unit_id=piece.other_last_unit_id,
            edge=copy.edge,
            matched=matched,
            similarity=None if matched is None else copy.similarity,
            reason=reason,
        )

    def _add(self, carriers: list[Carrier], carrier: Carrier, known: bool = True) -> NewCarrier:
        """Add a row to the placement; a row of another article can be matched again."""
        ref = NewCarrier(self.added)
        self.added += 1
        carriers.append(carrier)
        if known:
            c = carrier
            row = _Row(ref, c.passage, c.paragraph_id, c.char_start, c.char_end, c.edge)
            self.known.setdefault(c.article_id, []).append(row)
        return ref
