"""Row ids the writer gives its new rows itself, drawn from the engine ahead of need.

An `INSERT ... RETURNING id` makes the writer wait for the server's answer
before it can write the rows that point at the new one (a version at its
article, units at their paragraphs, a carrier at its passage). On PostgreSQL
each such wait is a round trip that ends the pipeline's overlap of this
process and the server (postgres.py `write`), and an article had nine of
them. So a write transaction draws the ids it will need in a few statements
(`expect` with the batch's counts, then blocks of `BLOCK` on demand) and
inserts its rows with their ids given: nothing in the article's chain waits
for an INSERT (figures: docs/benchmarks.md, "The writer gives its rows their
ids").

What the engines promise (`reserve_ids`): an id drawn is given to nobody
else. PostgreSQL draws from the column's identity sequence, which never gives
a value twice, so a rolled-back transaction leaves a gap and nothing else.
SQLite has no sequence: it hands out ids above the largest the table holds or
its AUTOINCREMENT counter ever gave, and above what it already handed out in
this transaction; the write lock it holds keeps everyone else out until the
commit. Ids stay in commit order, as the persistent index's catch-up needs
(`units_since`): ids are drawn only inside a write transaction, after the
writers' lock, and the pool is emptied when the transaction ends, so a later
transaction never uses ids drawn before another writer's commit.
"""

from __future__ import annotations

from collections.abc import Mapping

from aggregator.storage.engine import Engine

BLOCK = 64  # ids drawn at once when a transaction needs more than it said


class IdPool:
    """The ids one write transaction drew and has not used yet, per table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._free: dict[str, list[int]] = {}
        self.open = False  # inside a write transaction

    def expect(self, counts: Mapping[str, int]) -> None:
        """Draw now what the transaction will need (one statement per table)."""
        if not self.open:
            return
        for table, count in counts.items():
            free = self._free.setdefault(table, [])
            if count > len(free):
                self._draw(table, count - len(free))

    def take(self, table: str, count: int) -> list[int]:
        """`count` new ids for `table`, ascending. Outside a write transaction (a
        test's or a tool's statement at a time) they are drawn as asked and none
        kept: there is no transaction to keep them for."""
        if not self.open:
            return self._engine.reserve_ids(table, count) if count else []
        free = self._free.setdefault(table, [])
        if count > len(free):
            self._draw(table, max(count - len(free), BLOCK))
            free = self._free[table]
        taken, self._free[table] = free[:count], free[count:]
        return taken

    def one(self, table: str) -> int:
        """One new id for `table`."""
        return self.take(table, 1)[0]

    def forget(self) -> None:
        """The transaction ended: what it drew and did not use is given up."""
        self._free.clear()

    def _draw(self, table: str, count: int) -> None:
        self._free[table].extend(self._engine.reserve_ids(table, count))
