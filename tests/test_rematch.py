"""Rematch: an upgraded database gets the new passage decisions without re-ingesting,
and `aggregator rematch` applies changed settings to what is stored.

`tests/data/schema-v5-seeds-third.db` was written by the release before passage
groups (schema 5, commit 4911f45): the seeds plus `third-outlet.txt` in one
folder. Its old count rule had marked the "constructive partner" match between
004 and 001 as boilerplate, because three articles of one folder carried it.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from aggregator.cli.reports import list_clusters, match_counts, resolve_cluster
from aggregator.config import Config
from aggregator.dedup.decide import Matcher
from aggregator.ingest.pipeline import Ingester
from aggregator.storage.store import Store
from tests.clirun import run_cli
from tests.conftest import REPO, OpenStore, ingest

pytestmark = pytest.mark.both_stores

OLD = REPO / "tests" / "data" / "schema-v5-seeds-third.db"


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    db = tmp_path / "old.db"
    shutil.copy(OLD, db)
    return db


def _stories(store: Store) -> list[list[str]]:
    return sorted(
        sorted(Path(a["location"]).name[:3] for a in c["articles"]) for c in list_clusters(store)
    )


def _carrier_sets(store: Store) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for passage, article in store.execute(
        "SELECT passage_id, article_id FROM passage_carriers ORDER BY article_id"
    ):
        groups.setdefault(passage, []).append(article)
    return sorted(groups.values())


def test_the_old_release_hid_the_third_copy_as_boilerplate() -> None:
    """The fixture is what the issue describes: a wire passage hidden by the count rule."""
    with sqlite3.connect(OLD) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
        flags = conn.execute("SELECT boilerplate FROM passage_matches").fetchall()
    conn.close()
    assert (1,) in flags


def test_an_upgraded_database_gets_the_new_decisions_without_reingesting(
    old_db: Path, config: Config, open_store: OpenStore
) -> None:
    config = replace(config, database=old_db)
    with sqlite3.connect(old_db) as conn:
        old_story = conn.execute("SELECT id FROM clusters WHERE merged_into IS NULL").fetchone()[0]
        articles = conn.execute("SELECT id, version, body FROM articles ORDER BY id").fetchall()
    conn.close()
    with Store(config.database, config.dedup.minhash) as store:
        Ingester(store, config)  # the first writer with a configuration decides again
    store = open_store(old_db)
    assert _stories(store) == [["001", "004", "thi"]]
    assert _carrier_sets(store) == [[2, 5], [2, 5, 6]]  # Deir el-Zour; constructive partner
    counts = match_counts(store)
    assert counts["linked"] == 3 and counts["unlinked"]["boilerplate"] == 0
    # Nothing was re-read: the same articles, versions and text.
    assert store.execute("SELECT id, version, body FROM articles ORDER BY id").fetchall() == (
        articles
    )
    # The story id shown before still finds the story.
    [story] = list_clusters(store)
    assert resolve_cluster(store, old_story) == story["id"]
    assert store.execute("SELECT value FROM meta WHERE key = 'rematch'").fetchone() is None
    # The old database is kept beside it, pairs and all.
    with sqlite3.connect(old_db.with_name("old.db.v5.bak")) as backup:
        assert backup.execute("SELECT count(*) FROM passage_matches").fetchone()[0] == 4
    backup.close()


def test_the_cli_reads_an_upgraded_database_after_the_first_write(old_db: Path) -> None:
    refused = run_cli("--db", str(old_db), "clusters")
    assert refused.returncode == 1 and "needs migrating" in refused.stderr
    assert run_cli("--db", str(old_db), "rematch").returncode == 0
    shown = run_cli("--db", str(old_db), "clusters").stdout
    assert shown.startswith("story ") and "(3 articles, 1 source)" in shown


def test_an_interrupted_rematch_changes_nothing(
    old_db: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(config, database=old_db)
    calls = 0
    decide = Matcher.decide

    def failing(self: Matcher, *args: object) -> tuple[int, int, int | None]:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("killed")
        return decide(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Matcher, "decide", failing)
    with Store(config.database, config.dedup.minhash) as store:
        before = store.execute("SELECT * FROM cluster_members ORDER BY article_id").fetchall()
        with pytest.raises(RuntimeError, match="killed"):
            Ingester(store, config)
        assert store.execute("SELECT * FROM cluster_members ORDER BY article_id").fetchall() == (
            before
        )
        assert store.execute("SELECT value FROM meta WHERE key = 'rematch'").fetchone() == (
            "pending",
        )
    monkeypatch.undo()
    with Store(config.database, config.dedup.minhash) as store:
        Ingester(store, config)
        assert _stories(store) == [["001", "004", "thi"]]


def test_rematch_replays_ingest_exactly(
    config: Config, seeds_and_third: Path, open_store: OpenStore
) -> None:
    ingest(config, seeds_and_third)
    store = open_store()
    before = (_stories(store), _carrier_sets(store), match_counts(store))
    assert run_cli("--db", str(config.database), "rematch").returncode == 0
    assert (_stories(store), _carrier_sets(store), match_counts(store)) == before


def test_rematch_applies_changed_settings(
    config: Config, seeds_and_third: Path, tmp_path: Path, open_store: OpenStore
) -> None:
    ingest(config, seeds_and_third)
    # Stricter: a passage in two otherwise unrelated stories, at any distance, is background.
    settings = tmp_path / "strict.toml"
    settings.write_text(
        f'database = "{config.database}"\n'
        "[clusters]\nbackground_min_stories = 2\nbackground_min_hours = 0\n"
    )
    out = run_cli("--config", str(settings), "rematch").stdout
    assert "6 articles replayed" in out and "background" in out
    assert _stories(open_store()) == [["001", "004"]]
