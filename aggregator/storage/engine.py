"""What the store needs of a database engine, and how one statement text serves two.

The parts of the store (`articles.py`, `feeds.py`, ...) write their statements
once, in the SQL that SQLite and PostgreSQL share, with SQLite's placeholders:
`?` for a position, `:name` for a name. An engine runs them:

* `sqlite.py` hands them to `sqlite3` as they are;
* `postgres.py` rewrites the placeholders for psycopg (`%s`, `%(name)s`, a
  literal `%` doubled) with `to_pyformat` below, once per statement text.

What the shared subset means in practice, so that a statement stays portable:
`INSERT ... RETURNING id` (never `lastrowid`), `ON CONFLICT ... DO NOTHING /
DO UPDATE` (never `INSERT OR IGNORE`), `count(*) FILTER (WHERE ...)` (never a
`sum()` of a comparison), the dialect's name for the two-argument minimum and
maximum (`Dialect.least`, `Dialect.greatest`: SQLite's scalar `min`/`max`), no
`round()` of a float, no JSON functions, `NULLS FIRST/LAST` wherever a sort key
may be NULL (SQLite sorts NULL first, PostgreSQL last), and every selected
column either grouped or aggregated. Rows come back as tuples on both engines.

Errors leave an engine as `StoreError`s that name the database and say what to
do; a `RefusedError` when the engine refused the values of one statement (too
large, a constraint, a type), which costs one article and not the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

Args = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few words the engines spell differently."""

    name: str
    least: str  # the smaller of two values (SQLite: scalar min)
    greatest: str  # the larger of two values (SQLite: scalar max)


# Bound values per statement: under SQLite's default limit (32,766), so that a
# multi-row statement (`Store.insert_rows`) runs on both engines.
MAX_VARIABLES = 30_000

SQLITE = Dialect("sqlite", least="min", greatest="max")
POSTGRESQL = Dialect("postgresql", least="least", greatest="greatest")


class Rows(Protocol):
    """A statement's result: a cursor of tuples."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Engine(Protocol):
    """One open connection to one database, as the store uses it."""

    @property
    def dialect(self) -> Dialect: ...
    @property
    def location(self) -> str:
        """The database as messages show it (a path; a URL without its password)."""
        ...

    def execute(self, sql: str, args: Args = ()) -> Rows: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def write(
        self, serialised: bool = True, pipelined: bool = True
    ) -> AbstractContextManager[None]:
        """One write transaction, writers serialised (unless told not to, where the
        engine can): committed whole or rolled back. `pipelined`: statements may be
        sent before the previous one's answer (PostgreSQL; not for COPY)."""
        ...

    def reserve_ids(self, table: str, count: int) -> list[int]:
        """`count` ids for new rows of `table`, ascending, that the engine gives
        nobody else (inside a write transaction; storage/ids.py)."""
        ...

    def check(self) -> None:
        """CorruptDatabaseError (or StoreError) unless the database is sound."""
        ...

    def size(self) -> int:
        """Bytes the database takes on disk."""
        ...

    def close(self) -> None: ...


# A quoted literal (its `%` doubled), a `?`, a `:name` (not a `::` cast), or a `%`.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|(?<![:\w]):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """SQLite's placeholders as psycopg's: `?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%`.

    Quoted literals keep their `?` and `:` (only a `%` is doubled, since psycopg
    reads it everywhere); the statement texts are few and fixed, so each is
    rewritten once.
    """

    def rewrite(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("'"):  # psycopg reads `%` even inside literals
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({match.group(1)})s"

    return _TOKEN.sub(rewrite, sql)
