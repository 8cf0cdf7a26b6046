"""Polling feeds from a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config
from aggregator.errors import SourceConfigError
from aggregator.ingest.feeds import add_feed, error_interval, find_feed, success_interval
from aggregator.ingest.poll import Poller
from aggregator.model import format_time, parse_time
from aggregator.storage.store import Store
from tests import feeddata
from tests.conftest import SEEDS

pytestmark = pytest.mark.both_stores

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _rss(items: int = 2) -> bytes:
    paragraphs = (SEEDS / "000_2014b5a3539f3a02.txt").read_text(encoding="utf-8").splitlines()
    body = "".join(
        f"<item><guid>g{i}</guid><title>Item {i}</title>"
        f"<description>&lt;p&gt;{paragraphs[i]}&lt;/p&gt;</description>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        for i in range(items)
    )
    return f'<rss version="2.0"><channel><title>W</title>{body}</channel></rss>'.encode()


@pytest.fixture
def feed_id(httpserver: HTTPServer, store: Store) -> int:
    """A feed subscribed at the server's /feed."""
    # Summary-only test entries; full-text fetching has its own tests below.
    return add_feed(store, httpserver.url_for("/feed"), "Wire", full_text="never").id


def _articles(store: Store) -> int:
    return int(store.execute("SELECT count(*) FROM articles").fetchone()[0])


def test_200_then_304_parses_nothing_the_second_time(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_ordered_request("/feed").respond_with_data(
        _rss(), headers={"ETag": '"v1"', "Last-Modified": "Mon, 23 Nov 2026 10:00:00 GMT"}
    )
    httpserver.expect_ordered_request(
        "/feed",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Mon, 23 Nov 2026 10:00:00 GMT"},
    ).respond_with_data("", status=304)
    first = poller.poll_one(find_feed(store, str(feed_id)), NOW)
    assert (first.status, first.new) == ("ingested", 2)
    before = store.counts()
    second = poller.poll_one(find_feed(store, str(feed_id)), NOW)
    assert second.status == "not-modified", second.error
    assert store.counts() == before


def test_unchanged_body_without_validators_is_not_parsed(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data(_rss())
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "ingested"
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "unchanged"
    assert _articles(store) == 2


def test_410_disables_the_source(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data("", status=410)
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "gone"
    assert not find_feed(store, str(feed_id)).enabled


def test_429_with_retry_after_sets_the_next_check(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "", status=429, headers={"Retry-After": "7200"}
    )
    outcome = poller.poll_one(find_feed(store, str(feed_id)), NOW)
    feed = find_feed(store, str(feed_id))
    assert outcome.status == "error"
    assert feed.next_check_at == format_time(NOW + timedelta(seconds=7200))
    assert (feed.error_count, feed.last_error) == (1, "HTTP 429")


def test_301_updates_the_stored_url(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "", status=301, headers={"Location": "/moved"}
    )
    httpserver.expect_request("/moved").respond_with_data(_rss(1))
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "ingested"
    feed = find_feed(store, str(feed_id))
    assert feed.url == httpserver.url_for("/moved")
    assert feed.location == httpserver.url_for("/feed"), "the subscription keeps its identity"


def test_html_page_is_an_error_on_the_source_with_back_off(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "<html><body><p>Hello</p></body></html>", content_type="text/html"
    )
    outcome = poller.poll_one(find_feed(store, str(feed_id)), NOW)
    feed = find_feed(store, str(feed_id))
    assert outcome.status == "error"
    assert feed.last_error == "an HTML page, not a feed"
    assert parse_time(feed.next_check_at or "") > NOW
    assert _articles(store) == 0


def test_due_feeds_are_those_whose_time_has_come(store: Store, feed_id: int) -> None:
    assert [f.id for f in store.feeds.due(datetime.now(UTC) + timedelta(seconds=1))] == [feed_id]
    store.execute(
        "UPDATE sources SET next_check_at = ? WHERE id = ?",
        (format_time(datetime.now(UTC) + timedelta(hours=1)), feed_id),
    )
    assert store.feeds.due(datetime.now(UTC)) == []


def test_schedule_hints_are_clamped() -> None:
    config = Config()
    assert success_interval({}, None, config, NOW) == 3600
    assert success_interval({}, 1, config, NOW) == 15 * 60
    assert success_interval({"cache-control": "public, max-age=7200"}, None, config, NOW) == 7200
    assert success_interval({}, 60 * 48, config, NOW) == 24 * 3600
    rng = random.Random(1)
    delays = [error_interval(n, config, rng) for n in (1, 2, 3, 20)]
    assert 0.8 * 900 <= delays[0] <= 1.2 * 900
    assert delays[1] > delays[0] and delays[2] > delays[1]
    assert delays[3] <= 1.2 * 24 * 3600


def _page(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        "<html><head><title>Story</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Story</h1>{body}</article><footer>Copyright</footer></body></html>"
    )


def test_summary_only_feed_gets_full_text_and_clusters_with_a_full_feed(
    httpserver: HTTPServer, store: Store, poller: Poller
) -> None:
    teaser = add_feed(store, httpserver.url_for("/teasers"), "Teasers", full_text="auto")
    full = add_feed(store, httpserver.url_for("/full"), "Full", full_text="never")
    seed_001 = (SEEDS / "001_a6bde1a4b5b05d85.txt").read_text(encoding="utf-8").splitlines()[1:]
    seed_004 = (SEEDS / "004_e5c7ce075aa33b3d.txt").read_text(encoding="utf-8").splitlines()[1:]
    now = datetime.now(UTC).replace(microsecond=0)
    date = now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    link = httpserver.url_for("/story/1")
    httpserver.expect_request("/teasers").respond_with_data(
        f'<rss version="2.0"><channel><title>T</title><item><guid>t1</guid><title>Strikes</title>'
        f"<link>{link}</link><description>Short teaser.</description><pubDate>{date}</pubDate>"
        "</item></channel></rss>"
    )
    httpserver.expect_request("/story/1").respond_with_data(
        _page(seed_001), content_type="text/html"
    )
    content = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in seed_004)
    httpserver.expect_request("/full").respond_with_data(
        f'<rss version="2.0"><channel><title>F</title><item><guid>f1</guid><title>Airspace</title>'
        f"<description>{content}</description><pubDate>{date}</pubDate></item></channel></rss>"
    )
    assert poller.poll_one(find_feed(store, str(teaser.id)), now).status == "ingested"
    outcome = poller.poll_one(find_feed(store, str(full.id)), now)
    assert outcome.status == "ingested"
    body = store.execute("SELECT body FROM articles WHERE title = 'Strikes'").fetchone()[0]
    assert "constructive partner" in body and "Copyright" not in body
    passages = store.execute("SELECT count(*) FROM passage_carriers WHERE linked = 1").fetchone()
    assert passages[0] == 2
    assert store.execute("SELECT count(*) FROM cluster_members").fetchone()[0] == 2


def test_unavailable_page_keeps_the_summary(
    httpserver: HTTPServer, store: Store, poller: Poller
) -> None:
    feed = add_feed(store, httpserver.url_for("/teasers"), "Teasers", full_text="always")
    link = httpserver.url_for("/missing")
    httpserver.expect_request("/teasers").respond_with_data(
        f'<rss version="2.0"><channel><title>T</title><item><guid>t1</guid><title>Kept</title>'
        f"<link>{link}</link><description>The summary survives a missing page.</description>"
        "</item></channel></rss>"
    )
    httpserver.expect_request("/missing").respond_with_data("gone", status=404)
    outcome = poller.poll_one(find_feed(store, str(feed.id)), NOW)
    assert outcome.status == "ingested"
    assert outcome.error and "full text unavailable for 1 of 1 entries" in outcome.error
    assert "HTTP 404" in outcome.error
    assert find_feed(store, str(feed.id)).last_warning == outcome.error
    body = store.execute("SELECT body FROM articles").fetchone()[0]
    assert body == "The summary survives a missing page."


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("name", feeddata.names())
def test_every_feed_polled_gives_its_articles(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int, name: str, encoding: str
) -> None:
    """Each feed of tests/data/feeds, served over HTTP as is and gzip-compressed,
    gives the articles its expected file lists, in feed order."""
    want = feeddata.expected(name)
    body = feeddata.document(name)
    headers: dict[str, str] = {}
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    httpserver.expect_request("/feed").respond_with_data(
        body, content_type=want["content_type"], headers=headers
    )
    outcome = poller.poll_one(find_feed(store, str(feed_id)), NOW)
    assert (outcome.status, outcome.new) == ("ingested", len(want["entries"])), outcome.error
    assert "gzip" in httpserver.log[-1][0].headers["Accept-Encoding"]
    assert httpserver.log[-1][1].headers.get("Content-Encoding") == headers.get("Content-Encoding")
    rows = store.execute("SELECT title, location, body FROM articles ORDER BY id").fetchall()
    feed_url = httpserver.url_for("/feed")
    assert rows == [
        (e["title"], urljoin(feed_url, e["link"] or ""), "\n\n".join(e["paragraphs"]))
        for e in want["entries"]
    ]


def test_a_200_without_validators_clears_the_old_ones(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_ordered_request("/feed").respond_with_data(_rss(1), headers={"ETag": '"a"'})
    httpserver.expect_ordered_request("/feed").respond_with_data(_rss(2))
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "ingested"
    assert find_feed(store, str(feed_id)).etag == '"a"'
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "ingested"
    assert find_feed(store, str(feed_id)).etag is None, "no stale ETag to earn a wrong 304"


def test_a_gone_feed_added_again_is_enabled_and_polled(
    httpserver: HTTPServer, store: Store, poller: Poller, feed_id: int
) -> None:
    httpserver.expect_ordered_request("/feed").respond_with_data("", status=410)
    httpserver.expect_ordered_request("/feed").respond_with_data(_rss(1))
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "gone"
    assert not find_feed(store, str(feed_id)).enabled
    again = add_feed(store, httpserver.url_for("/feed"))
    assert (again.id, again.enabled, again.error_count) == (feed_id, True, 0)
    assert [f.id for f in store.feeds.due(datetime.now(UTC) + timedelta(seconds=1))] == [feed_id]
    assert poller.poll_one(find_feed(store, str(feed_id)), NOW).status == "ingested"
    with pytest.raises(SourceConfigError, match="already subscribed as source"):
        add_feed(store, httpserver.url_for("/feed"))


def test_entries_past_the_per_poll_cap_are_a_recorded_warning(
    httpserver: HTTPServer, feeds_config: Config, feed_id: int
) -> None:
    config = replace(feeds_config, feeds=replace(feeds_config.feeds, max_entries_per_poll=3))
    httpserver.expect_request("/feed").respond_with_data(_rss(8))
    with Store(config.database, config.dedup.minhash) as store, Poller(store, config) as poller:
        outcome = poller.poll_one(find_feed(store, str(feed_id)), NOW)
        assert (outcome.status, outcome.new) == ("ingested", 3)
        titles = [r[0] for r in store.execute("SELECT title FROM articles ORDER BY title")]
        assert titles == ["Item 0", "Item 1", "Item 2"]  # the first in feed order
        warning = find_feed(store, str(feed_id)).last_warning
    assert warning is not None and "5 of 8 entries not taken" in warning
    assert "feeds.max_entries_per_poll" in warning
