"""The README's sqlite-utils recipes run against the database that `make run` builds."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AGGREGATOR, REPO

SQLITE_UTILS = AGGREGATOR.parent / "sqlite-utils"


def _recipes() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- recipes:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in section.splitlines() if line.startswith("sqlite-utils ")]


@pytest.fixture(scope="module")
def make_run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database `make run` builds: the default config's ingest of seeds/."""
    db = tmp_path_factory.mktemp("run") / "aggregator.db"
    config = REPO / "config" / "aggregator.toml"
    subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "--db", str(db), "ingest"],
        check=True,
        capture_output=True,
    )
    return db


def _run(recipe: str, db: Path) -> str:
    argv = shlex.split(recipe)
    argv = [str(SQLITE_UTILS), *(str(db) if a == "var/aggregator.db" else a for a in argv[1:])]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def test_readme_has_the_promised_recipes() -> None:
    recipes = _recipes()
    assert any("cluster_articles" in r for r in recipes)
    assert any("duplicate_passages" in r for r in recipes)
    assert any(r.startswith("sqlite-utils search") for r in recipes)


def test_counts_recipe(make_run_db: Path) -> None:
    [recipe] = [r for r in _recipes() if "--counts" in r]
    counts = {row["table"]: row["count"] for row in json.loads(_run(recipe, make_run_db))}
    assert counts["articles"] == 5
    # Two passages (constructive partner, Deir el-Zour), each carried by 001 and 004.
    assert counts["passages"] == 2 and counts["passage_carriers"] == 4


def test_cluster_recipe_lists_the_story(make_run_db: Path) -> None:
    recipe = next(
        r
        for r in _recipes()
        if 'from cluster_articles"' in r or "location from cluster_articles" in r
    )
    out = _run(recipe, make_run_db)
    assert "Russian Federation continues Syrian air strikes" in out
    assert "Iraq closes airspace as missiles fly near airport" in out
    assert "Russian cruise missile strikes" not in out


def test_duplicates_recipe_shows_both_sides(make_run_db: Path) -> None:
    recipe = next(r for r in _recipes() if "duplicate_passages" in r)
    rows = json.loads(_run(recipe, make_run_db))
    assert len(rows) == 2
    partner = next(r for r in rows if "constructive partner" in r["passage"])
    sides = sorted([partner["passage"], partner["other_passage"]], key=len)
    assert "the USA would work" in sides[1] or "the USA would work" in sides[0]
    assert any("the US would work" in side for side in sides)
    assert all(r["similarity"] >= 0.5 for r in rows)


def test_search_recipe_finds_both_articles(make_run_db: Path) -> None:
    recipe = next(r for r in _recipes() if r.startswith("sqlite-utils search"))
    rows = json.loads(_run(recipe, make_run_db))
    assert sorted(r["title"] for r in rows) == [
        "Iraq closes airspace as missiles fly near airport",
        "Russian Federation continues Syrian air strikes",
    ]


def test_story_recipe_with_parameter(make_run_db: Path) -> None:
    recipe = next(r for r in _recipes() if "-p id" in r)
    out = _run(recipe, make_run_db)
    assert "Russian Federation continues Syrian air strikes" in out


def _documented_keys() -> set[str]:
    """Every key the README's configuration table names: `section.key`, and the keys
    listed after it in the same cell without their section (`bands`, `rows`...)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        cell = row.split("|")[1]
        names = [name.strip("` ") for name in cell.split(",")]
        section = names[0].split(".")[0] + "." if "." in names[0] else ""
        keys.update(n if "." in n or not section else section + n for n in names)
    return keys


def test_every_configuration_key_and_every_table_is_in_the_readme(make_run_db: Path) -> None:
    """The keys `config show` prints (every key there is) and every table of the
    database: a new key or table that the README does not name fails here."""
    shown = subprocess.run(
        [str(AGGREGATOR), "--config", str(REPO / "config" / "aggregator.toml"), "config", "show"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    section, keys = "", set()
    for line in shown.splitlines():
        if line.startswith("["):
            section = line.strip("[]") + "."
        elif " = " in line and not line.startswith("#"):
            keys.add(section + line.split(" = ", 1)[0])
    assert keys - _documented_keys() == set()
    tables = json.loads(
        subprocess.run(
            [str(SQLITE_UTILS), "tables", str(make_run_db)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    text = (REPO / "README.md").read_text(encoding="utf-8")
    names = {t["table"] for t in tables if not t["table"].startswith(("articles_fts_", "sqlite_"))}
    assert {name for name in names if f"`{name}`" not in text} == set()
