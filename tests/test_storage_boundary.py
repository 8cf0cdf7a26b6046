"""Issue 14: storage is the only package that speaks SQL.

Every string literal in the package is read (ast), and one that reads as an SQL
statement, or a call of `.execute`/`.executemany`/`.conn`, outside
aggregator/storage/ is a failure. `NOT_YET` lists the modules whose statements
are still being moved (each step of the issue shortens it); a module on it
that has none left fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "aggregator"
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WITH|PRAGMA|REPLACE)\s")
NOT_YET: set[str] = set()


def _speaks_sql(path: Path) -> list[str]:
    """Where `path` holds an SQL statement or reaches for the connection."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL.match(node.value):
                found.append(f"line {node.lineno}: {node.value.strip()[:60]!r}")
        elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "conn"):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_no_sql_outside_the_storage_package() -> None:
    speaking = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("storage/"):
            continue
        if found := _speaks_sql(path):
            speaking[name] = found
    assert {n: f for n, f in speaking.items() if n not in NOT_YET} == {}
    assert sorted(NOT_YET - set(speaking)) == [], "done: take it off NOT_YET"


def test_the_check_sees_sql_and_the_connection(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'def f(store):\n    store.execute("SELECT 1")\n    return "select the best"\n'
    )
    assert _speaks_sql(module) == ["line 2: .execute", "line 2: 'SELECT 1'"]
