"""bench/statements.py: every statement of the process is counted once under its text,
its rows' fetching included in its time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aggregator.storage.sqlite import SQLiteEngine
from bench import statements


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> statements.Tally:
    """The timer installed for one test; the engine's methods put back afterwards."""
    monkeypatch.setattr(SQLiteEngine, "execute", SQLiteEngine.execute)
    monkeypatch.setattr(SQLiteEngine, "executemany", SQLiteEngine.executemany)
    monkeypatch.setattr(statements, "TALLY", statements.Tally())
    statements.install()
    return statements.TALLY


def test_counts_each_statement_once_under_its_text(timed: statements.Tally, tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "t.db", initial_meta={})
    before = timed.snapshot()
    engine.execute("CREATE TABLE t (x INTEGER)")
    for n in range(7):
        engine.execute("INSERT INTO t (x) VALUES (?)", (n,))
    engine.execute("INSERT INTO t (x) VALUES (?), (?)", (7, 8))
    engine.executemany("INSERT INTO t (x) VALUES (?)", [(9,), (10,), (11,)])
    rows = engine.execute("SELECT x FROM t WHERE x IN (?,?,?) ORDER BY x", (1, 2, 3)).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    tally = {key: runs for key, runs, _ in statements.between(before, timed.snapshot())}
    # Value lists are cut, so one-row and two-row INSERTs are one statement.
    assert tally["INSERT INTO t (x) VALUES ..."] == 8
    assert tally["many: INSERT INTO t (x) VALUES ..."] == 3
    assert tally["SELECT x FROM t WHERE x IN (...) ORDER BY x"] == 1
    engine.close()


def test_fetching_rows_counts_in_the_statements_time(
    timed: statements.Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow fetch (here a sleeping row factory) is charged to its statement."""
    engine = SQLiteEngine(tmp_path / "t.db", initial_meta={})
    engine.execute("CREATE TABLE t (x INTEGER)")
    engine.execute("INSERT INTO t (x) VALUES (1), (2), (3), (4)")

    def slow(cursor: object, row: tuple[int]) -> tuple[int]:
        time.sleep(0.02)
        return row

    engine.conn.row_factory = slow
    before = timed.snapshot()
    assert len(list(engine.execute("SELECT x FROM t"))) == 4
    rows = statements.between(before, timed.snapshot())
    assert [(key, runs) for key, runs, _ in rows] == [("SELECT x FROM t", 1)]
    assert rows[0][2] >= 0.08
    engine.close()


def test_table_gives_per_entry_figures_and_the_total() -> None:
    rows = [("A", 10, 0.010), ("B", 5, 0.002)]
    lines = statements.table(rows, entries=100)
    assert "| `A` | 10 | 10.0 | 1,000.0 | 100.0 |" in lines
    assert lines[-1] == "| **all 2 statements** | 15 | 12.0 | 800.0 | 120.0 |"
