"""The store: parameters, schema, transactions, versions and concurrent writers."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from aggregator.config import Config, Database, IngestConfig, MinHashParams
from aggregator.errors import ParameterMismatchError, StoreError
from aggregator.ingest import prepare
from aggregator.ingest.pipeline import Ingester
from aggregator.model import Article, RawDocument, format_time, parse_time
from tests.conftest import AGGREGATOR, SEEDS, OpenStore, ingest, read_all

pytestmark = pytest.mark.both_stores

SEED_001 = SEEDS / "001_a6bde1a4b5b05d85.txt"
SEED_004 = SEEDS / "004_e5c7ce075aa33b3d.txt"


@pytest.mark.sqlite_only
def test_database_is_wal_with_foreign_keys(config: Config, open_store: OpenStore) -> None:
    store = open_store()
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_other_minhash_parameters_are_refused(config: Config, open_store: OpenStore) -> None:
    ingest(config, SEED_001)
    other = replace(config.dedup.minhash, num_perm=64, bands=16)
    with pytest.raises(ParameterMismatchError, match=r"num_perm=128 \(config: 64\)"):
        open_store(config.database, other)


def test_other_parameters_are_one_line_error_in_the_cli(tmp_path: Path, config: Config) -> None:
    ingest(config, SEED_001)
    conf = tmp_path / "other.toml"
    conf.write_text(f'database = "{config.database}"\n[dedup]\nshingle_words = 3\n')
    result = subprocess.run(
        [str(AGGREGATOR), "--config", str(conf), "ingest", str(SEED_004)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "built with other MinHash parameters: shingle_words=2 (config: 3)" in result.stderr


def test_newer_schema_and_foreign_databases_are_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    newer = tmp_path / "newer.db"
    with closing(sqlite3.connect(newer)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        open_store(newer, MinHashParams())
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an aggregator database"):
        open_store(foreign, MinHashParams())


def test_second_process_finds_duplicates_against_the_first(
    config: Config, open_store: OpenStore
) -> None:
    store = open_store()
    ingester = Ingester(store, config)  # index loaded now, while the database is empty
    subprocess.run(
        [str(AGGREGATOR), "--db", str(config.database), "ingest", str(SEED_001)],
        check=True,
        capture_output=True,
    )
    [outcome] = list(ingester.ingest(read_all([SEED_004], config)))
    assert outcome.status == "new"
    assert outcome.passages == 2
    assert outcome.cluster_id is not None


def test_a_failed_write_leaves_nothing_behind(
    config: Config, monkeypatch: pytest.MonkeyPatch, open_store: OpenStore, store_kind: str
) -> None:
    ingest(config, SEED_001)
    store = open_store()
    before = store.counts()
    ingester = Ingester(store, config)
    engine_error = sqlite3.OperationalError if store_kind == "sqlite" else psycopg.OperationalError

    def explode(*args: object, **kwargs: object) -> list[int]:
        raise engine_error("disk I/O error (injected)")

    monkeypatch.setattr(store.articles, "save_units", explode)
    with pytest.raises(StoreError, match=r"disk I/O error \(injected\)"):
        list(ingester.ingest(read_all([SEED_004], config)))
    assert store.counts() == before
    assert ingester.index.size == before["unit_signatures"]
    monkeypatch.undo()
    [outcome] = list(ingester.ingest(read_all([SEED_004], config)))
    assert (outcome.status, outcome.passages) == ("new", 2)


def test_an_edited_file_becomes_a_new_version(
    tmp_path: Path, config: Config, open_store: OpenStore
) -> None:
    folder = tmp_path / "wire"
    folder.mkdir()
    shutil.copy(SEED_001, folder / "story.txt")
    ingest(config, folder)
    story = folder / "story.txt"
    story.write_text(story.read_text(encoding="utf-8") + "\nA new closing paragraph was added.")
    [outcome] = ingest(config, folder)
    assert outcome.status == "updated"
    store = open_store()
    counts = store.counts()
    assert (counts["articles"], counts["article_versions"]) == (1, 2)
    version, body = store.execute("SELECT version, body FROM articles").fetchone()
    assert version == 2 and body.endswith("A new closing paragraph was added.")
    # Only the current version's units stay in the index.
    assert counts["unit_signatures"] < counts["units"]
    # The new version still matches other articles.
    [other] = ingest(config, SEED_004)
    assert other.passages == 2


def test_full_text_search_finds_articles(
    config: Config, open_store: OpenStore, store_kind: str
) -> None:
    ingest(config, SEEDS)
    store = open_store()
    search = (
        "SELECT a.title FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
        "WHERE articles_fts MATCH ?"
        if store_kind == "sqlite"  # FTS5; PostgreSQL: the generated tsvector column
        else "SELECT title FROM articles WHERE search @@ plainto_tsquery('simple', ?)"
    )
    assert len(store.execute(search, ("constructive partner",)).fetchall()) == 2


def test_an_unexpected_extraction_error_costs_one_document(
    config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in extraction (ours or a library's) fails that document, logged with its
    traceback; the rest of the batch is stored."""
    real_extract = prepare.extract_within

    def flaky(doc: RawDocument, caps: IngestConfig) -> tuple[Article, str | None]:
        if doc.location.endswith(SEED_001.name):
            raise AssertionError("too many bodies (injected)")
        return real_extract(doc, caps)

    monkeypatch.setattr(prepare, "extract_within", flaky)
    outcomes = {Path(o.location).name: o for o in ingest(config, SEED_001, SEED_004)}
    failed = outcomes[SEED_001.name]
    assert failed.status == "failed"
    assert (
        failed.error == "extraction failed unexpectedly: AssertionError: too many bodies (injected)"
    )
    assert outcomes[SEED_004.name].status == "new"
    assert "Traceback" in caplog.text and "too many bodies (injected)" in caplog.text


def test_times_before_year_1000_are_written_zero_padded_and_read_back() -> None:
    moment = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_time(moment) == "0999-01-02T03:04:05Z"
    assert parse_time(format_time(moment)) == moment
    assert format_time(moment) < format_time(datetime(2026, 1, 1, tzinfo=UTC))  # sorts as text


def test_a_time_that_leaves_the_datetime_range_in_utc_is_clamped_to_its_end() -> None:
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2)))
    assert format_time(early) == "0001-01-01T00:00:00Z"
    assert format_time(late) == "9999-12-31T23:59:59Z"


def test_the_index_holds_only_the_newest_units_and_a_start_loads_only_those(
    config: Config,
    open_store: OpenStore,
    new_database: Callable[[str], Database],
) -> None:
    """`dedup.index_max_units`: 001's units, stored first, are the ones left out, so 004
    no longer finds the passage it shares with 001 (found with room for everything)."""
    ingest(config, SEED_001)
    others = sorted(p for p in SEEDS.glob("*.txt") if p not in (SEED_001, SEED_004))
    ingest(config, *others)
    store = open_store()
    try:
        [(of_001,)] = store.execute(
            "SELECT count(*) FROM units u JOIN articles a ON a.id = u.article_id "
            "WHERE a.location LIKE ?",
            (f"%{SEED_001.name}",),
        ).fetchall()
        total = store.counts()["unit_signatures"]
        small = replace(config, dedup=replace(config.dedup, index_max_units=total - of_001))
        bounded = Ingester(store, small)
        assert bounded.index.size == total - of_001
        # What it no longer holds is known: the first unit it holds is its floor.
        first_held = store.execute(
            "SELECT min(unit_id) FROM unit_signatures s JOIN units u ON u.id = s.unit_id "
            "JOIN articles a ON a.id = u.article_id WHERE a.location NOT LIKE ?",
            (f"%{SEED_001.name}",),
        ).fetchone()[0]
        assert bounded.index.floor == first_held
        [outcome] = list(bounded.ingest(read_all([SEED_004], config)))
        assert (outcome.status, outcome.passages) == ("new", 0)
    finally:
        store.close()
    fresh = replace(config, database=new_database("fresh"))
    ingest(fresh, SEED_001, *others)
    [outcome] = ingest(fresh, SEED_004)
    assert (outcome.status, outcome.passages) == ("new", 2)


def _folder_of(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for n, seed in enumerate(sorted(SEEDS.glob("*.txt"))[:count]):
        shutil.copy(seed, folder / f"{n:02d}.txt")
    return folder


@pytest.mark.sqlite_only
def test_a_batch_of_articles_is_committed_once(
    tmp_path: Path, config: Config, open_store: OpenStore
) -> None:
    folder = _folder_of(tmp_path, 5)
    store = open_store()
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    outcomes = list(Ingester(store, config).ingest(read_all([folder], config)))
    store.conn.set_trace_callback(None)
    assert [o.status for o in outcomes] == ["new"] * 5
    assert [s for s in statements if s.strip().upper() == "COMMIT"] == ["COMMIT"]
    assert sum(o.passages for o in outcomes) == 2  # seeds 001 and 004, within one group


@pytest.mark.sqlite_only
def test_a_group_with_a_refused_article_is_stored_one_by_one_and_the_index_agrees(
    tmp_path: Path, config: Config, open_store: OpenStore
) -> None:
    folder = _folder_of(tmp_path, 5)
    (folder / "02.txt").write_text("Long one\n" + "word " * 6000, encoding="utf-8")
    store = open_store()
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)
    ingester = Ingester(store, config)
    outcomes = {Path(o.location).name: o for o in ingester.ingest(read_all([folder], config))}
    assert outcomes.pop("02.txt").refused
    assert {o.status for o in outcomes.values()} == {"new"}
    units = [r[0] for r in store.execute("SELECT unit_id FROM unit_signatures ORDER BY 1")]
    assert ingester.index.size == len(units)
    assert ingester.index.max_unit_id == units[-1]
