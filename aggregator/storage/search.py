"""Full-text search rows: a transaction's new articles enter SQLite's FTS5 table at once.

`articles_fts` (schema.py) is an external-content FTS5 table over the
articles' title and body; `sqlite-utils search` and the browse view read it.
Until schema version 9 a trigger indexed each article as it was inserted.
Now a write transaction's new articles are indexed by one
`INSERT ... SELECT` just before it commits: measured at 20 articles per
transaction, 313 µs per article through the trigger against 126 µs in one
statement (docs/benchmarks.md, "Full-text rows per transaction"). A reader
never sees an article without its search row, since both commit together.

What it must keep true: FTS5 with external content takes a row out by being
handed the values it was indexed with (the update and delete triggers do
that), so an article must be in the index before its title or body change.
`changing` indexes the pending ones first when an update touches one of
them. New articles are exactly the rows with ids from the first one inserted
in the transaction: a new row's id is one above every id in the table.

Outside a transaction (autocommit) an article is indexed at once.
PostgreSQL keeps its own `tsvector` column (pgschema.py): nothing to do there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.storage.store import Store


class SearchRows:
    """Which new articles still lack their FTS5 row, and writing those rows."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._enabled = store.dialect.name == "sqlite"
        self._first: int | None = None  # the first article inserted and not indexed yet

    def added(self, article_id: int) -> None:
        """An article was inserted: indexed when the transaction ends (now, outside one)."""
        if not self._enabled:
            return
        if self._first is None:
            self._first = article_id
        if not self._store.writing:
            self.flush()

    def changing(self, article_id: int) -> None:
        """An article's title or body is about to change: its row must be indexed first."""
        if self._first is not None and article_id >= self._first:
            self.flush()

    def flush(self) -> None:
        """Index every article inserted since the last flush."""
        if self._first is None:
            return
        first, self._first = self._first, None
        self._store.execute(
            "INSERT INTO articles_fts (rowid, title, body) "
            "SELECT id, title, body FROM articles WHERE id >= ?",
            (first,),
        )

    def forget(self) -> None:
        """The transaction ended (committed after `flush`, or rolled back)."""
        self._first = None
