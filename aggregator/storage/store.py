"""The store: one database, whichever engine holds it, and its parts.

`Store(database, params)` opens a SQLite file (`sqlite.py`, the default) or a
PostgreSQL database named by a `postgresql://` URL (`postgres.py`), and gives
the parts every stage goes through (`store.articles`, `store.feeds`, ...; the
protocols are in `protocol.py`). The parts are the same classes on both
engines: they write their statements in the SQL the two share (`engine.py`).

Opening checks the MinHash parameters stored with the index; a mismatch is
refused, because signatures made with other parameters cannot be compared.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from types import TracebackType
from typing import Any

from aggregator.config import SCHEME, SHINGLE_SCHEME, Database, MinHashParams, PostgresURL
from aggregator.errors import ParameterMismatchError
from aggregator.storage.articles import SQLArticles
from aggregator.storage.clusters import SQLClusters
from aggregator.storage.digests import SQLDigests
from aggregator.storage.engine import MAX_VARIABLES, Args, Dialect, Engine, Rows
from aggregator.storage.events import SQLEvents
from aggregator.storage.feeds import SQLFeeds
from aggregator.storage.ids import IdPool
from aggregator.storage.passages import SQLPassages
from aggregator.storage.reports import SQLReports
from aggregator.storage.schema import TABLES
from aggregator.storage.search import SearchRows
from aggregator.storage.sqlite import SQLiteEngine
from aggregator.storage.state import SQLState


def params_meta(params: MinHashParams) -> dict[str, str]:
    """The `meta` rows that record what a stored signature means."""
    meta = {f"minhash.{k}": str(v) for k, v in asdict(params).items()}
    meta["minhash.scheme"] = SCHEME
    meta["minhash.shingles"] = SHINGLE_SCHEME
    return meta


def open_engine(
    database: Database,
    params: MinHashParams,
    *,
    readonly: bool = False,
    shared: bool = False,
    create_folder: bool = False,
) -> Engine:
    """The engine for `database`: a PostgreSQL URL, or else a SQLite file."""
    if isinstance(database, PostgresURL):
        from aggregator.storage.postgres import PostgresEngine  # the postgres extra

        return PostgresEngine(database, params_meta(params), readonly=readonly)
    return SQLiteEngine(
        database,
        params_meta(params),
        readonly=readonly,
        shared=shared,
        create_folder=create_folder,
    )


class Store:
    """A connection to one aggregator database."""

    def __init__(
        self,
        database: Database,
        params: MinHashParams,
        *,
        readonly: bool = False,
        shared: bool = False,
        create_folder: bool = False,
    ) -> None:
        """Open (creating and migrating) a database; `shared`: usable from another thread,
        for a caller that lets only one thread at a time near it (the daemon's job thread).
        `create_folder`: a SQLite file's folder may be created (`SQLiteEngine`)."""
        self.database = database
        self.params = params
        self.engine = open_engine(
            database, params, readonly=readonly, shared=shared, create_folder=create_folder
        )
        self._closed = False
        self.writing = False  # inside `write()`
        self.ids = IdPool(self.engine)  # new rows' ids, drawn ahead (storage/ids.py)
        try:
            self._check_params()
        except BaseException:
            self.close()
            raise
        # One object per part of the database: the only way stages read or write it.
        self.feeds = SQLFeeds(self)
        self.state = SQLState(self)
        self.clusters = SQLClusters(self)
        self.passages = SQLPassages(self)
        self.digests = SQLDigests(self)
        self.reports = SQLReports(self)
        self.events = SQLEvents(self)
        self.articles = SQLArticles(self)
        self.search = SearchRows(self)

    @property
    def location(self) -> str:
        """The database as messages show it: a path, or a URL without its password."""
        return self.engine.location

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def conn(self) -> Any:
        """The engine's own connection, for tests that look under the parts."""
        return getattr(self.engine, "conn")  # noqa: B009

    def close(self) -> None:
        if not self._closed:
            self.engine.close()
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
                f"unclosed database {self.location}", ResourceWarning, stacklevel=2, source=self
            )

    def check(self) -> None:
        """CorruptDatabaseError (SQLite) or StoreError unless the database is sound."""
        self.engine.check()

    def size(self) -> int:
        """Bytes the database takes on disk."""
        return self.engine.size()

    def _check_params(self) -> None:
        rows = self.execute("SELECT key, value FROM meta WHERE key LIKE 'minhash.%'")
        stored = {str(k): str(v) for k, v in rows.fetchall()}
        wanted = params_meta(self.params)
        differing = [k for k in sorted(wanted) if stored.get(k) != wanted[k]]
        if differing:
            detail = ", ".join(
                f"{k.removeprefix('minhash.')}={stored.get(k)} (config: {wanted[k]})"
                for k in differing
            )
            raise ParameterMismatchError(
                f"database {self.location}: built with other MinHash parameters: {detail}; "
                "use the parameters it was built with, or a new database"
            )

    # -- statements and transactions (the parts' and the tests' way in) -----------------

    @contextmanager
    def write(self, serialised: bool = True, pipelined: bool = True) -> Iterator[None]:
        """One write transaction: committed whole on success, rolled back on any error.

        The engine's errors (disk full, read-only, corruption) leave as StoreError.
        The transaction's new articles get their search rows just before it commits.
        `serialised=False` (PostgreSQL): not after other writers, for writes that
        touch no article (storage/nodes.py). `pipelined=False` (PostgreSQL): each
        statement waits for its answer, as COPY needs (`PostgresEngine.write`).
        """
        with self.engine.write(serialised, pipelined):
            self.writing = self.ids.open = True
            try:
                yield
                self.search.flush()
            finally:
                self.writing = self.ids.open = False
                self.ids.forget()
                self.search.forget()
                self.articles.forget()

    def execute(self, sql: str, args: Args = ()) -> Rows:
        return self.engine.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.engine.executemany(sql, rows)

    def insert_rows(
        self,
        target: str,
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
        returning: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """`INSERT INTO target VALUES (...), (...), ...` for all of `rows`, in chunks
        under SQLite's variable limit: one statement (one round trip to PostgreSQL)
        per chunk instead of one per row. `conflict`: an `ON CONFLICT ...` clause;
        `returning`: columns to give back (in no promised order)."""
        out: list[tuple[Any, ...]] = []
        if not rows:
            return out
        width = len(rows[0])
        group = "(" + ", ".join("?" * width) + ")"
        step = max(1, MAX_VARIABLES // width)
        tail = (f" {conflict}" if conflict else "") + (
            f" RETURNING {returning}" if returning else ""
        )
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            sql = f"INSERT INTO {target} VALUES {', '.join([group] * len(chunk))}{tail}"
            cursor = self.execute(sql, [value for row in chunk for value in row])
            if returning:
                out.extend(cursor.fetchall())
        return out

    def counts(self) -> dict[str, int]:
        """Rows per table, but for the small key-value ones (meta, service_state)."""
        tables = [t for t in TABLES if t not in ("meta", "service_state")]
        return {t: int(self.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
