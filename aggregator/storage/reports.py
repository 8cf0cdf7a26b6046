"""What the CLI lists: clusters, one story, duplicate passages, counts and stats.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get frozen dataclasses, one per row, whose
fields are named as the CLI's JSON names them (`cli/reports.py` shapes the
JSON with `asdict`, so a renamed field would be a renamed key).

What it decides, and why:

* **The views are the source.** Clusters come from `cluster_articles` and pairs
  of copies from `duplicate_passages`, the views sqlite-utils users read, so the
  CLI and `sqlite-utils rows aggregator.db duplicate_passages` never disagree.
  Flags keep the view's 0 and 1 (`linked`, `boilerplate`): the JSON always
  showed them as numbers.
* **A merged story keeps its ids.** `live_cluster` follows `merged_into` to the
  story an id now belongs to (a cycle, which no writer makes, stops the walk
  rather than looping).
* **Match counts** are by carrier row: `match_counts(after)` counts what was
  recorded after the row `last_carrier_id()` returned, which is how `ingest`
  reports the matches of one run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.storage.store import Store

# Why a match links no stories (passage_carriers.reason, besides 'origin' and 'linked').
UNLINKED_REASONS = ("boilerplate", "window", "background")


@dataclass(frozen=True, slots=True)
class ClusterArticle:
    """A row of the `cluster_articles` view: an article of a live story."""

    cluster_id: int
    article_id: int
    canonical: bool
    source: str
    title: str
    published_at: str
    location: str


@dataclass(frozen=True, slots=True)
class DuplicateRow:
    """A row of the `duplicate_passages` view: an article's copy of a passage beside the
    earlier copy it was matched to (`other_`); paragraphs are numbered from 1."""

    match_id: int
    passage_id: int
    similarity: float
    linked: int  # 0 or 1, as the view has it
    reason: str
    boilerplate: int  # 0 or 1
    article_id: int
    source: str
    title: str
    location: str
    paragraph: int
    passage: str
    other_article_id: int
    other_source: str
    other_title: str
    other_location: str
    other_paragraph: int
    other_passage: str


@dataclass(frozen=True, slots=True)
class PassageCarrier:
    """An article carrying a passage: where, and the earlier copy it was matched to
    (None for the first copy, which was matched to nothing)."""

    match_id: int
    article_id: int
    source: str
    title: str
    location: str
    paragraph: int  # from 1
    passage: str
    matched_article_id: int | None
    similarity: float | None
    linked: int  # 0 or 1
    reason: str


@dataclass(frozen=True, slots=True)
class PassageGroup:
    """A passage with every article that carries it, in the order they were found."""

    passage_id: int
    background: bool
    carriers: tuple[PassageCarrier, ...]


@dataclass(frozen=True, slots=True)
class MatchCounts:
    """Passages and matches (a copy matched to an earlier one): found, linking stories,
    and those linking none by reason (every one of UNLINKED_REASONS, zeros too)."""

    passages: int
    matches: int
    linked: int
    unlinked: dict[str, int]


_DUPLICATE_COLUMNS = ", ".join(f.name for f in fields(DuplicateRow))


class SQLReports:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.reports`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def cluster_articles(self, cluster_id: int | None = None) -> list[ClusterArticle]:
        """The articles of every live story (or of story `cluster_id`), as the view orders them."""
        sql = (
            "SELECT cluster_id, article_id, canonical, source, title, published_at, location "
            "FROM cluster_articles"
        )
        args: tuple[int, ...] = ()
        if cluster_id is not None:
            sql, args = sql + " WHERE cluster_id = ?", (cluster_id,)
        return [
            ClusterArticle(row[0], row[1], bool(row[2]), *row[3:])
            for row in self._store.execute(sql, args)
        ]

    def live_cluster(self, cluster_id: int) -> int | None:
        """The story `cluster_id` is now (following merges); None if there never was one."""
        seen = set()
        current = cluster_id
        while True:
            row = self._store.execute(
                "SELECT merged_into FROM clusters WHERE id = ?", (current,)
            ).fetchone()
            if row is None:
                return None
            if row[0] is None or current in seen:
                return current
            seen.add(current)
            current = int(row[0])

    def duplicate_rows(
        self, unlinked: bool = False, among: Sequence[int] | None = None
    ) -> list[DuplicateRow]:
        """One row per passage match, in the order they were found.

        Only matches that link two stories, unless `unlinked`; with `among`, only
        matches whose two articles are both in it.
        """
        conditions: list[str] = [] if unlinked else ["linked = 1"]
        args: list[int] = []
        if among is not None:
            marks = ",".join("?" * len(among))
            conditions.append(f"article_id IN ({marks}) AND other_article_id IN ({marks})")
            args = [*among, *among]
        sql = f"SELECT {_DUPLICATE_COLUMNS} FROM duplicate_passages"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        return [DuplicateRow(*row) for row in self._store.execute(sql, args)]

    def passage_groups(self, unlinked: bool = False) -> list[PassageGroup]:
        """Each passage with its carriers, by passage then carrier row.

        Only passages with a linking match, unless `unlinked`.
        """
        having = (
            ""
            if unlinked
            else "WHERE EXISTS (SELECT 1 FROM passage_carriers l WHERE l.passage_id = g.id "
            "AND l.linked = 1)"
        )
        rows = self._store.execute(
            "SELECT g.id, g.background, c.id, c.article_id, s.name, a.title, a.location, "
            "p.position + 1, substr(p.text, c.char_start + 1, c.char_end - c.char_start), "
            "m.article_id, c.similarity, c.linked, c.reason "
            f"FROM (SELECT * FROM passages g {having}) g "
            "JOIN passage_carriers c ON c.passage_id = g.id "
            "JOIN articles a ON a.id = c.article_id JOIN sources s ON s.id = a.source_id "
            "JOIN paragraphs p ON p.id = c.paragraph_id "
            "LEFT JOIN passage_carriers m ON m.id = c.matched_id ORDER BY g.id, c.id"
        )
        background: dict[int, bool] = {}
        carriers: dict[int, list[PassageCarrier]] = {}
        for row in rows:
            background.setdefault(row[0], bool(row[1]))
            fields = list(row[2:])
            if fields[8] is not None:  # rounded here, as floats, the same on both engines
                fields[8] = round(fields[8], 3)
            carriers.setdefault(row[0], []).append(PassageCarrier(*fields))
        return [
            PassageGroup(passage_id, background[passage_id], tuple(found))
            for passage_id, found in carriers.items()
        ]

    def match_counts(self, after_id: int = 0) -> MatchCounts:
        """Passages and matches recorded after carrier row `after_id`."""
        reasons = dict(
            self._store.execute(
                "SELECT reason, count(*) FROM passage_carriers "
                "WHERE id > ? AND matched_id IS NOT NULL GROUP BY reason",
                (after_id,),
            ).fetchall()
        )
        passages = self._store.execute(
            "SELECT count(DISTINCT passage_id) FROM passage_carriers WHERE id > ?", (after_id,)
        ).fetchone()[0]
        return MatchCounts(
            passages=passages,
            matches=sum(reasons.values()),
            linked=reasons.get("linked", 0),
            unlinked={r: reasons.get(r, 0) for r in UNLINKED_REASONS},
        )

    def last_carrier_id(self) -> int:
        """The newest carrier row's id (0 when there is none): where a run's counts start."""
        row = self._store.execute("SELECT coalesce(max(id), 0) FROM passage_carriers").fetchone()
        return int(row[0])

    def live_clusters(self) -> int:
        """How many stories there are: clusters not merged away that have articles."""
        row = self._store.execute(
            "SELECT count(*) FROM clusters c WHERE merged_into IS NULL AND EXISTS "
            "(SELECT 1 FROM cluster_members m WHERE m.cluster_id = c.id)"
        ).fetchone()
        return int(row[0])

    def article_count(self) -> int:
        """How many articles are stored."""
        return int(self._store.execute("SELECT count(*) FROM articles").fetchone()[0])
