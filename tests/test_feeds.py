"""Feed sources: subscribe, list, remove, OPML round trip, schema migration, and what a
poll records (the pure decisions, table-tested)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from aggregator.config import Config, MinHashParams
from aggregator.errors import SourceConfigError
from aggregator.ingest.feeds import (
    GONE,
    add_feed,
    export_opml,
    find_feed,
    import_opml,
    list_feeds,
    remove_feed,
    update_after_answer,
    update_after_error,
    update_after_gone,
)
from aggregator.model import FeedSource, FeedUpdate
from aggregator.storage.store import Store
from tests.conftest import SEEDS, OpenStore, ingest

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="World">
  <outline type="rss" text="Wire" title="Wire" xmlUrl="https://wire.example/rss"/>
  <outline type="rss" text="Paper" xmlUrl="https://paper.example/atom.xml?utm_source=x"/>
</outline>
<outline type="rss" text="No URL"/>
</body></opml>
"""


def test_add_list_and_find(store: Store) -> None:
    feed = add_feed(store, "HTTPS://Wire.example/rss#top", "Wire", "always")
    assert (feed.location, feed.name, feed.full_text, feed.enabled) == (
        "https://wire.example/rss",
        "Wire",
        "always",
        True,
    )
    assert feed.next_check_at is not None, "a new feed is due at once"
    assert [f.id for f in list_feeds(store)] == [feed.id]
    assert find_feed(store, str(feed.id)) == find_feed(store, "https://wire.example/rss")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x.example/", "wire.example/rss"])
def test_only_http_feeds_can_be_added(store: Store, url: str) -> None:
    with pytest.raises(SourceConfigError, match="only http and https"):
        add_feed(store, url)


def test_adding_twice_names_the_existing_source(store: Store) -> None:
    feed = add_feed(store, "https://wire.example/rss")
    with pytest.raises(SourceConfigError, match=f"already subscribed as source {feed.id}"):
        add_feed(store, "https://wire.example/rss?utm_medium=x")


def test_remove_deletes_an_unused_feed(store: Store) -> None:
    feed = add_feed(store, "https://wire.example/rss")
    assert remove_feed(store, str(feed.id)) == f"feed {feed.id} removed"
    assert list_feeds(store) == []
    with pytest.raises(SourceConfigError, match="no such feed"):
        find_feed(store, str(feed.id))


def test_remove_disables_a_feed_with_articles(store: Store, config: Config) -> None:
    ingest(config, SEEDS / "001_a6bde1a4b5b05d85.txt")
    feed = add_feed(store, "https://wire.example/rss")
    store.execute("UPDATE articles SET source_id = ?", (feed.id,))
    assert "disabled" in remove_feed(store, "https://wire.example/rss")
    assert not find_feed(store, str(feed.id)).enabled


def test_opml_import_then_export_round_trips(
    store: Store, tmp_path: Path, open_store: OpenStore
) -> None:
    path = tmp_path / "in.opml"
    path.write_text(OPML, encoding="utf-8")
    assert import_opml(store, path) == (2, 0)
    assert import_opml(store, path) == (0, 2)
    exported = tmp_path / "out.opml"
    exported.write_text(export_opml(store), encoding="utf-8")
    other = open_store(tmp_path / "other.db", MinHashParams())
    assert import_opml(other, exported) == (2, 0)
    assert [(f.name, f.url) for f in list_feeds(other)] == [
        ("Wire", "https://wire.example/rss"),
        ("Paper", "https://paper.example/atom.xml"),
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("<opml><body>", "not well-formed"),
        (
            '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "&b;&b;">]><opml/>',
            "large or nested XML entities",
        ),
        (
            '<?xml version="1.0" encoding="shift_jis"?><opml/>',
            r"cannot read its declared encoding \(multi-byte encodings are not supported\); "
            "save it as UTF-8",
        ),
        ('<?xml version="1.0" encoding="x-bogus"?><opml/>', "unknown encoding: x-bogus"),
    ],
)
def test_bad_opml_is_a_clear_error(store: Store, tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.opml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceConfigError, match=reason):
        import_opml(store, path)


def test_feeds_listed_in_the_config_become_sources_once(store: Store) -> None:
    from aggregator.ingest.feeds import sync_config_feeds

    urls = ("https://wire.example/rss", "https://paper.example/atom.xml")
    assert sync_config_feeds(store, urls) == 2
    assert sync_config_feeds(store, urls) == 0
    assert [f.location for f in list_feeds(store)] == list(urls)
    with pytest.raises(SourceConfigError, match="only http and https"):
        sync_config_feeds(store, ("file:///etc/passwd",))


def test_utf16_opml_with_a_byte_order_mark_is_read(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "in.opml"
    path.write_bytes(OPML.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert import_opml(store, path) == (2, 0)


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_POLLED = FeedSource(
    id=1,
    name="Wire",
    location="https://wire.example/rss",
    url="https://wire.example/rss",
    full_text="auto",
    enabled=True,
    last_checked_at="2026-11-23T11:00:00Z",
    last_success_at="2026-11-23T11:00:00Z",
    last_error=None,
    error_count=0,
    next_check_at="2026-11-23T12:00:00Z",
    etag='"v1"',
    last_modified="Mon, 23 Nov 2026 10:00:00 GMT",
    body_hash="old",
    last_warning="1 of 3 entries skipped",
)
_HOUR = NOW + timedelta(hours=1)  # the default interval, no hints
# A success that keeps everything the feed had (a 304 without validators).
_KEPT = FeedUpdate(
    status="ok",
    checked_at=NOW,
    next_check_at=_HOUR,
    last_error=None,
    error_count=0,
    etag=_POLLED.etag,
    last_modified=_POLLED.last_modified,
    body_hash=_POLLED.body_hash,
    last_warning=_POLLED.last_warning,
)


@pytest.mark.parametrize(
    ("status", "headers", "body_hash", "warning", "expected"),
    [
        # A 304 keeps the validators it does not send, and everything the last 200 left.
        ("not-modified", {}, None, None, _KEPT),
        ("not-modified", {"etag": '"v2"'}, None, None, replace(_KEPT, etag='"v2"')),
        # A 200 replaces both validators: a body without an ETag clears the old one.
        (
            "unchanged",
            {"last-modified": "Tue"},
            None,
            None,
            replace(_KEPT, etag=None, last_modified="Tue"),
        ),
        # Only a poll that ingested says what it noticed (None: nothing, the old one goes).
        (
            "ingested",
            {"cache-control": "max-age=7200"},
            "new",
            None,
            replace(
                _KEPT,
                next_check_at=NOW + timedelta(hours=2),
                etag=None,
                last_modified=None,
                body_hash="new",
                last_warning=None,
            ),
        ),
        (
            "ingested",
            {},
            "new",
            "cut",
            replace(_KEPT, etag=None, last_modified=None, body_hash="new", last_warning="cut"),
        ),
    ],
)
def test_what_an_answer_records(
    status: Literal["ingested", "not-modified", "unchanged"],
    headers: dict[str, str],
    body_hash: str | None,
    warning: str | None,
    expected: FeedUpdate,
) -> None:
    failing = replace(_POLLED, error_count=3, last_error="HTTP 500")
    got = update_after_answer(failing, status, NOW, headers, Config(), None, body_hash, warning)
    assert got == expected


def test_what_an_error_and_a_gone_feed_record() -> None:
    failing = replace(_POLLED, error_count=2, min_interval_minutes=10.0)
    waited = update_after_error(failing, NOW, "HTTP 429", Config(), random.Random(1), 7200)
    assert waited == replace(
        _KEPT,
        status="error",
        next_check_at=NOW + timedelta(hours=2),
        last_error="HTTP 429",
        error_count=3,
    )
    backed_off = update_after_error(failing, NOW, "HTTP 500", Config(), random.Random(1))
    assert backed_off.next_check_at is not None
    # The third error in a row: its own 10-minute minimum, doubled twice, +-20%.
    assert 32 * 60 <= (backed_off.next_check_at - NOW).total_seconds() <= 48 * 60
    gone = update_after_gone(failing, NOW)
    assert gone == replace(
        _KEPT, status="gone", next_check_at=NOW, last_error=GONE, error_count=2
    )  # its schedule stays (NOW is when it was due)
