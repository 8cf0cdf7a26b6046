"""Database file: migrating it safely, checking it, and what SQLite's errors mean.

What it decides, and why:

* **Migrations back up first.** An existing database of an older schema is
  copied (SQLite's online backup, consistent even with readers attached) to
  `DATABASE.vN.bak` before it is migrated in place, in one transaction. A
  migration that fails rolls back, and the backup is there either way.
* **Corruption is reported, never repaired silently.** `check()` runs
  `PRAGMA quick_check` (the daemon does at start); a file that is not a
  database, or a malformed one, becomes a `CorruptDatabaseError` naming the
  file and the way out (a backup, `sqlite3 FILE .recover`). Nothing here
  deletes, truncates or recreates a database file.
* **SQLite errors become one line that says what to do**: disk full (nothing
  of the current article was kept; the write resumes when there is space),
  read-only file or filesystem, I/O error, corruption, a lock held too long.
* **Browsing opens the file read-only, never through `Store`**, which would
  migrate an older schema: `schema_version` looks at a file before Datasette
  is started on it, and `connect_read_only` makes each of Datasette's
  connections (`mode=ro`, and `query_only` so no statement can write).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from aggregator.errors import CorruptDatabaseError, StoreError
from aggregator.storage.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)


def describe(error: sqlite3.Error, path: Path) -> StoreError:
    """Our error for a SQLite error on `path`, with what to do about it."""
    text = str(error)
    lower = text.lower()
    if "full" in lower:
        return StoreError(
            f"database {path}: disk full ({text}); nothing of the current write was kept, "
            "and writing resumes once there is space"
        )
    if "readonly" in lower or "read-only" in lower:
        return StoreError(
            f"database {path}: cannot write ({text}); check the permissions of the file and "
            "its folder, and that the filesystem is writable"
        )
    if "malformed" in lower or "not a database" in lower or "corrupt" in lower:
        return CorruptDatabaseError(
            f"database {path}: corrupted ({text}); it was left as it is: restore a backup, or "
            f"try `sqlite3 {path} .recover`"
        )
    if "disk i/o" in lower:
        return StoreError(f"database {path}: I/O error ({text}); check the disk")
    if "locked" in lower or "busy" in lower:
        return StoreError(f"database {path}: busy ({text}); another process held it too long")
    return StoreError(f"database {path}: {text}")


def check(conn: sqlite3.Connection, path: Path) -> None:
    """CorruptDatabaseError unless `PRAGMA quick_check` finds the file sound."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        raise describe(e, path) from e
    problems = [str(r[0]) for r in rows if r[0] != "ok"]
    if problems:
        raise CorruptDatabaseError(
            f"database {path}: corrupted ({problems[0]}; {len(problems)} problems found); it "
            f"was left as it is: restore a backup, or try `sqlite3 {path} .recover`"
        )


def read_only_uri(path: Path) -> str:
    """A `mode=ro` SQLite URI for PATH (percent-encoded: `?`, `#` and `%` are safe)."""
    return path.resolve().as_uri() + "?mode=ro"


def schema_version(path: Path) -> int | None:
    """The schema version of the aggregator database PATH, read without creating or
    changing anything; None if it is a database but not an aggregator one.

    SQLite's errors (not a database, unreadable) leave as `describe` says.
    """
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise describe(e, path) from e
    return None if version == 0 or "articles" not in tables else version


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection to PATH that cannot write (`mode=ro`, `query_only`), for any thread."""
    conn = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    return conn


def migrate(conn: sqlite3.Connection, path: Path, readonly: bool, initial: dict[str, str]) -> None:
    """Bring the schema to SCHEMA_VERSION; `initial` is the meta of a new database."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {path}: schema version {version} is newer than this "
            f"aggregator understands ({SCHEMA_VERSION}); upgrade aggregator"
        )
    if version == SCHEMA_VERSION:
        return
    if readonly:
        raise StoreError(f"database {path}: schema version {version} needs migrating")
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise StoreError(f"database {path}: not an aggregator database")
    if version > 0:
        backup = backup_before_migration(conn, path, version)
        log.warning(
            "database %s: migrating schema %d to %d; a copy of the old one is at %s",
            path,
            version,
            SCHEMA_VERSION,
            backup,
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        if version == 0:
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(initial.items()))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def backup_before_migration(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """A consistent copy of the database as it is, next to it; never over an older copy."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.v{version}.{n}.bak")
    copy = sqlite3.connect(target)
    try:
        conn.backup(copy)
    finally:
        copy.close()
    return target


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (triggers contain semicolons)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
