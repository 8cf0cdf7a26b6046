"""The store: the only module that talks to SQLite.

One database file in WAL mode, so readers (the CLI, `sqlite-utils`) never block
the writer and the writer never blocks them. `synchronous=NORMAL`: a committed
article survives a crash or `kill -9` of the process; only a power cut can lose
the last few commits, and it cannot corrupt the file.

Writers take the write lock up front (`BEGIN IMMEDIATE`) and write each article
in one transaction, so an article is either stored whole (version, paragraphs,
units, signatures, matches, cluster changes) or not at all. Two processes may
write the same database: the lock serialises them, and each catches up on the
other's new units at the start of every write (see `units_since`).

Opening checks the schema version (creating, or migrating after a backup; see
`dbfile.py`) and the MinHash parameters stored with the index; a mismatch is
refused, because signatures made with other parameters cannot be compared.
SQLite's errors leave this module as one-line `StoreError`s.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.config import SCHEME, SHINGLE_SCHEME, MinHashParams
from aggregator.errors import ParameterMismatchError, StoreError
from aggregator.model import utcnow
from aggregator.storage.clusters import SQLiteClusters
from aggregator.storage.dbfile import check, describe, migrate
from aggregator.storage.digests import SQLiteDigests
from aggregator.storage.feeds import SQLiteFeeds
from aggregator.storage.passages import SQLitePassages
from aggregator.storage.reports import SQLiteReports
from aggregator.storage.state import SQLiteState

U32 = npt.NDArray[np.uint32]


@dataclass(frozen=True, slots=True)
class StoredArticle:
    id: int
    version: int
    content_hash: str


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


def _params_meta(params: MinHashParams) -> dict[str, str]:
    meta = {f"minhash.{k}": str(v) for k, v in asdict(params).items()}
    meta["minhash.scheme"] = SCHEME
    meta["minhash.shingles"] = SHINGLE_SCHEME
    return meta


WAL_LIMIT = 64 * 1024 * 1024  # bytes


class Store:
    """A connection to one aggregator database."""

    def __init__(
        self,
        path: Path,
        params: MinHashParams,
        *,
        readonly: bool = False,
        shared: bool = False,
        create_folder: bool = False,
    ) -> None:
        """Open (creating and migrating) a database; `shared`: usable from another thread,
        for a caller that lets only one thread at a time near it (the daemon's job thread).

        Only the database file is created: its folder must exist, unless
        `create_folder` (the configured database, whose folder the owner of the
        configuration means to have; never a path typed with --db, where a
        missing folder is a typo).
        """
        self.path = path
        self.params = params
        if readonly and not path.exists():
            raise StoreError(f"database {path}: does not exist (run `aggregator ingest` first)")
        if not readonly and not create_folder and not path.parent.is_dir():
            raise StoreError(
                f"database {path}: folder {path.parent} does not exist (create it first)"
            )
        try:
            if not readonly and create_folder:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                path, isolation_level=None, timeout=30.0, check_same_thread=not shared
            )
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                # Automatic checkpoints cut the WAL back to this size.
                self.conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            migrate(self.conn, path, readonly, _params_meta(params))
            self._check_params()
        except sqlite3.Error as e:
            self._close_quietly()
            raise describe(e, path) from e
        except BaseException:
            self._close_quietly()
            raise
        self._closed = False
        # One object per part of the database: the only way stages read or write it.
        self.feeds = SQLiteFeeds(self)
        self.state = SQLiteState(self)
        self.clusters = SQLiteClusters(self)
        self.passages = SQLitePassages(self)
        self.digests = SQLiteDigests(self)
        self.reports = SQLiteReports(self)

    def close(self) -> None:
        self.conn.close()
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Like an unclosed file: the connection (and a writer's WAL) stays open until the
        # collector gets to it. Silent by default; an error in the tests (filterwarnings).
        if not getattr(self, "_closed", True):
            warnings.warn(
                f"unclosed database {self.path}", ResourceWarning, stacklevel=2, source=self
            )

    def _close_quietly(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    def check(self) -> None:
        """CorruptDatabaseError unless the file passes SQLite's quick check."""
        check(self.conn, self.path)

    # -- schema and parameters -------------------------------------------------

    def _check_params(self) -> None:
        stored = dict(self.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'minhash.%'"))
        wanted = _params_meta(self.params)
        differing = [k for k in sorted(wanted) if stored.get(k) != wanted[k]]
        if differing:
            detail = ", ".join(
                f"{k.removeprefix('minhash.')}={stored.get(k)} (config: {wanted[k]})"
                for k in differing
            )
            raise ParameterMismatchError(
                f"database {self.path}: built with other MinHash parameters: {detail}; "
                "use the parameters it was built with, or a new database"
            )

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction: committed whole on success, rolled back on any error.

        SQLite's errors (disk full, read-only, corruption) leave as StoreError.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (disk full does).
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise describe(e, self.path) from e

    def execute(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, args)
        except sqlite3.Error as e:
            raise describe(e, self.path) from e

    # -- sources and articles -------------------------------------------------

    def ensure_source(self, kind: str, location: str, name: str) -> int:
        row = self.conn.execute("SELECT id FROM sources WHERE location = ?", (location,)).fetchone()
        if row:
            return int(row[0])
        cursor = self.conn.execute(
            "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?)",
            (kind, location, name, utcnow()),
        )
        return int(cursor.lastrowid or 0)

    def find_article(self, source_location: str, identity: str) -> StoredArticle | None:
        row = self.conn.execute(
            "SELECT a.id, a.version, a.content_hash FROM articles a "
            "JOIN sources s ON s.id = a.source_id WHERE s.location = ? AND a.identity = ?",
            (source_location, identity),
        ).fetchone()
        return StoredArticle(*row) if row else None

    def save_article(
        self,
        source_id: int,
        identity: str,
        location: str,
        title: str,
        paragraphs: Sequence[str],
        published_at: str,
        content_hash: str,
        existing: StoredArticle | None,
        published_raw: str | None = None,
        outlet: str | None = None,
    ) -> tuple[int, int, list[int]]:
        """Insert an article or a new version of one; return (article, version, paragraph ids).

        The units and signatures of the previous version leave the index here:
        matches are made against what an article says now. Older versions keep
        their paragraphs and units, so earlier passage matches still resolve.
        """
        now = utcnow()
        body = "\n\n".join(paragraphs)
        current = {
            "location": location,
            "title": title,
            "body": body,
            "published_at": published_at,
            "published_raw": published_raw,
            "outlet": outlet,
            "updated_at": now,
            "content_hash": content_hash,
        }
        if existing is None:
            columns = ", ".join(current)
            cursor = self.conn.execute(
                f"INSERT INTO articles (source_id, identity, first_seen_at, version, {columns}) "
                f"VALUES (?, ?, ?, 1, {', '.join('?' * len(current))})",
                (source_id, identity, now, *current.values()),
            )
            article_id, version = int(cursor.lastrowid or 0), 1
        else:
            article_id, version = existing.id, existing.version + 1
            self.conn.execute(
                "DELETE FROM unit_signatures WHERE unit_id IN "
                "(SELECT id FROM units WHERE article_id = ?)",
                (article_id,),
            )
            assignments = ", ".join(f"{column} = ?" for column in current)
            self.conn.execute(
                f"UPDATE articles SET version = ?, {assignments} WHERE id = ?",
                (version, *current.values(), article_id),
            )
        cursor = self.conn.execute(
            "INSERT INTO article_versions (article_id, version, content_hash, title, "
            "published_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            (article_id, version, content_hash, title, published_at, now),
        )
        version_id = int(cursor.lastrowid or 0)
        returned = self._insert_returning(
            "paragraphs (version_id, article_id, position, text)",
            [(version_id, article_id, position, text) for position, text in enumerate(paragraphs)],
            "id, position",
        )
        by_position = {position: row_id for row_id, position in returned}
        paragraph_ids = [by_position[position] for position in range(len(paragraphs))]
        return article_id, version_id, paragraph_ids

    def save_units(
        self,
        article_id: int,
        rows: Sequence[tuple[int, int, int, int, int, int]],
        minhash: U32,
        band_keys: U32,
    ) -> list[int]:
        """Insert units (paragraph_id, position, start, end, words, shingles) with signatures."""
        returned = self._insert_returning(
            "units (paragraph_id, article_id, position, char_start, char_end, word_count, "
            "shingle_count)",
            [(row[0], article_id, *row[1:]) for row in rows],
            "id, paragraph_id, position",
        )
        by_place = {(paragraph, position): row_id for row_id, paragraph, position in returned}
        ids = [by_place[(row[0], row[1])] for row in rows]
        self.conn.executemany(
            "INSERT INTO unit_signatures (unit_id, minhash, band_keys) VALUES (?, ?, ?)",
            zip(ids, (m.tobytes() for m in minhash), (b.tobytes() for b in band_keys), strict=True),
        )
        return ids

    def _insert_returning(
        self, target: str, rows: Sequence[tuple[Any, ...]], returning: str
    ) -> list[tuple[Any, ...]]:
        """Multi-row INSERT ... RETURNING, in chunks under SQLite's variable limit.

        RETURNING rows come back in no promised order, so callers map them back
        by a unique key rather than by position.
        """
        out: list[tuple[Any, ...]] = []
        if not rows:
            return out
        width = len(rows[0])
        group = "(" + ", ".join("?" * width) + ")"
        step = max(1, 30000 // width)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            values = ", ".join([group] * len(chunk))
            args = [value for row in chunk for value in row]
            out.extend(
                self.conn.execute(
                    f"INSERT INTO {target} VALUES {values} RETURNING {returning}", args
                ).fetchall()
            )
        return out

    # -- the persistent LSH index -------------------------------------------------

    def units_since(
        self, after_id: int, chunk: int = 100_000
    ) -> Iterator[tuple[npt.NDArray[np.int64], U32]]:
        """Band keys of indexed units with id > after_id, in id order, in chunks."""
        bands = self.params.bands
        last = after_id
        while True:
            rows = self.conn.execute(
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
        row = self.conn.execute(
            "SELECT unit_id FROM unit_signatures ORDER BY unit_id DESC LIMIT 1 OFFSET ?",
            (count,),
        ).fetchone()
        return int(row[0]) if row else 0

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
        for start in range(0, len(ids), 500):
            batch = list(ids[start : start + 500])
            rows.extend(self.conn.execute(sql.format(",".join("?" * len(batch))), batch))
        return rows

    def _minhash(self, rows: list[tuple[Any, ...]]) -> U32:
        blob = b"".join(r[1] for r in rows)
        return np.frombuffer(blob, dtype=np.uint32).reshape(len(rows), self.params.num_perm)

    # -- counts ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        tables = (
            "sources",
            "articles",
            "article_versions",
            "paragraphs",
            "units",
            "unit_signatures",
            "passages",
            "passage_carriers",
            "clusters",
            "cluster_members",
        )
        return {t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _columns(
    rows: list[tuple[Any, ...]], indexes: Sequence[int]
) -> dict[int, npt.NDArray[np.int64]]:
    return {i: np.fromiter((r[i] for r in rows), dtype=np.int64, count=len(rows)) for i in indexes}
