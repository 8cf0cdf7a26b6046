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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from aggregator.config import ClusterConfig
from aggregator.dedup.background import Background
from aggregator.dedup.match import Passage
from aggregator.model import parse_time, utcnow
from aggregator.storage.store import Store


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
    """One side of a match: a stored carrier row, or an article about to get one."""

    article_id: int
    outlet: str
    published_at: str
    similarity: float
    row_id: int | None
    edge: bool
    piece: Passage | None = None


@dataclass(slots=True)
class Recorded:
    """What recording one article's passages did."""

    pairs: int = 0
    linked: int = 0
    partners: set[int] = field(default_factory=set)
    withdrawn: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    passage_id: int
    paragraph_id: int
    char_start: int
    char_end: int
    edge: bool


class PassageRecorder:
    """Applies the passage rules to the store, inside the caller's transaction."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config
        self.background = Background(store, config)
        # Passages merged away during one `record` call: old id -> the one kept.
        self._alias: dict[int, int] = {}

    def record(self, host: Host, pieces: Sequence[Passage], outlets: Mapping[int, str]) -> Recorded:
        """Record the passages `host` shares (`outlets`: other article -> outlet key)."""
        result = Recorded()
        if not pieces:
            return result
        known = self._rows_of(sorted({p.other_article_id for p in pieces}))
        self._alias = {}
        now = utcnow()
        touched: set[int] = set()
        made: list[tuple[int, int, int]] = []  # (passage, partner article, linked)
        for group in self._groups(host, pieces):
            passage, rows = self._place(host, group, known, outlets, now)
            touched.add(passage)
            made.extend((passage, partner, linked) for partner, linked in rows)
        touched = {self._resolve(p) for p in touched}
        made = [(self._resolve(p), partner, linked) for p, partner, linked in made]
        background = {p for p in touched if self.background.spread(p)}
        for passage in background:
            result.withdrawn |= self.background.withdraw(passage)
        for passage, partner, linked in made:
            result.pairs += 1
            if linked and passage not in background:
                result.linked += 1
                result.partners.add(partner)
        return result

    def _resolve(self, passage: int) -> int:
        while passage in self._alias:
            passage = self._alias[passage]
        return passage

    # -- grouping -------------------------------------------------------------

    def _span(self, host: Host, piece: Passage) -> tuple[int, int, int]:
        """(paragraph, start, end) of a piece in the host: its first unit's start to its
        last unit's end (units between them may overlap beyond; match.py)."""
        return (
            host.unit_paragraphs[piece.query_first],
            host.unit_starts[piece.query_first],
            host.unit_ends[piece.query_last],
        )

    def _groups(self, host: Host, pieces: Sequence[Passage]) -> list[list[Passage]]:
        """Pieces of the host that overlap in its text: one carrier each group."""
        ordered = sorted(pieces, key=lambda p: self._span(host, p))
        groups: list[list[Passage]] = []
        reach = (-1, -1)
        for piece in ordered:
            paragraph, start, end = self._span(host, piece)
            if groups and paragraph == reach[0] and start < reach[1]:
                groups[-1].append(piece)
                reach = (paragraph, max(reach[1], end))
            else:
                groups.append([piece])
                reach = (paragraph, end)
        return groups

    def _rows_of(self, article_ids: list[int]) -> dict[int, list[_Row]]:
        rows: dict[int, list[_Row]] = {}
        for start in range(0, len(article_ids), 500):
            batch = article_ids[start : start + 500]
            for row in self.store.execute(
                "SELECT article_id, id, passage_id, paragraph_id, char_start, char_end, edge "
                f"FROM passage_carriers WHERE article_id IN ({','.join('?' * len(batch))})",
                batch,
            ):
                article, row_id, passage, paragraph, start_at, end_at, edge = row
                rows.setdefault(article, []).append(
                    _Row(row_id, passage, paragraph, start_at, end_at, bool(edge))
                )
        return rows

    # -- placing one carrier --------------------------------------------------------

    def _place(
        self,
        host: Host,
        group: list[Passage],
        known: dict[int, list[_Row]],
        outlets: Mapping[int, str],
        now: str,
    ) -> tuple[int, list[tuple[int, int]]]:
        """Store the host's carrier of one passage; (passage id, [(partner, linked)])."""
        copies: list[Copy] = []  # copies that have a row in a group
        pending: list[Copy] = []  # copies of articles that get their first row here
        existing: set[int] = set()
        for piece in group:
            overlapping = [
                r
                for r in known.get(piece.other_article_id, [])
                if r.paragraph_id == piece.other_paragraph_id
                and r.char_start < piece.other_char_end
                and piece.other_char_start < r.char_end
            ]
            existing |= {self._resolve(r.passage_id) for r in overlapping}
            row = overlapping[0] if overlapping else None
            if row is not None:
                self._widen(row, piece, known)
            copy = Copy(
                piece.other_article_id,
                outlets[piece.other_article_id],
                piece.other_published_at,
                piece.similarity,
                row.id if row else None,
                row.edge if row else self._stored_edge(piece.other_paragraph_id),
                piece,
            )
            (copies if row else pending).append(copy)
        if existing:
            passage = min(existing)
            self._merge(passage, sorted(existing - {passage}))
        else:
            pending.sort(key=lambda c: (c.published_at, c.article_id))
            origin = pending.pop(0)
            passage = self._new_passage(now)
            row_id = self._insert_copy(passage, origin, None, "origin", known, now)
            copies.append(replace(origin, row_id=row_id))
        background = self._background(passage)
        paragraph, start, end = self._span(host, group[0])
        for piece in group[1:]:
            _, s, e = self._span(host, piece)
            start, end = min(start, s), max(end, e)
        host_edge = is_edge(paragraph, len(host.paragraph_ids), self.config)
        decided = sorted(
            ((self._reason(background, host, host_edge, c), c) for c in copies),
            key=lambda d: (d[0] != "linked", d[1].published_at, -d[1].similarity, d[1].article_id),
        )
        reason, best = decided[0]
        cursor = self.store.execute(
            "INSERT INTO passage_carriers (passage_id, article_id, paragraph_id, char_start, "
            "char_end, first_unit_id, last_unit_id, edge, matched_id, similarity, linked, "
            "reason, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                passage,
                host.article_id,
                host.paragraph_ids[paragraph],
                start,
                end,
                host.unit_ids[min(p.query_first for p in group)],
                host.unit_ids[max(p.query_last for p in group)],
                int(host_edge),
                best.row_id,
                best.similarity,
                int(reason == "linked"),
                reason,
                now,
            ),
        )
        host_row = int(cursor.lastrowid or 0)
        made = [(best.article_id, int(reason == "linked"))]
        for copy in pending:
            pair = self._reason(background, host, host_edge, copy)
            self._insert_copy(passage, copy, host_row, pair, known, now)
            made.append((copy.article_id, int(pair == "linked")))
        published = [host.published_at, *(c.published_at for c in (*copies, *pending))]
        self.store.execute(
            "UPDATE passages SET carriers = carriers + ?, "
            "first_published_at = min(first_published_at, ?), "
            "last_published_at = max(last_published_at, ?) WHERE id = ?",
            (len(made) + (0 if existing else 1), min(published), max(published), passage),
        )
        return passage, made

    def _widen(self, row: _Row, piece: Passage, known: dict[int, list[_Row]]) -> None:
        """Grow a stored carrier to the span this match found of it (same paragraph)."""
        start = min(row.char_start, piece.other_char_start)
        end = max(row.char_end, piece.other_char_end)
        if (start, end) == (row.char_start, row.char_end):
            return
        self.store.execute(
            "UPDATE passage_carriers SET char_start = ?, char_end = ?, "
            "first_unit_id = min(first_unit_id, ?), last_unit_id = max(last_unit_id, ?) "
            "WHERE id = ?",
            (start, end, piece.other_first_unit_id, piece.other_last_unit_id, row.id),
        )
        rows = known[piece.other_article_id]
        rows[rows.index(row)] = replace(row, char_start=start, char_end=end)

    def _reason(self, background: bool, host: Host, host_edge: bool, copy: Copy) -> str:
        if (
            copy.outlet == host.outlet
            and host_edge
            and copy.edge
            and copy.similarity >= self.config.boilerplate_min_similarity
        ):
            return "boilerplate"
        if background:
            return "background"
        if not within_window(host.published_at, copy.published_at, self.config):
            return "window"
        return "linked"

    def _stored_edge(self, paragraph_id: int) -> bool:
        position, count = self.store.execute(
            "SELECT p.position, (SELECT count(*) FROM paragraphs q WHERE q.version_id = "
            "p.version_id) FROM paragraphs p WHERE p.id = ?",
            (paragraph_id,),
        ).fetchone()
        return is_edge(int(position), int(count), self.config)

    def _insert_copy(
        self,
        passage: int,
        copy: Copy,
        matched: int | None,
        reason: str,
        known: dict[int, list[_Row]],
        now: str,
    ) -> int:
        """The first row of a stored article in this passage."""
        piece = copy.piece
        assert piece is not None
        cursor = self.store.execute(
            "INSERT INTO passage_carriers (passage_id, article_id, paragraph_id, char_start, "
            "char_end, first_unit_id, last_unit_id, edge, matched_id, similarity, linked, "
            "reason, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                passage,
                copy.article_id,
                piece.other_paragraph_id,
                piece.other_char_start,
                piece.other_char_end,
                piece.other_first_unit_id,
                piece.other_last_unit_id,
                int(copy.edge),
                matched,
                None if matched is None else copy.similarity,
                int(reason == "linked"),
                reason,
                now,
            ),
        )
        row_id = int(cursor.lastrowid or 0)
        known.setdefault(copy.article_id, []).append(
            _Row(
                row_id,
                passage,
                piece.other_paragraph_id,
                piece.other_char_start,
                piece.other_char_end,
                copy.edge,
            )
        )
        return row_id

    # -- passage groups -------------------------------------------------------------

    def _new_passage(self, now: str) -> int:
        cursor = self.store.execute(
            "INSERT INTO passages (created_at, first_published_at, last_published_at) "
            "VALUES (?, '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z')",
            (now,),
        )
        return int(cursor.lastrowid or 0)

    def _merge(self, target: int, others: Sequence[int]) -> None:
        """Fold passages that turned out to be one (a copy matched both) into `target`."""
        if not others:
            return
        marks = ",".join("?" * len(others))
        self.store.execute(
            f"UPDATE passage_carriers SET passage_id = ? WHERE passage_id IN ({marks})",
            (target, *others),
        )
        self.store.execute(
            "UPDATE passages SET "
            f"carriers = carriers + (SELECT sum(carriers) FROM passages WHERE id IN ({marks})), "
            f"first_published_at = min(first_published_at, (SELECT min(first_published_at) "
            f"FROM passages WHERE id IN ({marks}))), "
            f"last_published_at = max(last_published_at, (SELECT max(last_published_at) "
            f"FROM passages WHERE id IN ({marks}))) WHERE id = ?",
            (*others, *others, *others, target),
        )
        self.store.execute(f"DELETE FROM passages WHERE id IN ({marks})", tuple(others))
        for other in others:
            self._alias[other] = target

    def _background(self, passage: int) -> bool:
        row = self.store.execute(
            "SELECT background FROM passages WHERE id = ?", (passage,)
        ).fetchone()
        return bool(row[0])
