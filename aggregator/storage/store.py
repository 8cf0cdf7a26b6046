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
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.config import SCHEME, SHINGLE_SCHEME, MinHashParams
from aggregator.errors import ParameterMismatchError, StoreError
from aggregator.storage.articles import SQLiteArticles
from aggregator.storage.clusters import SQLiteClusters
from aggregator.storage.dbfile import check, describe, migrate
from aggregator.storage.digests import SQLiteDigests
from aggregator.storage.feeds import SQLiteFeeds
from aggregator.storage.passages import SQLitePassages
from aggregator.storage.reports import SQLiteReports
from aggregator.storage.state import SQLiteState

U32 = npt.NDArray[np.uint32]


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
        self.articles = SQLiteArticles(self)

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
