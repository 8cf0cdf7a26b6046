"""Event stories through the ingest pipeline and the store (stories/layer.py,
storage/events.py): the seeds, a restart, a rolled-back group, two processes,
and the commands. What was stored is read back with the engine's own client."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli.main import cli
from aggregator.config import Config, StoriesConfig
from aggregator.errors import AggregatorError
from aggregator.ingest.pipeline import Ingester
from aggregator.storage.store import Store
from tests.conftest import SEEDS, raw_rows, read_all

pytestmark = pytest.mark.both_stores

SEED_FILES = sorted(SEEDS.glob("*.txt"))


def _ingest(config: Config, paths: list[Path]) -> None:
    with Store(config.database, config.dedup.minhash) as store:
        ingester = Ingester(store, config, workers=0)
        try:
            outcomes = list(ingester.ingest(read_all(paths, config)))
        finally:
            ingester.close()
    assert {o.status for o in outcomes} <= {"new", "unchanged"}, outcomes


def _groups(config: Config) -> list[list[str]]:
    """Event stories as sorted lists of seed numbers ("000".."004")."""
    rows = raw_rows(
        config.database,
        "SELECT e.story_id, a.location FROM event_members e JOIN articles a ON a.id = e.article_id",
    )
    stories: dict[int, list[str]] = {}
    for story_id, location in rows:
        stories.setdefault(int(story_id), []).append(Path(location).name[:3])
    return sorted(sorted(g) for g in stories.values())


def test_seeds_make_three_event_stories(config: Config) -> None:
    """002 and 003 report the October cruise-missile launch, 001 and 004 the days after
    the Paris attacks (and share a passage), 000 the December submarine launch."""
    _ingest(config, SEED_FILES)
    assert _groups(config) == [["000"], ["001", "004"], ["002", "003"]]
    # The passage cluster is as before: 001 and 004, and no one else.
    clusters = raw_rows(
        config.database,
        "SELECT m.cluster_id, a.location FROM cluster_members m "
        "JOIN articles a ON a.id = m.article_id",
    )
    names = sorted(Path(location).name[:3] for _, location in clusters)
    assert names == ["001", "004"] and len({c for c, _ in clusters}) == 1
    reasons = {
        Path(loc).name[:3]: reason
        for loc, reason in raw_rows(
            config.database,
            "SELECT a.location, e.reason FROM event_members e "
            "JOIN articles a ON a.id = e.article_id",
        )
    }
    assert reasons == {"000": "new", "001": "new", "002": "new", "003": "similar", "004": "passage"}
    # Each story row counts its members, and its centroid is readable JSON.
    for count, members, centroid in raw_rows(
        config.database,
        "SELECT s.articles, (SELECT count(*) FROM event_members e WHERE e.story_id = s.id), "
        "s.centroid FROM event_stories s",
    ):
        assert count == members
        assert all(len(entry) == 3 for entry in json.loads(centroid))


def test_a_restart_gives_the_stories_of_one_run(config: Config, new_database: object) -> None:
    _ingest(config, SEED_FILES[:3])
    documents = raw_rows(config.database, "SELECT value FROM meta WHERE key = 'events.documents'")
    assert documents == [("3",)]  # saved when the first ingest ended
    _ingest(config, SEED_FILES[3:])
    assert _groups(config) == [["000"], ["001", "004"], ["002", "003"]]


def test_disabled_stores_no_story(config: Config) -> None:
    off = replace(config, stories=StoriesConfig(enabled=False))
    _ingest(off, SEED_FILES)
    assert raw_rows(config.database, "SELECT count(*) FROM event_members") == [(0,)]


@pytest.mark.sqlite_only
def test_another_process_s_stories_are_caught_up(config: Config) -> None:
    """Two ingesters on one database, the second built before the first stored
    anything: it must still join the first one's story."""
    with (
        Store(config.database, config.dedup.minhash) as first,
        Store(config.database, config.dedup.minhash) as second,
    ):
        one, other = Ingester(first, config, workers=0), Ingester(second, config, workers=0)
        try:
            list(one.ingest(read_all([SEED_FILES[2]], config)))
            list(other.ingest(read_all([SEED_FILES[3]], config)))
        finally:
            one.close()
            other.close()
    assert _groups(config) == [["002", "003"]]


@pytest.mark.sqlite_only
def test_a_rolled_back_group_leaves_no_story_behind(config: Config, tmp_path: Path) -> None:
    """One article of a group is refused: the group is rolled back and stored one by
    one. No story may keep a join that the rollback undid."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in SEED_FILES:
        shutil.copy(path, folder / path.name)
    (folder / "002b_refused.txt").write_text("word " * 9000, encoding="utf-8")
    with Store(config.database, config.dedup.minhash) as store:
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)
        ingester = Ingester(store, config, workers=0)
        try:
            outcomes = list(ingester.ingest(read_all([folder], config)))
        finally:
            ingester.close()
    assert sorted(o.status for o in outcomes) == ["failed", "new", "new", "new", "new", "new"]
    assert _groups(config) == [["000"], ["001", "004"], ["002", "003"]]
    for count, members in raw_rows(
        config.database,
        "SELECT s.articles, (SELECT count(*) FROM event_members e WHERE e.story_id = s.id) "
        "FROM event_stories s",
    ):
        assert count == members


def test_the_commands_show_stories_and_why(config: Config) -> None:
    _ingest(config, SEED_FILES)
    db = str(config.database.url if hasattr(config.database, "url") else config.database)
    runner = CliRunner()
    listed = runner.invoke(cli, ["--db", db, "stories", "--json"])
    assert listed.exit_code == 0, listed.output
    stories = json.loads(listed.output)
    assert sorted(len(s["members"]) for s in stories) == [2, 2]  # single ones left out
    passage = next(s for s in stories if any(m["reason"] == "passage" for m in s["members"]))
    shown = runner.invoke(cli, ["--db", db, "story", str(passage["id"])])
    assert shown.exit_code == 0, shown.output
    assert "shares a passage (passage cluster" in shown.output
    similar = next(s for s in stories if s is not passage)
    shown = runner.invoke(cli, ["--db", db, "story", str(similar["id"])])
    assert "score 0." in shown.output and "shared terms:" in shown.output
    missing = runner.invoke(cli, ["--db", db, "story", "999"])
    assert missing.exit_code != 0  # `main` turns the error into one line (test_cli.py)
    assert isinstance(missing.exception, AggregatorError)
    assert str(missing.exception) == "event story 999: no such story (see `aggregator stories`)"


@pytest.mark.sqlite_only
def test_only_a_dated_article_reads_relative_days(config: Config, tmp_path: Path) -> None:
    """A Markdown file with a front-matter date reports on "yesterday" as the day
    before it; a plain file's modification time is no date, so its "yesterday"
    is not read and it states no day at all."""
    folder = tmp_path / "in"
    folder.mkdir()
    body = "The harbour wall at Port Farrow gave way yesterday after the storm.\n"
    (folder / "a.md").write_text(f"---\ndate: 2025-03-14\n---\n# Wall falls\n\n{body}")
    (folder / "b.txt").write_text(f"Wall falls\n\n{body}")
    _ingest(config, [folder])
    days = {
        Path(location).name: day
        for location, day in raw_rows(
            config.database,
            "SELECT a.location, e.event_day FROM event_members e "
            "JOIN articles a ON a.id = e.article_id",
        )
    }
    assert days == {"a.md": "2025-03-13", "b.txt": None}
