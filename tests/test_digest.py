"""The digest: each story once, canonical copy first, then only what later articles added."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from aggregator.config import Config
from aggregator.digest.publish import day_period, digest_due, since_period
from aggregator.digest.render import to_atom, to_html, to_markdown, to_text
from aggregator.digest.select import Digest, build_digest
from aggregator.model import format_time, parse_time
from aggregator.storage.store import Store
from tests.conftest import (
    SEEDS,
    OpenStore,
    ingest,
    ingest_docs,
    text_doc,
)

pytestmark = pytest.mark.both_stores

DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def _seed_lines(name: str) -> list[str]:
    path = next(SEEDS.glob(f"{name}_*.txt"))
    return path.read_text(encoding="utf-8").splitlines()


def _digest(config: Config, start: datetime, end: datetime) -> Digest:
    with Store(config.database, config.dedup.minhash) as store:
        return build_digest(store, start, end)


def _arrived(config: Config, when: datetime, where: str = "1 = 1") -> None:
    with Store(config.database, config.dedup.minhash) as store, store.write():
        store.execute(f"UPDATE articles SET first_seen_at = ? WHERE {where}", (format_time(when),))


@pytest.fixture
def seeded(config: Config) -> Config:
    ingest(config, SEEDS)
    _arrived(config, DAY1)
    return config


def test_the_seeds_digest_shows_the_story_once_and_004s_new_paragraphs(seeded: Config) -> None:
    digest = _digest(seeded, DAY1 - timedelta(hours=1), DAY1 + timedelta(hours=1))
    [story] = digest.stories
    names = [Path(e.location).name[:3] for e in story.articles]
    assert names == ["001", "004"] and not story.is_update
    shown_text = "\n".join([*story.opening, *(p for a in story.additions for p in a.paragraphs)])
    for passage in ("constructive partner", "Deir el-Zour"):
        assert shown_text.count(passage) == 1, passage
    # 004's own paragraphs, those not built from 001's text, all appear as new.
    [addition] = story.additions
    own_004 = [p for p in _seed_lines("004")[1:] if "constructive partner" not in p]
    shown = set(addition.paragraphs)
    assert [p for p in own_004 if "Deir el-Zour" not in p and p not in shown] == []
    assert all(p in _seed_lines("004") for p in shown)
    assert addition.repeated == story.collapsed >= 1
    singles = sorted(Path(s.entry.location).name[:3] for s in digest.singles)
    assert singles == ["000", "002", "003"]
    for render in (to_html, to_markdown):
        assert "constructive partner" in render(digest)


def test_next_days_digest_shows_only_the_new_articles_new_paragraphs(
    seeded: Config, open_store: OpenStore
) -> None:
    store = open_store(seeded.database, seeded.dedup.minhash)
    published = store.execute("SELECT max(published_at) FROM articles").fetchone()[0]
    store.close()
    shared = next(p for p in _seed_lines("001") if "constructive partner" in p)
    fresh = [
        "Officials in Ankara said on Saturday that the talks would resume next week in Geneva.",
        "Energy ministers from both countries are expected to attend a separate meeting on gas.",
    ]
    doc = text_doc("/wire/late", "005", "Talks to resume", [fresh[0], shared, fresh[1]])
    ingest_docs(seeded, [replace(doc, modified_at=parse_time(published) + timedelta(hours=1))])
    _arrived(seeded, DAY2, "identity LIKE '/wire/late/%'")

    digest = _digest(seeded, *day_period(DAY2.date(), "UTC"))
    [story] = digest.stories
    assert story.is_update and story.opening == ()
    [addition] = story.additions
    assert addition.paragraphs == tuple(fresh)
    assert addition.repeated == 1
    assert digest.singles == ()
    text = to_text(digest)
    assert "constructive partner" not in text and "Rosenberg" not in text
    first_day = _digest(seeded, *day_period(DAY1.date(), "UTC"))
    assert "Talks to resume" not in to_text(first_day), "a past period does not change"


def test_an_empty_period_is_a_short_nothing_new_digest(seeded: Config) -> None:
    digest = _digest(seeded, *since_period("1h", DAY2 + timedelta(days=5)))
    assert digest.empty
    for render in (to_text, to_markdown, to_html):
        assert "Nothing new in this period." in render(digest)
    atom = ET.fromstring(to_atom(digest, "urn:uuid:0"))
    assert atom.findall("{http://www.w3.org/2005/Atom}entry") == []


def test_stories_rank_by_sources_then_recency(config: Config) -> None:
    lines = _seed_lines("001")[1:]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    docs = [
        text_doc("/a/one", "x1", "Two sources", lines[0:3], base),
        text_doc("/a/two", "x2", "Two sources again", lines[0:3], base),
        text_doc("/a/one", "y1", "Three sources", lines[4:7], base),
        text_doc("/a/two", "y2", "Three sources again", lines[4:7], base),
        text_doc("/a/three", "y3", "Three sources once more", lines[4:7], base),
    ]
    ingest_docs(config, docs)
    digest = _digest(config, *since_period("1d", datetime.now(UTC)))
    assert [s.sources for s in digest.stories] == [3, 2]


def test_day_periods_follow_the_local_time_zone() -> None:
    start, end = day_period(DAY1.date(), "Europe/Berlin")
    assert (start, end) == (
        datetime(2026, 11, 19, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 23, 0, tzinfo=UTC),
    )


def test_atom_is_valid_and_one_entry_per_story(seeded: Config) -> None:
    digest = _digest(seeded, DAY1 - timedelta(hours=1), DAY1 + timedelta(hours=1))
    document = to_atom(digest, "urn:uuid:1234")
    parsed = feedparser.parse(document.encode())
    assert not parsed.bozo, parsed.get("bozo_exception")
    story_id = f"urn:uuid:1234/story/{digest.stories[0].cluster_id}"
    singles = [f"urn:uuid:1234/article/{s.entry.article_id}" for s in digest.singles]
    assert [e.id for e in parsed.entries] == [story_id, *singles]
    assert "constructive partner" in parsed.entries[0].content[0].value


def test_publish_day_writes_dated_files_the_stories_feed_and_keeps_the_last_n(
    seeded: Config, tmp_path: Path, open_store: OpenStore
) -> None:
    from aggregator.config import DigestConfig
    from aggregator.digest.publish import publish_day

    directory = tmp_path / "out"
    config = replace(seeded, digest=DigestConfig(directory=directory, keep=2))
    store = open_store()
    try:
        for offset in range(4):
            publish_day(store, config, (DAY1 + timedelta(days=offset - 3)).date())
        feed_id = store.execute("SELECT value FROM meta WHERE key = 'digest.feed_id'").fetchone()
    finally:
        store.close()
    names = sorted(p.name for p in directory.iterdir())
    assert names == [
        "digest-2026-11-19.html",
        "digest-2026-11-19.md",
        "digest-2026-11-20.html",
        "digest-2026-11-20.md",
        "stories.atom",
    ]
    assert "constructive partner" in (directory / "digest-2026-11-20.html").read_text()
    assert "Nothing new" in (directory / "digest-2026-11-19.md").read_text()
    assert feed_id[0].startswith("urn:uuid:")
    assert feed_id[0] in (directory / "stories.atom").read_text()


def test_the_stories_feed_holds_only_the_newest_arrivals(
    seeded: Config, tmp_path: Path, open_store: OpenStore
) -> None:
    """atom_max_articles = 2: only the two newest arrivals, 003 (a single) and 004 (which
    brings its story with 001); the older singles 000 and 002 are left out."""
    from xml.etree import ElementTree as ET

    from aggregator.config import DigestConfig
    from aggregator.digest.publish import write_stories_feed

    store = open_store(seeded.database, seeded.dedup.minhash)
    try:
        with store.write():  # arrivals a minute apart, in name order
            rows = store.execute("SELECT id, location FROM articles").fetchall()
            for id_, location in rows:
                minute = int(Path(location).name[:3])
                arrived = format_time(DAY1 + timedelta(minutes=minute))
                store.execute("UPDATE articles SET first_seen_at = ? WHERE id = ?", (arrived, id_))
        title = {
            Path(loc).name[:3]: t
            for t, loc in store.execute("SELECT title, location FROM articles")
        }

        def titles(limit: int) -> set[str]:
            digest = DigestConfig(directory=tmp_path / f"out{limit}", atom_max_articles=limit)
            config = replace(seeded, digest=digest)
            path = write_stories_feed(store, config, DAY1 + timedelta(hours=1))
            ns = {"a": "http://www.w3.org/2005/Atom"}
            entries = ET.parse(path).getroot().findall("a:entry", ns)
            return {e.findtext("a:title", namespaces=ns) or "" for e in entries}

        everything, capped = titles(500), titles(2)
    finally:
        store.close()
    assert len(everything) == 4  # the story of 001 and 004, and three singles
    assert {title["000"], title["002"]} <= everything
    assert len(capped) == 2
    assert title["003"] in capped
    assert not {title["000"], title["002"]} & capped


def test_the_digest_selects_arrivals_through_an_index(
    seeded: Config, open_store: OpenStore, store_kind: str
) -> None:
    """Digests and the stories feed (rebuilt after every storing job) must not scan every
    article of a database that only grows: both of build_digest's arrival queries
    search articles_first_seen."""
    from aggregator.storage import digests

    queries = [digests.ARRIVED_SQL, digests.ARRIVED_CLUSTERS_SQL]
    store = open_store(seeded.database, seeded.dedup.minhash)
    window = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    try:
        for query in queries:
            if store_kind == "postgresql":
                # A few rows are read fastest by a scan; with scans priced out, the
                # plan shows whether an index can serve the query at all.
                store.execute("SET enable_seqscan = off")
                plan = store.execute(f"EXPLAIN {query}", window).fetchall()
                details = [row[0] for row in plan]
                assert any("articles_first_seen" in d for d in details), details
                assert not any("Seq Scan on articles" in d for d in details), details
                continue
            plan = store.execute(f"EXPLAIN QUERY PLAN {query}", window).fetchall()
            details = [row[-1] for row in plan]
            assert any("INDEX articles_first_seen" in d for d in details), details
            assert not any(d.startswith("SCAN") for d in details), details
    finally:
        store.close()


def test_every_rewrite_of_the_stories_feed_holds_every_arrival_so_far(
    config: Config, tmp_path: Path, open_store: OpenStore
) -> None:
    """The daemon rewrites the stories feed after each job that stored something: each
    rewrite must hold everything that arrived before it, whichever source and job brought
    it (a flaky daemon test once suggested an entry could go missing between rewrites).
    Read back with feedparser: each article is an entry of its own, or its story's."""
    from aggregator.config import DigestConfig
    from aggregator.digest.publish import write_stories_feed

    config = replace(config, digest=DigestConfig(directory=tmp_path / "out"))
    shared = " ".join(f"wire{i}" for i in range(40)) + "."
    arrivals = [
        text_doc("/feed/local", "g1", "Bridge opens", [f"Bridge {shared}", "A bridge opens."]),
        text_doc("/inbox", "a00000", "Report number 0", ["Harvest report " * 12]),
        text_doc("/feed/local", "g2", "Harbour closes", ["Harbour closes today " * 8]),
        text_doc("/feed/other", "o1", "Bridge copy", [f"Bridge {shared}", "Another view."]),
        text_doc("/inbox", "a00001", "Report number 1", ["Senate report " * 12]),
    ]
    for done, document in enumerate(arrivals, start=1):
        ingest_docs(config, [document])
        path = write_stories_feed(open_store(), config, datetime.now(UTC))
        shown = {entry.title for entry in feedparser.parse(path.read_bytes()).entries}
        store = open_store()
        rows = store.execute(
            "SELECT a.title, coalesce(canon.title, a.title) FROM articles a "
            "LEFT JOIN cluster_members m ON m.article_id = a.id "
            "LEFT JOIN clusters c ON c.id = m.cluster_id "
            "LEFT JOIN articles canon ON canon.id = c.canonical_article_id"
        ).fetchall()
        assert len(rows) == done
        missing = [title for title, story in rows if title not in shown and story not in shown]
        assert not missing, f"after {done} arrivals the feed lacks {missing}; it shows {shown}"
    assert ("Bridge copy", "Bridge opens") in rows, "the shared paragraph made one story"


@pytest.mark.parametrize(
    ("now", "zone", "due", "day"),
    [
        # Before 07:00 local: the digest last due was yesterday's 07:00, of the day before.
        ("2026-12-02T06:59:59+00:00", "UTC", "2026-12-01T07:00:00+00:00", "2026-11-30"),
        ("2026-12-02T07:00:00+00:00", "UTC", "2026-12-02T07:00:00+00:00", "2026-12-01"),
        ("2026-12-02T23:30:00+00:00", "UTC", "2026-12-02T07:00:00+00:00", "2026-12-01"),
        # 23:30 UTC is already 08:30 of the next day in Tokyo.
        ("2026-12-02T23:30:00+00:00", "Asia/Tokyo", "2026-12-02T22:00:00+00:00", "2026-12-02"),
        # The morning the clocks go forward in Berlin: 07:00 CEST is 05:00 UTC.
        ("2026-03-29T05:00:00+00:00", "Europe/Berlin", "2026-03-29T05:00:00+00:00", "2026-03-28"),
    ],
)
def test_the_digest_last_due_and_its_day(now: str, zone: str, due: str, day: str) -> None:
    assert digest_due(datetime.fromisoformat(now), "07:00", zone) == (
        datetime.fromisoformat(due),
        date.fromisoformat(day),
    )


def test_the_text_digest_never_breaks_a_link_across_lines(config: Config) -> None:
    """A link longer than a line, with hyphens (where textwrap used to break), stays
    whole on a line of its own, so it can be copied."""
    path = "-".join(["council-votes-to-fund-the-flood-barrier"] * 3)
    links = [f"https://news.example/2026/11/{path}-{n}" for n in (1, 2)]
    docs = [
        replace(
            text_doc("/feeds/x", f"s{n}", f"Story {n}", [f"Paragraph {n} of prose, words."]),
            source_kind="feed",
            identity=link,
            location=link,
        )
        for n, link in enumerate(links, start=1)
    ]
    ingest_docs(config, docs)
    text = to_text(_digest(config, *since_period("3650d", datetime.now(UTC))))
    assert all(len(link) > 78 for link in links)
    for link in links:
        assert any(link in line for line in text.splitlines()), f"{link} broken:\n{text}"
