"""The SQLite engine: one database file, the zero-setup default.

One file in WAL mode, so readers (the CLI, `sqlite-utils`, Datasette) never
block the writer and the writer never blocks them. `synchronous=NORMAL`: a
committed article survives a crash or `kill -9` of the process; only a power
cut can lose the last few commits, and it cannot corrupt the file.

Writers take the write lock up front (`BEGIN IMMEDIATE`), so two processes may
write the same database: the lock serialises them, and each catches up on the
other's new units at the start of every write (`Articles.units_since`).

Opening creates or migrates the schema (after a backup; `dbfile.py`). SQLite's
errors leave as one-line `StoreError`s; those about the values of one
statement (too big, a constraint, a type) as `RefusedError`s, which cost the
article that caused them and not the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aggregator.errors import RefusedError, StoreError
from aggregator.storage.dbfile import check, describe, migrate
from aggregator.storage.engine import SQLITE, Args, Dialect

WAL_LIMIT = 64 * 1024 * 1024  # bytes

# SQLite's verdicts on the values of one statement, not on the store: SQLITE_TOOBIG
# (a string or blob over SQLITE_LIMIT_LENGTH), constraints, type mismatch, a
# parameter index out of range. Extended codes (SQLITE_CONSTRAINT_UNIQUE) match
# by prefix.
_VALUE_CODES = ("SQLITE_TOOBIG", "SQLITE_CONSTRAINT", "SQLITE_MISMATCH", "SQLITE_RANGE")
# Generic SQLITE_ERRORs that are limits on one statement's size ("too many SQL
# variables", "Expression tree is too large", "too many terms in compound SELECT").
_VALUE_MESSAGES = ("too big", "too many", "too large")


def translate(error: sqlite3.Error, path: Path) -> StoreError:
    """Our error for a SQLite error: `RefusedError` when it is about one statement's values."""
    text = " ".join(str(error).split())
    name = getattr(error, "sqlite_errorname", None) or ""
    if isinstance(error, sqlite3.DataError | sqlite3.IntegrityError) or name.startswith(
        _VALUE_CODES
    ):
        return RefusedError(f"database {path}: {text}", text)
    if name == "SQLITE_ERROR" and any(m in text.lower() for m in _VALUE_MESSAGES):
        return RefusedError(f"database {path}: {text}", text)
    return describe(error, path)


class SQLiteEngine:
    """A connection to one SQLite database file."""

    dialect: Dialect = SQLITE

    def __init__(
        self,
        path: Path,
        initial_meta: dict[str, str],
        *,
        readonly: bool = False,
        shared: bool = False,
        create_folder: bool = False,
    ) -> None:
        """Open (creating and migrating) the file; `shared`: usable from another thread,
        for a caller that lets only one thread at a time near it (the daemon's job thread).

        Only the database file is created: its folder must exist, unless
        `create_folder` (the configured database, whose folder the owner of the
        configuration means to have; never a path typed with --db, where a
        missing folder is a typo).
        """
        self.path = path
        self.location = str(path)
        if readonly and not path.exists():
            raise StoreError(f"database {path}: does not exist (run `aggregator ingest` first)")
        if not readonly and not create_folder and not path.parent.is_dir():
            raise StoreError(
                f"database {path}: folder {path.parent} does not exist (create it first)"
            )
        conn: sqlite3.Connection | None = None
        try:
            if not readonly and create_folder:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=30.0, check_same_thread=not shared
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                # Automatic checkpoints cut the WAL back to this size.
                conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            migrate(conn, path, readonly, initial_meta)
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, sqlite3.Error):
                raise describe(e, path) from e
            raise
        self.conn = conn
        self._reserved: dict[str, int] = {}  # table -> the highest id handed out

    def execute(self, sql: str, args: Args = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, args)
        except sqlite3.Error as e:
            raise translate(e, self.path) from e

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as e:
            raise translate(e, self.path) from e

    @contextmanager
    def write(self, serialised: bool = True, pipelined: bool = True) -> Iterator[None]:
        """One write transaction: committed whole on success, rolled back on any error.
        SQLite's writers are always serialised, and it has no round trips to save
        (`serialised` and `pipelined` are for PostgreSQL).

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
            raise translate(e, self.path) from e
        finally:
            self._reserved.clear()

    def reserve_ids(self, table: str, count: int) -> list[int]:
        """Ids above any the table holds, its AUTOINCREMENT counter gave, or this
        transaction handed out (storage/ids.py); the write lock keeps them ours.
        Outside a transaction nothing is remembered: the caller inserts at once, and
        a writer that came between makes that insert fail, never overwrite."""
        top = self._reserved.get(table) if self.conn.in_transaction else None
        if top is None:
            row = self.execute(
                f"SELECT max(coalesce((SELECT max(id) FROM {table}), 0), "
                "coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0))",
                (table,),
            ).fetchone()
            top = int(row[0])
        if self.conn.in_transaction:
            self._reserved[table] = top + count
        return list(range(top + 1, top + count + 1))

    def check(self) -> None:
        """CorruptDatabaseError unless the file passes SQLite's quick check."""
        check(self.conn, self.path)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        self.conn.close()
