"""Articles and the persistent LSH index: sources as folders name them, articles and
their versions, paragraphs, units and their signatures.

What the ingest pipeline writes for each document (in the transaction it opens
with `store.write()`), and what matching reads back: the band keys of indexed
units (`units_since`, to fill or catch up the in-memory index) and the
signatures and context of candidate units (`candidate_signatures`, then
`candidate_rows` for the few that verification keeps).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aggregator.model import utcnow

if TYPE_CHECKING:
    from aggregator.storage.store import Store

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


_IN_CHUNK = 500  # values per IN (...) list, far below SQLite's variable limit


@dataclass(frozen=True, slots=True)
class StoredArticle:
    id: int
    version: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An article, or a new version of one, as the pipeline stores it."""

    source_id: int
    identity: str
    location: str
    title: str
    paragraphs: tuple[str, ...]
    published_at: str
    content_hash: str
    published_raw: str | None = None
    outlet: str | None = None


def _unit_values(u: UnitRecord) -> tuple[int, ...]:
    return (u.position, u.char_start, u.char_end, u.word_count, u.shingle_count)


@dataclass(frozen=True, slots=True)
class SavedArticle:
    """Ids of what `save_article` wrote: the article, its version, its paragraphs."""

    id: int
    version_id: int
    paragraph_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """A unit (a run of sentences in one paragraph) as the pipeline stores it."""

    paragraph_id: int
    position: int
    char_start: int
    char_end: int
    word_count: int
    shingle_count: int


@dataclass(frozen=True, slots=True)
class CandidateSignatures:
    """What verification needs of candidate units, row-aligned with `unit_ids`."""

    unit_ids: npt.NDArray[np.int64]
    minhash: U32
    shingle_counts: npt.NDArray[np.int64]
    article_ids: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CandidateRows(CandidateSignatures):
    """Everything known about verified candidate units, row-aligned with `unit_ids`."""

    source_ids: npt.NDArray[np.int64]
    outlets: list[str | None]
    published_at: list[str]
    paragraph_ids: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    char_starts: npt.NDArray[np.int64]
    char_ends: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReplayedArticle:
    """An article's current units and their signatures, as ingest had them.

    The unit columns are row-aligned; `unit_paragraphs` holds the position of
    each unit's paragraph in the article.
    """

    article_id: int
    source_id: int
    outlet: str | None
    published_at: str
    paragraph_ids: tuple[int, ...]
    unit_ids: I64
    unit_paragraphs: I64
    unit_positions: I64
    char_starts: I64
    char_ends: I64
    shingle_counts: I64
    minhash: U32
    band_keys: U32


class SQLArticles:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.articles`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Source ids seen in the current write transaction (`Store.write` clears them
        # when it ends): a feed's batch looks its source up once, not once per entry.
        self._sources: dict[str, int] = {}

    def forget(self) -> None:
        """The write transaction ended: what it saw may have been rolled back."""
        self._sources.clear()

    def ensure_source(self, kind: str, location: str, name: str) -> int:
        known = self._sources.get(location)
        if known is not None:
            return known
        row = self._store.execute(
            "SELECT id FROM sources WHERE location = ?", (location,)
        ).fetchone()
        if row:
            source_id = int(row[0])
        else:
            cursor = self._store.execute(
                "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?) "
                "RETURNING id",
                (kind, location, name, utcnow()),
            )
            source_id = int(cursor.fetchone()[0])
        if self._store.writing:
            self._sources[location] = source_id
        return source_id

    def find_article(self, source_location: str, identity: str) -> StoredArticle | None:
        # Two unique-index look-ups whatever the values: PostgreSQL plans a prepared
        # join of the two tables generically, and chose scans that cost 15x more.
        row = self._store.execute(
            "SELECT id, version, content_hash FROM articles "
            "WHERE source_id = (SELECT id FROM sources WHERE location = ?) AND identity = ?",
            (source_location, identity),
        ).fetchone()
        return StoredArticle(*row) if row else None

    def find_articles(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredArticle]:
        """`find_article` for many (source location, identity) pairs: one statement per
        source and chunk instead of one per entry (a feed's batch is one source)."""
        by_source: dict[str, list[str]] = {}
        for location, identity in keys:
            by_source.setdefault(location, []).append(identity)
        found: dict[tuple[str, str], StoredArticle] = {}
        for location, identities in by_source.items():
            unique = list(dict.fromkeys(identities))
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                rows = self._store.execute(
                    "SELECT identity, id, version, content_hash FROM articles "
                    "WHERE source_id = (SELECT id FROM sources WHERE location = ?) "
                    f"AND identity IN ({','.join('?' * len(chunk))})",
                    (location, *chunk),
                )
                for identity, *stored in rows:
                    found[(location, identity)] = StoredArticle(*stored)
        return found

    def save_article(self, record: ArticleRecord, existing: StoredArticle | None) -> SavedArticle:
        """Insert an article or a new version of `existing`.

        The units and signatures of the previous version leave the index here:
        matches are made against what an article says now. Older versions keep
        their paragraphs and units, so earlier passage matches still resolve.
        """
        now = utcnow()
        r = record
        current = {
            "location": r.location,
            "title": r.title,
            "body": "\n\n".join(r.paragraphs),
            "published_at": r.published_at,
            "published_raw": r.published_raw,
            "outlet": r.outlet,
            "updated_at": now,
            "content_hash": r.content_hash,
        }
        ids = self._store.ids
        if existing is None:
            columns = ", ".join(current)
            article_id, version = ids.one("articles"), 1
            self._store.execute(
                "INSERT INTO articles (id, source_id, identity, first_seen_at, version, "
                f"{columns}) VALUES (?, ?, ?, ?, 1, {', '.join('?' * len(current))})",
                (article_id, r.source_id, r.identity, now, *current.values()),
            )
            self._store.search.added(article_id)
        else:
            article_id, version = existing.id, existing.version + 1
            self._store.search.changing(article_id)
            self._store.execute(
                "DELETE FROM unit_signatures WHERE unit_id IN "
                "(SELECT id FROM units WHERE article_id = ?)",
                (article_id,),
            )
            assignments = ", ".join(f"{column} = ?" for column in current)
            self._store.execute(
                f"UPDATE articles SET version = ?, {assignments} WHERE id = ?",
                (version, *current.values(), article_id),
            )
        version_id = ids.one("article_versions")
        self._store.execute(
            "INSERT INTO article_versions (id, article_id, version, content_hash, title, "
            "published_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version_id, article_id, version, r.content_hash, r.title, r.published_at, now),
        )
        paragraph_ids = tuple(ids.take("paragraphs", len(r.paragraphs)))
        self._store.insert_rows(
            "paragraphs (id, version_id, article_id, position, text)",
            [
                (row_id, version_id, article_id, n, text)
                for n, (row_id, text) in enumerate(zip(paragraph_ids, r.paragraphs, strict=True))
            ],
        )
        return SavedArticle(article_id, version_id, paragraph_ids)

    def save_units(
        self,
        article_id: int,
        units: Sequence[UnitRecord],
        minhash: U32,
        band_keys: U32,
    ) -> list[int]:
        """Insert an article's units with their signatures (row-aligned); their ids."""
        ids = self._store.ids.take("units", len(units))
        self._store.insert_rows(
            "units (id, paragraph_id, article_id, position, char_start, char_end, "
            "word_count, shingle_count)",
            [
                (i, u.paragraph_id, article_id, *_unit_values(u))
                for i, u in zip(ids, units, strict=True)
            ],
        )
        self._store.insert_rows(  # one statement for the article's signatures, not one each
            "unit_signatures (unit_id, minhash, band_keys)",
            [
                (u, m.tobytes(), b.tobytes())
                for u, m, b in zip(ids, minhash, band_keys, strict=True)
            ],
        )
        return ids

    # -- the persistent LSH index -------------------------------------------------

    def units_since(
        self, after_id: int, chunk: int = 100_000
    ) -> Iterator[tuple[npt.NDArray[np.int64], U32]]:
        """Band keys of indexed units with id > after_id, in id order, in chunks."""
        bands = self._store.params.bands
        last = after_id
        while True:
            rows = self._store.execute(
                "SELECT unit_id, band_keys FROM unit_signatures WHERE unit_id > ? "
                "ORDER BY unit_id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            keys = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint32)
            yield ids, keys.reshape(len(rows), bands)
            last = int(ids[-1])

    def unit_id_before_newest(self, count: int) -> int:
        """The id below the `count` newest indexed units (0 when there are fewer)."""
        row = self._store.execute(
            "SELECT unit_id FROM unit_signatures ORDER BY unit_id DESC LIMIT 1 OFFSET ?",
            (count,),
        ).fetchone()
        return int(row[0]) if row else 0

    def unit_seen_at(self, unit_id: int) -> str | None:
        """When the article of the first unit with an id from `unit_id` on was first
        seen (how far back an index holding only those units reaches); None if none."""
        row = self._store.execute(
            "SELECT a.first_seen_at FROM units u JOIN articles a ON a.id = u.article_id "
            "WHERE u.id >= ? ORDER BY u.id LIMIT 1",
            (unit_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def candidate_signatures(self, unit_ids: Sequence[int]) -> CandidateSignatures:
        """Signatures of the given units that are still indexed.

        Most candidates are chance band collisions that verification drops, so
        this reads only two rowid look-ups per unit; `candidate_rows` fetches
        the rest for the few that match.
        """
        rows = self._select_in(
            "SELECT s.unit_id, s.minhash, u.shingle_count, u.article_id "
            "FROM unit_signatures s JOIN units u ON u.id = s.unit_id WHERE s.unit_id IN ({})",
            unit_ids,
        )
        columns = _columns(rows, (0, 2, 3))
        return CandidateSignatures(
            unit_ids=columns[0],
            minhash=self._minhash(rows),
            shingle_counts=columns[2],
            article_ids=columns[3],
        )

    def candidate_rows(self, unit_ids: Sequence[int]) -> CandidateRows:
        """Signatures and context (article, source, paragraph, span) of indexed units."""
        rows = self._select_in(
            "SELECT s.unit_id, s.minhash, u.shingle_count, u.article_id, a.source_id, "
            "a.published_at, u.paragraph_id, u.position, u.char_start, u.char_end, a.outlet "
            "FROM unit_signatures s JOIN units u ON u.id = s.unit_id "
            "JOIN articles a ON a.id = u.article_id WHERE s.unit_id IN ({})",
            unit_ids,
        )
        columns = _columns(rows, (0, 2, 3, 4, 6, 7, 8, 9))
        return CandidateRows(
            unit_ids=columns[0],
            minhash=self._minhash(rows),
            shingle_counts=columns[2],
            article_ids=columns[3],
            source_ids=columns[4],
            outlets=[r[10] for r in rows],
            published_at=[r[5] for r in rows],
            paragraph_ids=columns[6],
            positions=columns[7],
            char_starts=columns[8],
            char_ends=columns[9],
        )

    def _select_in(self, sql: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _IN_CHUNK):
            batch = list(ids[start : start + _IN_CHUNK])
            rows.extend(self._store.execute(sql.format(",".join("?" * len(batch))), batch))
        return rows

    def _minhash(self, rows: list[tuple[Any, ...]]) -> U32:
        blob = b"".join(r[1] for r in rows)
        return np.frombuffer(blob, dtype=np.uint32).reshape(len(rows), self._store.params.num_perm)

    def replay_order(self) -> list[int]:
        """Articles with indexed units, in the order their current versions were stored."""
        return [
            int(r[0])
            for r in self._store.execute(
                "SELECT u.article_id FROM unit_signatures s JOIN units u ON u.id = s.unit_id "
                "GROUP BY u.article_id ORDER BY min(s.unit_id)"
            )
        ]

    def replayed(self, article_id: int) -> ReplayedArticle:
        """An article's current units and signatures, as ingest had them."""
        execute = self._store.execute
        source_id, outlet, published = execute(
            "SELECT source_id, outlet, published_at FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        paragraph_ids = tuple(
            int(r[0])
            for r in execute(
                "SELECT p.id FROM paragraphs p JOIN article_versions v ON v.id = p.version_id "
                "JOIN articles a ON a.id = v.article_id AND a.version = v.version "
                "WHERE a.id = ? ORDER BY p.position",
                (article_id,),
            )
        )
        rows = execute(
            "SELECT u.id, p.position, u.position, u.char_start, u.char_end, u.shingle_count, "
            "s.minhash, s.band_keys FROM units u JOIN unit_signatures s ON s.unit_id = u.id "
            "JOIN paragraphs p ON p.id = u.paragraph_id WHERE u.article_id = ? ORDER BY u.id",
            (article_id,),
        ).fetchall()
        params = self._store.params

        def column(i: int) -> I64:
            return np.array([r[i] for r in rows], dtype=np.int64)

        return ReplayedArticle(
            article_id=article_id,
            source_id=int(source_id),
            outlet=outlet,
            published_at=published,
            paragraph_ids=paragraph_ids,
            unit_ids=column(0),
            unit_paragraphs=column(1),
            unit_positions=column(2),
            char_starts=column(3),
            char_ends=column(4),
            shingle_counts=column(5),
            minhash=np.frombuffer(b"".join(r[6] for r in rows), dtype=np.uint32).reshape(
                -1, params.num_perm
            ),
            band_keys=np.frombuffer(b"".join(r[7] for r in rows), dtype=np.uint32).reshape(
                -1, params.bands
            ),
        )


def _columns(
    rows: list[tuple[Any, ...]], indexes: Sequence[int]
) -> dict[int, npt.NDArray[np.int64]]:
    return {i: np.fromiter((r[i] for r in rows), dtype=np.int64, count=len(rows)) for i in indexes}
