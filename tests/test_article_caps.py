"""Issue 12: one oversized or unstorable article costs that article (and its feed's
warning or error), never the poll, the folder ingest, or the next poll.

Feeds are served by a real HTTP server on loopback; the per-article database
refusal is forced with SQLite's own limit (`Connection.setlimit`).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config, IngestConfig
from aggregator.configfile import load_config
from aggregator.errors import ConfigError, StoreError
from aggregator.ingest.feeds import add_feed, find_feed
from aggregator.ingest.pipeline import Ingester
from aggregator.ingest.poll import Poller
from aggregator.model import Article, parse_time
from aggregator.storage.store import Store
from tests.conftest import SEEDS, read_all

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TEN_MIB = 10 * 1024 * 1024
RSS = "application/rss+xml"
# The documented defaults of ingest.max_title_chars, max_paragraphs, max_text_chars.
TITLE_CAP, PARAGRAPH_CAP, TEXT_CAP = 1_000, 2_000, 1024 * 1024
SEED_LINES = (SEEDS / "000_2014b5a3539f3a02.txt").read_text(encoding="utf-8").splitlines()


def _item(guid: str, title: str, paragraphs: list[str]) -> str:
    html = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paragraphs)
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><description>{html}</description>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
    )


def _rss(*items: str) -> bytes:
    return f'<rss version="2.0"><channel><title>F</title>{"".join(items)}</channel></rss>'.encode()


def _normal(guid: str, line: int) -> str:
    return _item(guid, f"Normal {guid}", [SEED_LINES[line]])


def _words(count: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + count))


def _titles(store: Store, feed_id: int) -> dict[str, tuple[int, str, int]]:
    """identity -> (title length, title, version) of a feed's stored articles."""
    rows = store.execute(
        "SELECT identity, title, version FROM articles WHERE source_id = ?", (feed_id,)
    ).fetchall()
    return {r[0]: (len(r[1]), r[1], r[2]) for r in rows}


def test_a_10_mb_title_and_a_huge_body_are_stored_cut_and_the_poll_goes_on(
    httpserver: HTTPServer, store: Store, poller: Poller
) -> None:
    """One feed with a 10 MiB headline and a 2 MB body, polled with a normal feed:
    everything is stored, the two entries cut to the caps, the cut named in one line
    on the feed; a second poll stores the feed's next entry and re-cuts nothing."""
    big = add_feed(store, httpserver.url_for("/big"), "Big", full_text="never")
    normal = add_feed(store, httpserver.url_for("/normal"), "Normal", full_text="never")
    huge_body = [_words(300, start=300 * i) for i in range(1000)]  # ~2.1 MB, 1,000 paragraphs
    first = [
        _item("big-body", "Big body", huge_body),
        _normal("ok", 1),
        _item("big-title", "A" * TEN_MIB, [SEED_LINES[0]]),
    ]
    httpserver.expect_oneshot_request("/big").respond_with_data(_rss(*first), content_type=RSS)
    httpserver.expect_request("/big").respond_with_data(
        _rss(*first, _normal("later", 3)), content_type=RSS
    )
    httpserver.expect_request("/normal").respond_with_data(
        _rss(_normal("n1", 4), _normal("n2", 5)), content_type=RSS
    )

    outcomes = {o.source_id: o for o in poller.poll([big, normal], NOW)}

    assert {i: o.status for i, o in outcomes.items()} == {big.id: "ingested", normal.id: "ingested"}
    assert (outcomes[big.id].new, outcomes[normal.id].new) == (3, 2)
    stored = _titles(store, big.id)
    assert set(stored) == {"big-title", "big-body", "ok"}
    assert stored["big-title"][0] == TITLE_CAP
    assert stored["big-title"][1] == "A" * (TITLE_CAP - 1) + "…"
    body = store.execute("SELECT body FROM articles WHERE identity = 'big-body'").fetchone()[0]
    assert TEXT_CAP - 2200 < len(body) <= TEXT_CAP
    parts = body.split("\n\n")
    assert parts[:-1] == huge_body[: len(parts) - 1], "whole paragraphs, then..."
    assert huge_body[len(parts) - 1].startswith(parts[-1].removesuffix("…")), "...a prefix"
    assert set(_titles(store, normal.id)) == {"n1", "n2"}
    feed = find_feed(store, str(big.id))
    assert feed.last_error is None and feed.error_count == 0
    assert feed.last_warning is not None and "\n" not in feed.last_warning
    # parse.py may read only the first 10,000 characters of a title; either way the
    # cut is named with both sizes.
    assert re.fullmatch(
        r"2 of 3 entries cut to the article caps, last: title cut from "
        r"(10,485,760|10,000) to 1,000 characters",
        feed.last_warning,
    ), feed.last_warning
    assert feed.last_warning == outcomes[big.id].error
    assert find_feed(store, str(normal.id)).last_warning is None
    for source in (big, normal):
        assert parse_time(find_feed(store, str(source.id)).next_check_at or "") > NOW

    later = NOW + timedelta(days=2)
    again = {o.source_id: o for o in poller.poll(store.feeds.due(later), later)}

    assert again[big.id].status == "ingested" and again[big.id].new == 1, again[big.id].error
    assert again[normal.id].status == "unchanged"
    stored_again = _titles(store, big.id)
    assert set(stored_again) == {"big-title", "big-body", "ok", "later"}
    assert stored_again["big-title"] == stored["big-title"], "not cut or versioned again"
    feed = find_feed(store, str(big.id))
    assert (feed.last_error, feed.error_count, feed.last_warning) == (None, 0, None)
    assert store.feeds.due(later) == [], "nothing stays due"


def test_an_article_the_database_refuses_fails_alone_and_is_the_feeds_error(
    httpserver: HTTPServer, store: Store, poller: Poller
) -> None:
    """SQLite's length limit set below one entry's text: that entry is rolled back and
    is its feed's recorded error (backed off); the feed's other entries and the other
    feed are stored. Retried later, it fails the same way, alone; with the limit
    back it is stored. A fault of the whole store still stops the poll."""
    bad = add_feed(store, httpserver.url_for("/bad"), "Bad", full_text="never")
    good = add_feed(store, httpserver.url_for("/good"), "Good", full_text="never")
    httpserver.expect_request("/bad").respond_with_data(
        _rss(_normal("b1", 1), _item("too-long", "Too long", [_words(6000)]), _normal("b2", 2)),
        content_type=RSS,
    )
    httpserver.expect_request("/good").respond_with_data(
        _rss(_normal("g1", 3), _normal("g2", 4)), content_type=RSS
    )
    default_limit = store.conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)  # the entry's text: 34,889

    outcomes = {o.source_id: o for o in poller.poll([bad, good], NOW)}

    assert outcomes[good.id].status == "ingested" and outcomes[good.id].new == 2
    assert set(_titles(store, good.id)) == {"g1", "g2"}
    assert (outcomes[bad.id].status, outcomes[bad.id].new) == ("error", 2)
    assert set(_titles(store, bad.id)) == {"b1", "b2"}
    feed = find_feed(store, str(bad.id))
    assert feed.error_count == 1
    assert feed.last_error == (
        "1 of 3 entries refused by the database, last: database refused it: string or blob too big"
    )
    assert parse_time(feed.next_check_at or "") > NOW, "backed off"
    assert find_feed(store, str(good.id)).last_error is None
    orphans = store.execute(
        "SELECT count(*) FROM article_versions v LEFT JOIN articles a ON a.id = v.article_id "
        "WHERE a.id IS NULL"
    ).fetchone()[0]
    assert orphans == 0

    later = NOW + timedelta(days=2)
    again = {o.source_id: o for o in poller.poll(store.feeds.due(later), later)}
    assert again[bad.id].status == "error" and again[bad.id].new == 0
    assert again[good.id].status == "unchanged"
    feed = find_feed(store, str(bad.id))
    assert feed.error_count == 2 and parse_time(feed.next_check_at or "") > later

    store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, default_limit)
    fixed = poller.poll_one(find_feed(store, str(bad.id)), later + timedelta(days=2))
    assert (fixed.status, fixed.new) == ("ingested", 1)
    feed = find_feed(store, str(bad.id))
    assert (feed.last_error, feed.error_count) == (None, 0)
    assert set(_titles(store, bad.id)) == {"b1", "b2", "too-long"}

    httpserver.expect_request("/disk-full").respond_with_data(
        _rss(_item("d1", "Disk full", [_words(3000)])), content_type=RSS
    )
    disk = add_feed(store, httpserver.url_for("/disk-full"), "D", full_text="never")
    pages = store.execute("PRAGMA page_count").fetchone()[0]
    store.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    with pytest.raises(StoreError, match="disk full"):
        list(poller.poll([disk], later))


def test_folder_ingest_cuts_and_refuses_one_file_at_a_time(
    config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files over the caps are stored cut with a warning on their outcome and a log line
    naming the file; a file the database refuses fails alone; ingesting again re-cuts
    nothing."""
    folder = tmp_path / "wire"
    folder.mkdir()
    long_title = _words(40_000)  # ~270,000 characters
    (folder / "a-title.md").write_text(
        f"---\ntitle: {long_title}\n---\n\n{SEED_LINES[0]}\n", encoding="utf-8"
    )
    (folder / "b-paragraphs.txt").write_text(
        "\n\n".join(f"Paragraph {i} has a few words." for i in range(3000)), encoding="utf-8"
    )
    long_text = [_words(250, start=250 * i) for i in range(800)]  # ~1.4 MB
    (folder / "c-text.txt").write_text("\n\n".join(long_text), encoding="utf-8")
    (folder / "d-normal.txt").write_text("\n".join(SEED_LINES), encoding="utf-8")

    with Store(config.database, config.dedup.minhash) as store:
        caplog.set_level(logging.WARNING, "aggregator.ingest.pipeline")
        outcomes = {
            Path(o.location).name: o
            for o in Ingester(store, config).ingest(read_all([folder], config))
        }
        titles = dict(store.execute("SELECT location, title FROM articles").fetchall())
        bodies = dict(store.execute("SELECT location, body FROM articles").fetchall())

    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(
        ("a-title.md", "b-paragraphs.txt", "c-text.txt", "d-normal.txt"), "new"
    )
    title = titles[str(folder / "a-title.md")]
    assert len(title) <= TITLE_CAP and title.endswith("…")
    assert long_title.startswith(title[:-1] + " "), "cut at a space, between words"
    assert outcomes["a-title.md"].warning == (
        f"title cut from {len(long_title):,} to {len(title):,} characters"
    )
    assert outcomes["b-paragraphs.txt"].warning == "paragraphs cut from 3,000 to 2,000"
    assert bodies[str(folder / "b-paragraphs.txt")].count("\n\n") == PARAGRAPH_CAP - 1
    text = bodies[str(folder / "c-text.txt")]
    assert len(text) <= TEXT_CAP
    original = len("\n\n".join(long_text))
    assert outcomes["c-text.txt"].warning == (
        f"text cut from {original:,} to {len(text):,} characters"
    )
    assert outcomes["d-normal.txt"].warning is None
    assert f"{folder / 'a-title.md'}: title cut from" in caplog.text

    with Store(config.database, config.dedup.minhash) as store:
        assert {o.status for o in Ingester(store, config).ingest(read_all([folder], config))} == {
            "unchanged"
        }
        # A new file whose text SQLite refuses fails alone; the one after it is stored.
        (folder / "e-refused.txt").write_text(_words(6000), encoding="utf-8")
        (folder / "f-after.txt").write_text("\n".join(SEED_LINES[2:]), encoding="utf-8")
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)
        more = {
            Path(o.location).name: o
            for o in Ingester(store, config).ingest(read_all([folder], config))
        }
    assert more["e-refused.txt"].status == "failed" and more["e-refused.txt"].refused
    assert more["e-refused.txt"].error == "database refused it: string or blob too big"
    assert more["f-after.txt"].status == "new"


def test_cuts_fall_on_word_and_paragraph_boundaries() -> None:
    from aggregator.ingest.pipeline import cap_article

    caps = IngestConfig(max_title_chars=20, max_paragraphs=3, max_text_chars=1024)
    when = NOW
    fits = Article("Exactly twenty chars", when, ("a" * 500, "b" * 500))
    assert cap_article(fits, caps) == (fits, None)

    worded, warning = cap_article(Article("one two three four five six", when, ("x",)), caps)
    assert worded.title == "one two three four…"
    assert warning == "title cut from 27 to 19 characters"
    # 300 + 2 + 600 = 902 fit; 120 characters of room are left for the third: too
    # little to be worth a fragment, so the cut is at the paragraph boundary.
    article = Article("T", when, ("p" * 300, "q" * 600, _words(200)))
    capped, warning = cap_article(article, caps)
    assert capped.paragraphs == ("p" * 300, "q" * 600)
    assert warning == "text cut from 1,793 to 902 characters"
    # With 520 characters of room the third paragraph is cut between two words.
    article = Article("T", when, ("p" * 300, "q" * 200, _words(200), "last"))
    capped, warning = cap_article(article, caps)
    assert len("\n\n".join(capped.paragraphs)) <= 1024
    assert capped.paragraphs[2].endswith("…")
    assert _words(200).startswith(capped.paragraphs[2][:-1] + " ")
    stored = len("\n\n".join(capped.paragraphs))
    assert warning == f"paragraphs cut from 4 to 3; text cut from 1,399 to {stored:,} characters"


def test_refusals_are_told_from_faults_of_the_store(tmp_path: Path) -> None:
    from aggregator.ingest.batches import refusal as told
    from aggregator.storage.sqlite import translate

    def refusal(error: BaseException) -> str | None:
        """What the pipeline makes of an error as the SQLite engine raises it."""
        if isinstance(error, sqlite3.Error):
            error = translate(error, tmp_path / "t.db")
        return told(error)

    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0)
    try:
        conn.execute("CREATE TABLE t (x UNIQUE NOT NULL)")
        conn.execute("INSERT INTO t VALUES (1)")
        about_the_article: list[BaseException] = []
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
        for sql, args in (
            ("INSERT INTO t VALUES (?)", ("x" * 200,)),  # too big
            ("INSERT INTO t VALUES (?)", (1,)),  # unique
            ("INSERT INTO t VALUES (?)", (None,)),  # not null
            ("SELECT " + ", ".join("?" * 20), (0,) * 20),  # too many variables
            ("INSERT INTO t VALUES (?)", ("\ud800",)),  # not UTF-8
            ("INSERT INTO t VALUES (?)", (2**70,)),  # not 64 bits
        ):
            with pytest.raises(Exception) as info:  # each kind is checked below
                conn.execute(sql, args)
            about_the_article.append(info.value)
        assert all(refusal(e) for e in about_the_article), [
            (type(e).__name__, str(e)) for e in about_the_article if not refusal(e)
        ]
        store_wide: list[BaseException] = []
        conn.execute("PRAGMA max_page_count = 2")  # disk full
        with pytest.raises(sqlite3.Error) as info:
            conn.execute("INSERT INTO t SELECT randomblob(90) FROM t")
            for _ in range(200):
                conn.execute("INSERT INTO t VALUES (randomblob(90))")
        store_wide.append(info.value)
        other.execute("BEGIN IMMEDIATE")  # locked
        with pytest.raises(sqlite3.Error) as info:
            conn.execute("BEGIN IMMEDIATE")
        store_wide.append(info.value)
        other.execute("ROLLBACK")
        reader = sqlite3.connect(f"file:{tmp_path / 't.db'}?mode=ro", uri=True)
        with pytest.raises(sqlite3.Error) as info:  # read-only
            reader.execute("DELETE FROM t")
        reader.close()
        store_wide.append(info.value)
        store_wide.append(sqlite3.DatabaseError("database disk image is malformed"))
        store_wide.append(StoreError("database x: not an aggregator database"))
        assert [refusal(e) for e in store_wide] == [None] * len(store_wide), store_wide
        assert refusal(about_the_article[0]) == "string or blob too big"
    finally:
        conn.close()
        other.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nmax_title_chars = 5\n", "ingest.max_title_chars: must be >= 20"),
        ("[ingest]\nmax_paragraphs = 0\n", "ingest.max_paragraphs: must be >= 1"),
        ("[ingest]\nmax_text_chars = 100\n", "ingest.max_text_chars: must be >= 1024"),
        ('[ingest]\nmax_text_chars = "1 MiB"\n', "ingest.max_text_chars: expected int"),
    ],
)
def test_cap_keys_are_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "a.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"^config key {re.escape(message)}"):
        load_config(path)


def test_the_default_caps_are_the_documented_ones() -> None:
    caps = IngestConfig()
    assert (caps.max_title_chars, caps.max_paragraphs, caps.max_text_chars) == (
        TITLE_CAP,
        PARAGRAPH_CAP,
        TEXT_CAP,
    )


def test_cap_keys_load_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        "[ingest]\nmax_title_chars = 300\nmax_paragraphs = 50\nmax_text_chars = 65536\n",
        encoding="utf-8",
    )
    ingest = load_config(path).ingest
    assert (ingest.max_title_chars, ingest.max_paragraphs, ingest.max_text_chars) == (
        300,
        50,
        65536,
    )
