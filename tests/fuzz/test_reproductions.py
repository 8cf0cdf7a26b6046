"""The reproductions of every bug the fuzzing found, and the checks of the harness.

A reproduction is an `xfail(strict=True)` while its bug is in `KNOWN_BUGS`, then a
regression test. The entity-bomb and quadratic-input bugs are reproduced by the
bounded checks (test_bombs.py, test_linear.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis.database import ReadOnlyDatabase

from aggregator.config import MinHashParams
from aggregator.errors import SourceConfigError
from aggregator.ingest.feeds import import_opml
from aggregator.model import RawDocument
from aggregator.sources.extract import FRAGMENT
from aggregator.storage.store import Store

from .checks import (
    check_config,
    check_document,
    check_feed,
    check_intervals,
    check_retry_after,
    check_url,
)
from .harness import FUZZ_DB, KNOWN_BUGS, LONG, call, fuzz, xfail_if_known
from .strategies_config import OPML_16, OPML_BOGUS
from .strategies_documents import raw_document
from .strategies_feeds import ENCODING_NAME, RSS_TTL, _json_item


def _markdown_date(moment: str) -> RawDocument:
    text = f"---\ntitle: T\ndate: {moment}\n---\nSome text here.\n"
    return raw_document("text/markdown", text.encode())


NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _import_opml_bytes(content: bytes, tmp: Path) -> None:
    (tmp / "f.opml").write_bytes(content)
    store = Store(tmp / "t.db", MinHashParams())
    try:
        call(import_opml, store, tmp / "f.opml", allowed=(SourceConfigError,), tolerate=False)
    finally:
        store.close()


def _load_config_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")
    check_config(path, tolerate=False)


REPRODUCTIONS: list[tuple[str, str, Callable[[Path], None]]] = [
    (
        "ttl-int",
        "superscript",
        lambda _: check_feed(RSS_TTL.format("\u00b2").encode(), {}, "https://f.example/", False),
    ),
    (
        "ttl-int",
        "5000 digits",
        lambda _: check_feed(RSS_TTL.format("9" * 5000).encode(), {}, "https://f.example/", False),
    ),
    (
        "json-int-digits",
        "5000 digits",
        lambda _: check_feed(b'{"a": ' + b"1" * 5000 + b"}", {}, "https://f.example/", False),
    ),
    (
        "json-depth",
        "100000 brackets",
        lambda _: check_feed(b'{"a":' + b"[" * 100_000 + b"}", {}, "https://f.example/", False),
    ),
    (
        "feedparser-encoding-name",
        "encoding=\\x80utf-8",
        lambda _: check_feed(ENCODING_NAME % b"\x80", {}, "https://f.example/", False),
    ),
    (
        "feedparser-encoding-name",
        "encoding=\\x00utf-8",
        lambda _: check_feed(ENCODING_NAME % b"\x00", {}, "https://f.example/", False),
    ),
    (
        "feedparser-charref",
        "&#99999999; in a title",
        lambda _: check_feed(
            b'<rss version="2.0"><channel><item><title>&#99999999;</title></item></channel></rss>',
            {},
            "https://f.example/",
            False,
        ),
    ),
    (
        "feedparser-charref",
        "&#xD800; in a title",
        lambda _: check_feed(
            b'<rss version="2.0"><channel><item><title>&#xD800;</title></item></channel></rss>',
            {},
            "https://f.example/",
            False,
        ),
    ),
    (
        "json-surrogates",
        "content_text",
        lambda _: check_feed(
            _json_item(content_text="a \udc00 b"), {}, "https://f.example/", False
        ),
    ),
    (
        "json-surrogates",
        "title",
        lambda _: check_feed(
            _json_item(title="\ud800", content_text="text"), {}, "https://f.example/", False
        ),
    ),
    (
        "json-date-overflow",
        "year 1 at +01:00",
        lambda _: check_feed(
            _json_item(date_published="0001-01-01T00:00:00+01:00"), {}, "https://f.example/", False
        ),
    ),
    (
        "date-storable",
        "rss year 999",
        lambda _: check_feed(
            b'<rss version="2.0"><channel><item><title>x</title>'
            b"<pubDate>Sat, 01 Jan 0999 00:00:00 GMT</pubDate></item></channel></rss>",
            {},
            "https://f.example/",
            False,
        ),
    ),
    (
        "date-storable",
        "markdown year 1 at +01:00",
        lambda _: check_document(_markdown_date("0001-01-01T00:00:00+01:00"), False),
    ),
    (
        "date-storable",
        "markdown year 999",
        lambda _: check_document(_markdown_date("0999-01-01"), False),
    ),
    ("retry-after-digits", "superscript", lambda _: check_retry_after("\u00b2", None, False)),
    (
        "interval-overflow",
        "Expires in year 1 at +01:00",
        lambda _: check_intervals({"expires": "Mon, 01 Jan 0001 00:00:00 +0100"}, None, 1),
    ),
    ("interval-overflow", "1,025 errors in a row", lambda _: check_intervals({}, None, 1025)),
    ("url-idempotent", "space before fragment", lambda _: check_url("a #b", None, False)),
    ("url-idempotent", "empty authority", lambda _: check_url("A:////", None, False)),
    (
        "url-idempotent",
        "space before an empty query",
        lambda _: check_url("HTTP://0/ ?", None, False),
    ),
    (
        "url-idempotent",
        "http, space before fragment",
        lambda _: check_url("http://h.example/a #x", None, False),
    ),
    (
        "fragment-control-characters",
        "feed entry <div>\\x01",
        lambda _: check_document(
            RawDocument("feed", "f", "f", "1", "https://f.example/1", FRAGMENT, b"<div>\x01", NOW),
            False,
        ),
    ),
    (
        "fragment-control-characters",
        "feed entry <p>&#1;",
        lambda _: check_document(
            RawDocument("feed", "f", "f", "1", "https://f.example/1", FRAGMENT, b"<p>a&#1;", NOW),
            False,
        ),
    ),
    (
        "fragment-html-element",
        "feed entry <html>",
        lambda _: check_document(
            RawDocument("feed", "f", "f", "1", "https://f.example/1", FRAGMENT, b"<html>", NOW),
            False,
        ),
    ),
    ("opml-encoding", "utf-16-le declared", lambda tmp: _import_opml_bytes(OPML_16, tmp)),
    ("opml-encoding", "unknown encoding", lambda tmp: _import_opml_bytes(OPML_BOGUS, tmp)),
    (
        "config-int-digits",
        "database = 5000 digits",
        lambda tmp: _load_config_text("database = " + "9" * 5000, tmp / "c.toml"),
    ),
    (
        "config-digest-time",
        "superscript hour",
        lambda tmp: _load_config_text('[daemon]\ndigest_time = "\u00b2:00"', tmp / "c.toml"),
    ),
    (
        "config-timezone",
        "a directory",
        lambda tmp: _load_config_text('[daemon]\ntimezone = "Europe"', tmp / "c.toml"),
    ),
    (
        "config-timezone",
        "a long name",
        lambda tmp: _load_config_text(f'[daemon]\ntimezone = "{"x" * 300}"', tmp / "c.toml"),
    ),
    (
        "config-path",
        "NUL byte",
        lambda tmp: _load_config_text('database = "a\\u0000b"', tmp / "c.toml"),
    ),
    (
        "config-path",
        "unknown user",
        lambda tmp: _load_config_text('folders = ["~nosuchuser/x"]', tmp / "c.toml"),
    ),
    (
        "config-key-newline",
        "quoted key",
        lambda tmp: _load_config_text('"a\\nb" = 1', tmp / "c.toml"),
    ),
]


@pytest.mark.parametrize(
    ("run",),
    [
        pytest.param(run, id=f"{bug_id}: {name}", marks=xfail_if_known(bug_id))
        for bug_id, name, run in REPRODUCTIONS
    ],
)
def test_reproduction(run: Callable[[Path], None], tmp_path: Path) -> None:
    run(tmp_path)


def test_every_known_bug_has_a_reproduction() -> None:
    reproduced = {bug_id for bug_id, _, _ in REPRODUCTIONS} | {
        "markdown-quadratic",
        "entity-bypass",
        "entity-quadratic",
    }
    assert set(KNOWN_BUGS) <= reproduced


@pytest.mark.skipif(LONG, reason="the long profile records failures, it does not replay")
def test_ci_runs_replay_the_recorded_failures() -> None:
    """Hypothesis refuses derandomize=True and a database in one settings object; given
    to a child, both apply. Should an upgrade change that, the recorded failures would
    silently stop being replayed: fail here instead."""
    ci = fuzz(1)
    assert ci.derandomize
    assert isinstance(ci.database, ReadOnlyDatabase)
    # ... and they are the ones in tests/fuzz-db/ (the harness finds the repository
    # from its own path, which moving the fuzz tests changes).
    assert ci.database == ReadOnlyDatabase(FUZZ_DB)
    assert (FUZZ_DB.path / "README.md").is_file(), f"no example database at {FUZZ_DB.path}"
