"""Feed entries to documents, and through the pipeline into articles."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config
from aggregator.ingest.entries import entry_documents, entry_identity, entry_time
from aggregator.model import RawDocument
from aggregator.sources.parse import FeedEntry, parse_feed
from tests.conftest import SEEDS, OpenStore, ingest, ingest_docs

pytestmark = pytest.mark.both_stores

FETCHED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# Entries that must cluster with files on disk (dated by their mtime, i.e. about
# now) are dated now too, so the clustering window holds whenever tests run.
NOW = datetime.now(UTC).replace(microsecond=0)
FEED = "https://news.example/feed.xml"


def _entry(**fields: object) -> FeedEntry:
    values: dict[str, object] = {
        "guid": "",
        "link": "",
        "title": "T",
        "summary": "",
        "content": "<p>Body</p>",
        "published": "",
        "updated": "",
    }
    values.update(fields)
    return FeedEntry(**values)  # type: ignore[arg-type]


def test_identity_prefers_guid_then_normalised_link_then_content_hash() -> None:
    assert entry_identity(_entry(guid=" g1 ", link="https://x/1"), FEED) == "g1"
    assert entry_identity(_entry(link="/story?utm_source=rss#0"), FEED) == (
        "https://news.example/story"
    )
    hashed = entry_identity(_entry(), FEED)
    assert hashed.startswith("sha256:") and hashed == entry_identity(_entry(), FEED)
    assert hashed != entry_identity(_entry(content="<p>Other</p>"), FEED)


def test_duplicate_guids_in_one_feed_are_told_apart_by_link() -> None:
    docs = list(
        entry_documents(
            [_entry(guid="same", link="https://x/1"), _entry(guid="same", link="https://x/2")],
            FEED,
            "news",
            FETCHED,
        )
    )
    assert len({d.identity for d in docs}) == 2


def test_missing_and_future_dates_become_the_fetch_time() -> None:
    assert entry_time(_entry(), FETCHED) == FETCHED
    future = _entry(published_at=FETCHED + timedelta(days=3))
    assert entry_time(future, FETCHED) == FETCHED
    past = FETCHED - timedelta(hours=2)
    assert entry_time(_entry(published_at=past), FETCHED) == past


def test_a_clamped_or_unreadable_date_keeps_the_feed_text(
    config: Config, open_store: OpenStore
) -> None:
    future = FETCHED + timedelta(days=3)
    rss = _rss([("f1", "From the future", "<p>Scheduled post.</p>")], future).replace(
        b"</channel>",
        b"<item><guid>f2</guid><title>Bad date</title><description>Odd.</description>"
        b"<pubDate>the day after tomorrow</pubDate></item>"
        b"<item><guid>f3</guid><title>Fine</title><description>Fine.</description>"
        b"<pubDate>Mon, 23 Nov 2026 09:00:00 GMT</pubDate></item></channel>",
    )
    entries = parse_feed(rss, {}, FEED).entries
    docs = list(entry_documents(entries, FEED, "news", FETCHED))
    written = future.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert [(d.published_at, d.published_raw) for d in docs] == [
        (FETCHED, written),
        (FETCHED, "the day after tomorrow"),
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), None),
    ]
    ingest_docs(config, docs)
    store = open_store()
    rows = store.execute("SELECT published_at, published_raw FROM articles ORDER BY id").fetchall()
    store.close()
    assert rows[0] == ("2026-11-23T12:00:00Z", written)
    assert rows[2] == ("2026-11-23T09:00:00Z", None)


def test_limit_caps_entries_taken() -> None:
    entries = [_entry(guid=str(i)) for i in range(10)]
    assert len(list(entry_documents(entries, FEED, "news", FETCHED, limit=3))) == 3


def _rss(items: list[tuple[str, str, str]], published: datetime = NOW) -> bytes:
    date = published.strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><description><![CDATA[{d}]]></description>"
        f"<pubDate>{date}</pubDate></item>"
        for g, t, d in items
    )
    return f'<rss version="2.0"><channel><title>W</title>{body}</channel></rss>'.encode()


def test_feed_entries_are_stored_once_and_edits_become_versions(
    config: Config, open_store: OpenStore
) -> None:
    paragraphs = (SEEDS / "001_a6bde1a4b5b05d85.txt").read_text(encoding="utf-8").splitlines()[1:]
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    when = FETCHED - timedelta(hours=2)
    feed = parse_feed(_rss([("a1", "Strikes go on", html)], when), {}, FEED)
    outcomes = ingest_docs(config, entry_documents(feed.entries, FEED, "news", FETCHED))
    assert [o.status for o in outcomes] == ["new"]
    again = ingest_docs(config, entry_documents(feed.entries, FEED, "news", FETCHED))
    assert [o.status for o in again] == ["unchanged"]
    edited = parse_feed(_rss([("a1", "Strikes go on", html + "<p>An update.</p>")], when), {}, FEED)
    assert [
        o.status for o in ingest_docs(config, entry_documents(edited.entries, FEED, "n", FETCHED))
    ] == ["updated"]
    store = open_store()
    title, published, version, kind = store.execute(
        "SELECT a.title, a.published_at, a.version, s.kind FROM articles a "
        "JOIN sources s ON s.id = a.source_id"
    ).fetchone()
    assert (title, published, version, kind) == (
        "Strikes go on",
        "2026-11-23T10:00:00Z",
        2,
        "feed",
    )


def test_a_feed_entry_and_a_folder_file_with_the_same_story_cluster(
    config: Config, tmp_path: Path
) -> None:
    paragraphs = (SEEDS / "004_e5c7ce075aa33b3d.txt").read_text(encoding="utf-8").splitlines()[1:]
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    feed = parse_feed(_rss([("b1", "Iraq closes airspace", html)]), {}, FEED)
    ingest_docs(config, entry_documents(feed.entries, FEED, "news", NOW + timedelta(minutes=1)))
    copy = tmp_path / "wire" / "001.txt"  # a fresh copy: its mtime, so its date, is now
    copy.parent.mkdir()
    shutil.copy(SEEDS / "001_a6bde1a4b5b05d85.txt", copy)
    [outcome] = ingest(config, copy)
    assert outcome.passages == 2 and outcome.cluster_id is not None


def test_headline_only_entries_keep_their_title_and_empty_ones_are_skipped(
    config: Config,
    open_store: OpenStore,
) -> None:
    rss = (
        b'<rss version="2.0"><channel><title>W</title>'
        b"<item><guid>h1</guid><title>Markets close higher</title></item>"
        b"<item><guid>h2</guid><description>  </description></item>"
        b"</channel></rss>"
    )
    docs = entry_documents(parse_feed(rss, {}, FEED).entries, FEED, "news", FETCHED)
    outcomes = ingest_docs(config, docs)
    assert sorted(o.status for o in outcomes) == ["failed", "new"]
    assert any("no text found" in (o.error or "") for o in outcomes)
    store = open_store()
    rows = store.execute("SELECT title, body FROM articles").fetchall()
    store.close()
    assert rows == [("Markets close higher", "Markets close higher")]


def test_a_retitled_entry_becomes_a_new_version(config: Config) -> None:
    def doc(title: str) -> list[RawDocument]:
        rss = f'<rss version="2.0"><channel><item><guid>r1</guid><title>{title}</title>'
        rss += "<description>Same words.</description></item></channel></rss>"
        return list(entry_documents(parse_feed(rss.encode(), {}, FEED).entries, FEED, "n", FETCHED))

    assert [o.status for o in ingest_docs(config, doc("First headline"))] == ["new"]
    assert [o.status for o in ingest_docs(config, doc("First headline"))] == ["unchanged"]
    assert [o.status for o in ingest_docs(config, doc("Corrected headline"))] == ["updated"]


def test_one_identity_twice_in_one_feed_document_is_one_article_in_two_versions(
    config: Config, open_store: OpenStore
) -> None:
    """A feed that repeats a guid with other text in one document: the group's look-up
    finds nothing for either, so the second must look again and see the first (one
    article, version 2), not insert a second row for the same identity."""
    paragraphs = (SEEDS / "001_a6bde1a4b5b05d85.txt").read_text(encoding="utf-8").splitlines()[1:]
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    items = [("a1", "Strikes go on", html), ("a1", "Strikes go on", html + "<p>Update.</p>")]
    feed = parse_feed(_rss(items, FETCHED - timedelta(hours=2)), {}, FEED)
    docs = list(entry_documents(feed.entries, FEED, "news", FETCHED))
    assert len({d.identity for d in docs}) == 1  # no link tells them apart
    statuses = [o.status for o in ingest_docs(config, docs)]
    assert statuses == ["new", "updated"]
    rows = open_store().execute("SELECT identity, version FROM articles").fetchall()
    assert rows == [(docs[0].identity, 2)]
