"""`aggregator migrate --to URL`: a SQLite database copied into a real PostgreSQL one.

The oracle is the source file itself, read with sqlite3, against the target read
with psycopg: every row of every table, not only the counts the command checks.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aggregator.config import Config, PostgresURL
from aggregator.errors import StoreError
from aggregator.storage import transfer
from aggregator.storage.postgres import PostgresEngine
from aggregator.storage.schema import TABLES
from aggregator.storage.sqlite import SQLiteEngine
from aggregator.storage.store import Store
from tests.conftest import AGGREGATOR, SEEDS, THIRD_OUTLET, ingest, needs_tool, raw_rows
from tests.daemons import WORDS
from tests.postgres import INITDB, PostgresServer

pytestmark = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")

WIRE = (
    "The regional water authority said on Tuesday that reservoir levels had fallen to "
    "their lowest point in two decades, and asked households to cut their use by a "
    "fifth until the autumn rains arrive, warning that hosepipe bans would follow."
)


def _filler(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 50))).capitalize() + "."


def _outlets(root: Path, articles: int = 50, outlets: int = 5) -> Path:
    """ARTICLES stories over OUTLETS folders, each carrying the wire paragraph (edited a
    little in every third copy) inside its own text."""
    rng = random.Random(11)
    for n in range(articles):
        folder = root / f"outlet{n % outlets}"
        folder.mkdir(parents=True, exist_ok=True)
        wire = WIRE.replace("a fifth", "20 per cent") if n % 3 == 0 else WIRE
        body = [_filler(rng), wire, _filler(rng)]
        (folder / f"story{n:03d}.txt").write_text(
            f"Story {n} about {rng.choice(WORDS)}\n" + "\n".join(body) + "\n", encoding="utf-8"
        )
    return root


def _tables(
    database: Path | PostgresURL, source: Path, times: bool = True
) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied table (the columns SOURCE has; without `times`, not the `..._at`
    ones), read by the engine's own client."""
    rows = {}
    for table in TABLES:
        columns = [str(r[1]) for r in raw_rows(source, f"PRAGMA table_info({table})")]
        columns = [c for c in columns if times or not c.endswith("_at")]
        rows[table] = raw_rows(database, f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1")
    return rows


@pytest.fixture
def filled(tmp_path: Path, config: Config) -> Config:
    """A SQLite database with what every table can hold: folder and feed sources, an
    edited article (two versions), a wire passage carried by 50 articles, stories,
    service state and the stories feed's id."""
    ingest(config, SEEDS, THIRD_OUTLET, _outlets(tmp_path / "wire"))
    edited = tmp_path / "edited"
    edited.mkdir()
    shutil.copy(sorted(SEEDS.glob("002_*.txt"))[0], edited / "story.txt")
    ingest(config, edited)
    story = edited / "story.txt"
    story.write_text(story.read_text(encoding="utf-8") + "\nA closing line.\n", encoding="utf-8")
    ingest(config, edited)
    with Store(config.database, config.dedup.minhash) as store:
        store.feeds.subscribe("https://news.example.org/feed.xml", "Example", "auto")
        store.state.write({"last_tick": "ok", "started_at": "2026-12-01T08:00:00Z"})
        store.digests.feed_id(lambda: "urn:uuid:0f6c3f9e-4d1a-4b7e-9a57-3c1d2e8f9a10")
    return config


def _migrate(config: Config, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGGREGATOR), "--db", str(config.database), "migrate", "--to", target],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_row_is_copied_and_the_copy_answers_as_the_original(
    filled: Config, postgres: PostgresServer
) -> None:
    target = postgres.database()
    done = _migrate(filled, target)
    assert done.returncode == 0, done.stderr
    source = Path(str(filled.database))
    before = _tables(source, source)
    assert len(before["articles"]) == 57 and len(before["article_versions"]) == 58
    assert max(len(g) for g in _carriers_by_passage(before).values()) >= 50
    assert _tables(PostgresURL(target), source) == before
    assert "passage carriers compared as text" in done.stdout
    for command in (["clusters"], ["duplicates", "--json"], ["sources", "list"]):
        here = subprocess.run(
            [str(AGGREGATOR), "--db", str(filled.database), *command],
            capture_output=True,
            text=True,
        )
        there = subprocess.run(
            [str(AGGREGATOR), "--db", target, *command], capture_output=True, text=True
        )
        assert (there.returncode, there.stdout) == (here.returncode, here.stdout), command


def _carriers_by_passage(tables: dict[str, list[tuple[Any, ...]]]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for row in tables["passage_carriers"]:
        groups.setdefault(int(row[1]), []).append(int(row[2]))
    return groups


def test_the_copy_goes_on_where_the_original_left_off(
    filled: Config, postgres: PostgresServer, tmp_path: Path
) -> None:
    """Ids continue past the copied ones (never reused), on both sides alike (the times
    of the new rows are those of two ingests, a moment apart)."""
    target = PostgresURL(postgres.database())
    assert _migrate(filled, target.url).returncode == 0
    more = _outlets(tmp_path / "more", articles=6, outlets=2)
    ingest(filled, more)
    ingest(replace(filled, database=target), more)
    source = Path(str(filled.database))
    assert _tables(target, source, times=False) == _tables(source, source, times=False)


def test_a_target_that_holds_articles_is_refused_and_left_as_it_is(
    filled: Config, postgres: PostgresServer
) -> None:
    target = PostgresURL(postgres.database())
    ingest(replace(filled, database=target), SEEDS / "001_a6bde1a4b5b05d85.txt")
    before = raw_rows(target, "SELECT id, title FROM articles")
    done = _migrate(filled, target.url)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "already holds 1 articles; migrate into a new, empty database"
    )
    assert raw_rows(target, "SELECT id, title FROM articles") == before


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("news.db", "'news.db' is not a postgresql:// URL"),
        ("mysql://db.example/news", "mysql:// is not a supported database"),
    ],
)
def test_a_target_that_is_no_postgresql_url_is_a_usage_error(
    filled: Config, to: str, message: str
) -> None:
    done = _migrate(filled, to)
    assert done.returncode == 2 and message in done.stderr


def test_a_missing_source_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    done = subprocess.run(
        [str(AGGREGATOR), "--db", str(missing), "migrate", "--to", "postgresql:///x"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "does not exist; nothing to copy" in done.stderr
    assert not missing.exists()


def test_a_copy_that_fails_midway_leaves_no_copied_row(
    filled: Config, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = PostgresURL(postgres.database())
    copy_table: Callable[..., int] = transfer._copy_table

    def fail_at_units(reader: Any, engine: PostgresEngine, table: str) -> int:
        if table == "units":
            raise psycopg.OperationalError("connection lost (injected)")
        return copy_table(reader, engine, table)

    monkeypatch.setattr(transfer, "_copy_table", fail_at_units)
    with (
        Store(filled.database, filled.dedup.minhash) as source,
        Store(target, filled.dedup.minhash) as sink,
    ):
        assert isinstance(source.engine, SQLiteEngine)
        assert isinstance(sink.engine, PostgresEngine)
        with pytest.raises(StoreError, match=r"connection lost \(injected\)"):
            transfer.copy_to_postgres(source.engine, sink.engine)
    for table in ("sources", "articles", "paragraphs"):
        assert raw_rows(target, f"SELECT count(*) FROM {table}") == [(0,)]
