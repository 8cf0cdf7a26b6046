"""Event stories through the ingest pipeline and the store (stories/layer.py,
storage/events.py): the seeds, a restart, a rolled-back group, two processes,
and the commands. What was stored is read back with the engine's own client."""

from __future__ import annotations

import itertools
import json
import random
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
# The seeds as read (file order): 003 names no date, and its words are as near the
# November story as the October one, so it stands alone (README, "Event stories").
SEED_STORIES = [["000"], ["001", "004"], ["002"], ["003"]]
DATED_STORIES = [["000"], ["001", "004"], ["002", "003"]]


# The day each seed was published, as its text tells: 000 the day after the
# submarine launch of 8 December 2015, 001 and 004 the week after the Paris
# attacks, 002 and 003 the day after the Caspian launch of 7 October.
PUBLISHED = {"000": "2015-12-09", "001": "2015-11-18", "002": "2015-10-08", "003": "2015-10-08"}
PUBLISHED["004"] = "2015-11-20"


@pytest.fixture
def dated_seeds(tmp_path: Path) -> list[Path]:
    """The seeds as Markdown files dated in front matter (PUBLISHED): 003's "on
    Wednesday" is then 7 October, the day 002 reports on."""
    folder = tmp_path / "dated"
    folder.mkdir()
    paths = []
    for path in SEED_FILES:
        title, *body = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
        copy = folder / f"{path.stem}.md"
        text = "\n\n".join(body)
        front = f"---\ndate: {PUBLISHED[path.name[:3]]}\n---\n"
        copy.write_text(f"{front}# {title}\n\n{text}\n", encoding="utf-8")
        paths.append(copy)
    return paths


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


def test_seeds_make_their_event_stories(config: Config) -> None:
    """001 and 004 report the days after the Paris attacks (and share a passage), 000
    the December submarine launch, 002 the October cruise-missile launch; 003, an
    undated round-up of that October week, has no date to agree on and stands alone."""
    _ingest(config, SEED_FILES)
    assert _groups(config) == SEED_STORIES
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
    assert reasons == {"000": "new", "001": "new", "002": "new", "003": "new", "004": "passage"}
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
    assert _groups(config) == SEED_STORIES


@pytest.mark.sqlite_only
def test_the_seeds_give_the_same_stories_in_any_arrival_order(
    config: Config, dated_seeds: list[Path], tmp_path: Path
) -> None:
    """A group's articles are learnt before any is placed and placed in publication
    order, so the order a folder lists them in does not matter: as files with no
    dates, and with 002 and 003 dated (then they are one story)."""
    rng = random.Random(3)
    orders = [list(p) for p in itertools.permutations(range(5))]
    for run, order in enumerate([[4, 3, 2, 1, 0], *rng.sample(orders, 7)]):
        for name, files, expected in (
            ("plain", SEED_FILES, SEED_STORIES),
            ("dated", dated_seeds, DATED_STORIES),
        ):
            each = replace(config, database=tmp_path / f"{name}-{run}.db")
            _ingest(each, [files[i] for i in order])
            assert _groups(each) == expected, (name, order)


def test_disabled_stores_no_story(config: Config) -> None:
    off = replace(config, stories=StoriesConfig(enabled=False))
    _ingest(off, SEED_FILES)
    assert raw_rows(config.database, "SELECT count(*) FROM event_members") == [(0,)]


@pytest.mark.sqlite_only
def test_another_process_s_stories_are_caught_up(config: Config, dated_seeds: list[Path]) -> None:
    """Two ingesters on one database, the second built before the first stored
    anything: it must still join the first one's story."""
    with (
        Store(config.database, config.dedup.minhash) as first,
        Store(config.database, config.dedup.minhash) as second,
    ):
        one, other = Ingester(first, config, workers=0), Ingester(second, config, workers=0)
        try:
            list(one.ingest(read_all([dated_seeds[2]], config)))
            list(other.ingest(read_all([dated_seeds[3]], config)))
        finally:
            one.close()
            other.close()
    assert _groups(config) == [["002", "003"]]


@pytest.mark.sqlite_only
def test_a_rolled_back_group_leaves_no_story_behind(
    config: Config, dated_seeds: list[Path], tmp_path: Path
) -> None:
    """One article of a group is refused: the group is rolled back and stored one by
    one. No story may keep a join that the rollback undid."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in dated_seeds:
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
    assert _groups(config) == DATED_STORIES
    for count, members in raw_rows(
        config.database,
        "SELECT s.articles, (SELECT count(*) FROM event_members e WHERE e.story_id = s.id) "
        "FROM event_stories s",
    ):
        assert count == members


@pytest.mark.sqlite_only
def test_a_group_rolled_back_while_placed_leaves_the_index_as_stored(
    config: Config, dated_seeds: list[Path]
) -> None:
    """002 is stored first. In the next group 003 joins 002's story, then the
    database refuses 000's story row (placed last, the latest published): the group
    is rolled back and stored one by one, so the index must put 002's story back as
    stored first, or 003 would count in it twice."""
    _ingest(config, [dated_seeds[2]])
    with Store(config.database, config.dedup.minhash) as store:
        store.conn.execute(
            "CREATE TRIGGER refuse_000 BEFORE INSERT ON event_members "
            "WHEN (SELECT location FROM articles WHERE id = NEW.article_id) LIKE '%/000_%' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        ingester = Ingester(store, config, workers=0)
        try:
            later = [dated_seeds[i] for i in (3, 1, 4, 0)]
            outcomes = list(ingester.ingest(read_all(later, config)))
        finally:
            ingester.close()
    failed = [Path(o.location).name[:3] for o in outcomes if o.status == "failed"]
    assert failed == ["000"]
    assert _groups(config) == [["001", "004"], ["002", "003"]]
    for count, members in raw_rows(
        config.database,
        "SELECT s.articles, (SELECT count(*) FROM event_members e WHERE e.story_id = s.id) "
        "FROM event_stories s",
    ):
        assert count == members


@pytest.mark.sqlite_only
def test_a_rolled_back_story_change_does_not_hide_another_process_s_next_one(
    config: Config, dated_seeds: list[Path]
) -> None:
    """A writer numbers its story changes itself. 000's transaction is rolled back
    after its change was numbered: the number must be given back, for the other
    process's next change takes it, and the first must still catch that change up
    (003 joins the story of 002, which the other process stored)."""
    _ingest(config, [dated_seeds[1]])
    with (
        Store(config.database, config.dedup.minhash) as first,
        Store(config.database, config.dedup.minhash) as second,
    ):
        first.conn.execute(
            "CREATE TRIGGER refuse_000 BEFORE INSERT ON event_members "
            "WHEN (SELECT location FROM articles WHERE id = NEW.article_id) LIKE '%/000_%' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        one, other = Ingester(first, config, workers=0), Ingester(second, config, workers=0)
        try:
            outcomes = list(one.ingest(read_all([dated_seeds[4], dated_seeds[0]], config)))
            list(other.ingest(read_all([dated_seeds[2]], config)))
            list(one.ingest(read_all([dated_seeds[3]], config)))
        finally:
            one.close()
            other.close()
    assert [Path(o.location).name[:3] for o in outcomes if o.status == "failed"] == ["000"]
    assert _groups(config) == [["001", "004"], ["002", "003"]]


def test_the_commands_show_stories_and_why(config: Config, dated_seeds: list[Path]) -> None:
    _ingest(config, dated_seeds)
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
