"""Time every SQL statement a benchmark's own process runs, grouped by statement text.

`bench.feeds --statements` uses this to show where the writer's SQL time goes
(issue 15: the first poll is bound by one writer thread, and its SQL is the
floor no Python change removes). `install()` wraps `SQLiteEngine.execute` and
`executemany` of this process: the time of `execute` (SQLite prepares and
runs the statement to its first row) plus the time spent fetching the rest of
its rows from the cursor it returned. The wrapper's own cost (about a
microsecond a statement) is counted in, so the figures are an upper bound.

Only SQLite, and only the calling process: the worker pools write nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Tally:
    """Statements run and seconds spent, per statement text."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, seconds: float, count: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + count
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def snapshot(self) -> dict[str, tuple[int, float]]:
        return {k: (self.counts.get(k, 0), v) for k, v in self.seconds.items()}


TALLY = Tally()


def _key(sql: str) -> str:
    """A statement's text on one line, cut before its value lists."""
    text = " ".join(sql.split())
    cut = text.find(" VALUES (")
    if cut != -1:
        text = text[: cut + 8] + "..."
    cut = text.find(" IN (?")
    if cut != -1:
        text = text[: cut + 4] + "(...)" + text[text.find(")", cut) + 1 :]
    return text[:140]


class _Cursor:
    """A cursor whose row fetching is timed under its statement's key."""

    def __init__(self, cursor: Any, key: str) -> None:
        self._cursor = cursor
        self._key = key

    def _timed(self, fn: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            TALLY.add(self._key, time.perf_counter() - started, 0)

    def fetchone(self) -> Any:
        return self._timed(self._cursor.fetchone)

    def fetchall(self) -> Any:
        return self._timed(self._cursor.fetchall)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._timed(self._cursor.fetchall))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def install() -> None:
    """Time every statement the SQLite engine of this process runs from now on."""
    from aggregator.storage.sqlite import SQLiteEngine

    execute, executemany = SQLiteEngine.execute, SQLiteEngine.executemany

    def timed_execute(self: SQLiteEngine, sql: str, args: Any = ()) -> Any:
        key = _key(sql)
        started = time.perf_counter()
        cursor = execute(self, sql, args)
        TALLY.add(key, time.perf_counter() - started)
        return _Cursor(cursor, key)

    def timed_executemany(self: SQLiteEngine, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        started = time.perf_counter()
        executemany(self, sql, rows)
        TALLY.add("many: " + _key(sql), time.perf_counter() - started, len(rows))

    SQLiteEngine.execute = timed_execute  # type: ignore[method-assign]
    SQLiteEngine.executemany = timed_executemany  # type: ignore[method-assign]


def between(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> list[tuple[str, int, float]]:
    """(statement, runs, seconds) between two snapshots, most time first."""
    rows = []
    for key, (count, seconds) in after.items():
        was_count, was_seconds = before.get(key, (0, 0.0))
        if seconds - was_seconds > 0:
            rows.append((key, count - was_count, seconds - was_seconds))
    return sorted(rows, key=lambda r: -r[2])


def table(rows: list[tuple[str, int, float]], entries: int, top: int = 25) -> list[str]:
    """Markdown lines: the `top` statements by time, per entry, and the total."""
    total_runs = sum(r[1] for r in rows)
    total = sum(r[2] for r in rows)
    lines = [
        "| Statement | Runs | ms total | µs per run | µs per entry |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, runs, seconds in rows[:top]:
        per_run = seconds / runs * 1e6 if runs else 0.0
        shown = key.replace("|", "\\|")
        lines.append(
            f"| `{shown}` | {runs:,} | {seconds * 1e3:,.1f} | {per_run:,.1f} | "
            f"{seconds / entries * 1e6:,.1f} |"
        )
    lines.append(
        f"| **all {len(rows)} statements** | {total_runs:,} | {total * 1e3:,.1f} | "
        f"{total / max(total_runs, 1) * 1e6:,.1f} | {total / entries * 1e6:,.1f} |"
    )
    return lines
