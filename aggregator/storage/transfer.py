"""Copying a SQLite database into PostgreSQL (`aggregator migrate --to URL`).

What it decides, and why:

* **Into an empty database only.** The target gets the schema (as any
  PostgreSQL store does on first open) and must hold no article: merging two
  histories would renumber one of them, and every stored reference (passages,
  clusters, digests' feed id) would have to follow. Refused with a one-line
  error otherwise; nothing is written.
* **Ids are kept.** Rows are copied with their ids (the PostgreSQL identities
  are `BY DEFAULT`), then each identity is set past the largest id SQLite ever
  gave (its `sqlite_sequence` for AUTOINCREMENT tables), so nothing is reused.
* **One snapshot, one transaction.** The source is read inside one read
  transaction (WAL: a daemon may keep writing it; the copy is of one moment),
  the target written inside one transaction with `COPY`: a failure leaves the
  target without any copied row.
* **Verified before it is reported done**: the rows of every table are counted
  on both sides, and a sample of passage carriers (spread over the id range)
  is read back from both as text (article, source, paragraph, span of the
  passage) and compared. Any difference is an error naming the table or
  carrier.
* `meta` is copied whole (MinHash parameters, the stories feed's id, ...) over
  what the new target holds, so the copy answers as the original did.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aggregator.errors import StoreError
from aggregator.storage.postgres import PostgresEngine
from aggregator.storage.schema import TABLES
from aggregator.storage.sqlite import SQLiteEngine

log = logging.getLogger(__name__)

# Tables whose id PostgreSQL generates (the others' keys are given or not numbers).
IDENTITY_TABLES = (
    "sources",
    "articles",
    "article_versions",
    "paragraphs",
    "units",
    "clusters",
    "passages",
    "passage_carriers",
    "event_stories",
)
SAMPLE = 200  # passage carriers read back from both databases

_CARRIER_TEXT = (
    "SELECT c.id, c.passage_id, s.location, a.identity, p.position, "
    "substr(p.text, c.char_start + 1, c.char_end - c.char_start) "
    "FROM passage_carriers c JOIN articles a ON a.id = c.article_id "
    "JOIN sources s ON s.id = a.source_id JOIN paragraphs p ON p.id = c.paragraph_id "
    "WHERE c.id IN ({}) ORDER BY c.id"
)


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy moved, and how it was checked."""

    rows: dict[str, int]  # per table, equal on both sides
    sampled: int  # passage carriers compared as text


Progress = Callable[[str, int], None]


def copy_to_postgres(
    source: SQLiteEngine, target: PostgresEngine, progress: Progress | None = None
) -> Copied:
    """Copy every row of `source` into the empty `target`, then verify the copy."""
    held = int(target.execute("SELECT count(*) FROM articles").fetchone()[0])
    if held:
        raise StoreError(
            f"database {target.location}: already holds {held} articles; "
            "migrate into a new, empty database"
        )
    reader = source.conn
    reader.execute("BEGIN")  # one snapshot of the source for the copy and its check
    try:
        with target.write(pipelined=False):  # COPY cannot run in a pipeline
            target.execute("DELETE FROM meta")
            for table in TABLES:
                copied = _copy_table(reader, target, table)
                if progress:
                    progress(table, copied)
            _set_identities(reader, target)
        rows = _verify_counts(reader, target)
        sampled = _verify_sample(reader, target)
    except sqlite3.Error as e:
        raise StoreError(f"database {source.location}: cannot be read: {e}") from e
    finally:
        reader.execute("ROLLBACK")
    return Copied(rows=rows, sampled=sampled)


def _columns(reader: sqlite3.Connection, target: PostgresEngine, table: str) -> list[str]:
    """The columns both sides have (PostgreSQL's generated `search` is its own)."""
    ours = [str(r[1]) for r in reader.execute(f"PRAGMA table_info({table})")]
    theirs = {
        str(r[0])
        for r in target.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? "
            "AND is_generated = 'NEVER'",
            (table,),
        )
    }
    missing = [c for c in ours if c not in theirs]
    if missing:
        raise StoreError(
            f"database {target.location}: table {table} lacks columns {', '.join(missing)}"
        )
    return ours


def _copy_table(reader: sqlite3.Connection, target: PostgresEngine, table: str) -> int:
    columns = _columns(reader, target, table)
    names = ", ".join(columns)
    count = 0
    with target.conn.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in reader.execute(f"SELECT {names} FROM {table} ORDER BY rowid"):
            copy.write_row(row)
            count += 1
    log.info("copied %d rows of %s", count, table)
    return count


def _set_identities(reader: sqlite3.Connection, target: PostgresEngine) -> None:
    """Each identity past the largest id SQLite gave, deleted rows included."""
    given = dict(reader.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    for table in IDENTITY_TABLES:
        top = reader.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        following = max(int(top), int(given.get(table, 0))) + 1
        target.execute(
            f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {following}",
        )


def _verify_counts(reader: sqlite3.Connection, target: PostgresEngine) -> dict[str, int]:
    rows: dict[str, int] = {}
    for table in TABLES:
        here = int(reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        there = int(target.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        if here != there:
            raise StoreError(
                f"database {target.location}: table {table} holds {there} rows after the copy, "
                f"the source {here}"
            )
        rows[table] = here
    return rows


def _verify_sample(reader: sqlite3.Connection, target: PostgresEngine) -> int:
    """Passage carriers spread over the id range, compared as text on both sides."""
    ids = [int(r[0]) for r in reader.execute("SELECT id FROM passage_carriers ORDER BY id")]
    step = max(1, len(ids) // SAMPLE)
    sample = ids[::step][:SAMPLE]
    if not sample:
        return 0
    marks = ", ".join("?" * len(sample))
    here: list[tuple[Any, ...]] = reader.execute(_CARRIER_TEXT.format(marks), sample).fetchall()
    there = [tuple(r) for r in target.execute(_CARRIER_TEXT.format(marks), sample).fetchall()]
    if here != there:
        differing = next((a for a, b in zip(here, there, strict=False) if a != b), None)
        which = f"passage carrier {differing[0]} differs" if differing else "carriers are missing"
        raise StoreError(f"database {target.location}: {which} after the copy")
    return len(sample)
