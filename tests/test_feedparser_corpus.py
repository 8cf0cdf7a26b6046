"""Issue 3 acceptance: feedparser's own test feeds, polled over loopback, end to end.

The corpus is the `tests/wellformed`, `illformed`, `encoding` and `entities`
folders of feedparser 6.0.11's source distribution, fetched by `make test` into
`.cache/feedparser-tests` (the tests never touch the network). Every file is
served as it is by a real HTTP server on loopback (with the `Header:` hints the
files carry, as feedparser's own test server sends them), subscribed as a feed
source and polled once by `Poller`. What it proves, on 2,000+ real-world odd
documents (bad encodings, broken markup, entities, every feed format):

* nothing crashes: no exception escapes the poll, every feed ends "ingested"
  or "error", and no error is an internal one;
* every error is a non-empty one-line message, recorded on the source row
  (`last_error`, `error_count`), and a feed that was ingested carries none;
* every feed in which feedparser itself finds no entries is an error on its
  source;
* every feed in which feedparser itself (sanitiser off) finds an entry with
  visible text (its summary or content once markup is stripped, or else its
  title: a headline-only entry is kept as its headline) ends with articles
  stored. That judgement is made here, independently of `aggregator.sources.parse`,
  `entries` and `extract`. Feeds whose entries have no text at all are polled
  successfully but give no article, and say so: a warning on the source
  counts the entries skipped.

Run without `make`, the test skips when the corpus is missing; CI sets
AGGREGATOR_REQUIRE_CORPUS=1 to make that a failure.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import Config, FeedsConfig
from aggregator.ingest.feeds import add_feed, list_feeds
from aggregator.ingest.poll import Poller, PollOutcome
from tests.conftest import REPO, OpenStore

CORPUS = REPO / ".cache" / "feedparser-tests"
FOLDERS = ("wellformed", "illformed", "encoding", "entities")
PREFIX = "/corpus/"
OUTCOMES = ("ingested", "error")
# feedparser's test server sends these hints from a file's header comment.
_HINT = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Served:
    """One corpus file as served, and what feedparser itself finds in it."""

    name: str
    body: bytes
    headers: dict[str, str]
    entries: int
    with_body_text: int
    title_only: int


class _Text(HTMLParser):
    """The visible text of an HTML fragment (stdlib parser: not the pipeline's lxml)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _visible(value: Any, detail: Any) -> str:
    """A feedparser text construct as a reader sees it: markup stripped if it is HTML."""
    text = str(value or "")
    if "html" not in str((detail or {}).get("type", "text/html")):
        return text.strip()
    parser = _Text()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts).strip()


def _served(path: Path) -> Served:
    """The file as served (application/xml unless it says otherwise) and judged by feedparser."""
    body = path.read_bytes()
    headers = {"Content-Type": "application/xml"}
    for key, value in _HINT.findall(body):
        name = key.decode("utf-8").strip()
        if name.lower() == "content-type":
            name = "Content-Type"
        headers[name] = value.decode("utf-8").strip()
    parsed: Any = feedparser.parse(
        io.BytesIO(body),
        response_headers={k.lower(): v for k, v in headers.items()},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    with_body = title_only = 0
    for entry in parsed.entries:
        if _visible(entry.get("summary"), entry.get("summary_detail")) or any(
            _visible(part.get("value"), part) for part in entry.get("content") or ()
        ):
            with_body += 1
        elif _visible(entry.get("title"), entry.get("title_detail")):
            title_only += 1
    name = path.relative_to(CORPUS).as_posix()
    return Served(name, body, headers, len(parsed.entries), with_body, title_only)


def _corpus() -> list[Served]:
    missing = [f for f in FOLDERS if not any((CORPUS / f).rglob("*.xml"))]
    if missing:
        reason = (
            f"feedparser test corpus missing from {CORPUS} ({', '.join(missing)}); "
            "`make test` fetches it"
        )
        if os.environ.get("AGGREGATOR_REQUIRE_CORPUS") == "1":
            pytest.fail(reason + " (AGGREGATOR_REQUIRE_CORPUS=1)")
        pytest.skip(reason)
    return [_served(p) for f in FOLDERS for p in sorted((CORPUS / f).rglob("*.xml"))]


def _category(error: str) -> str:
    """An error without its details: "no entries (rss; SAXParseException)", "HTTP 404"."""
    return re.sub(r"^([^;:]*\([^;:]*; \w+): .*\)$", r"\1)", error)


def _one_line(message: str | None) -> bool:
    return bool(message and message.strip() and len(message.splitlines()) == 1)


@pytest.mark.slow  # about 20 s: the whole corpus through a real poll
def test_every_corpus_feed_is_ingested_or_a_clear_error(
    httpserver: HTTPServer, config: Config, open_store: OpenStore
) -> None:
    files = {f"{PREFIX}{s.name}": s for s in _corpus()}

    def respond(request: Request) -> Response:
        served = files.get(request.path)
        if served is None:
            return Response("not in the corpus", status=404)
        return Response(served.body, status=200, headers=served.headers)

    httpserver.expect_request(re.compile(f"^{PREFIX}")).respond_with_handler(respond)
    config = replace(config, feeds=FeedsConfig(allow=(f"localhost:{httpserver.port}",)))
    store = open_store()
    try:
        feeds = {
            add_feed(store, httpserver.url_for(path), served.name, full_text="never").id: served
            for path, served in files.items()
        }
        started = time.monotonic()
        poller = Poller(store, config)
        try:
            outcomes = list(poller.poll(list_feeds(store)))
        finally:
            # The poller may own worker threads or processes.
            close = getattr(poller, "close", None)
            if close is not None:
                close()
        elapsed = time.monotonic() - started
        rows = {
            row[0]: row[1:]
            for row in store.execute(
                "SELECT id, last_error, error_count, last_success_at, last_warning FROM sources "
                "WHERE kind = 'feed'"
            )
        }
        articles = Counter(
            dict(store.execute("SELECT source_id, count(*) FROM articles GROUP BY source_id"))
        )
    finally:
        store.close()

    by_feed = {o.source_id: o for o in outcomes}
    with_entries = [i for i, s in feeds.items() if s.entries]
    with_body = [i for i, s in feeds.items() if s.with_body_text]
    title_only = [i for i, s in feeds.items() if s.title_only and not s.with_body_text]
    errors = Counter(_category(o.error or "") for o in outcomes if o.status == "error")
    summary = (
        f"{len(files)} files polled in {elapsed:.1f} s: "
        f"{dict(Counter(o.status for o in outcomes))}; "
        f"{sum(articles.values())} articles stored from {len(articles)} feeds. "
        f"feedparser finds entries in {len(with_entries)} feeds, body text in "
        f"{len(with_body)}, titles only in {len(title_only)}. "
        f"Errors by reason: {dict(errors.most_common())}"
    )
    print(summary)

    assert len(by_feed) == len(outcomes) == len(feeds), f"not one outcome per feed; {summary}"
    odd = {feeds[i].name: o.status for i, o in by_feed.items() if o.status not in OUTCOMES}
    assert not odd, f"statuses other than {OUTCOMES}: {odd}; {summary}"
    internal = {
        feeds[i].name: o.error
        for i, o in by_feed.items()
        if o.status == "error" and (o.error or "").startswith("internal error")
    }
    assert not internal, f"crashes, caught by the poller: {internal}; {summary}"

    unclear = {
        feeds[i].name: o.error
        for i, o in by_feed.items()
        if o.status == "error" and not _one_line(o.error)
    }
    assert not unclear, f"errors without a one-line message: {unclear}"
    unrecorded = {
        feeds[i].name: (o.error, rows[i][:2])
        for i, o in by_feed.items()
        if o.status == "error" and rows[i][:2] != (o.error, 1)
    }
    assert not unrecorded, f"errors not recorded on the source (last_error, count): {unrecorded}"
    stale = {
        feeds[i].name: rows[i]
        for i, o in by_feed.items()
        if o.status == "ingested" and (rows[i][:2] != (None, 0) or not rows[i][2])
    }
    assert not stale, f"ingested feeds whose source row is not a success: {stale}"

    silent = {
        s.name: by_feed[i].status
        for i, s in feeds.items()
        if not s.entries and by_feed[i].status != "error"
    }
    assert not silent, f"feeds without entries that are not an error on their source: {silent}"
    failed = {
        feeds[i].name: by_feed[i].error
        for i in with_entries
        if by_feed[i].status != "ingested" and not _refused_entities(feeds[i], by_feed[i])
    }
    assert not failed, f"{len(failed)} feeds with entries were not ingested: {failed}; {summary}"
    with_text = with_body + title_only
    lost = {
        feeds[i].name: (by_feed[i].status, by_feed[i].error, feeds[i].with_body_text)
        for i in with_text
        if not articles[i] and not _refused_entities(feeds[i], by_feed[i])
    }
    assert not lost, (
        f"{len(lost)} of {len(with_text)} feeds with text stored no article "
        f"(name: status, error, entries with body text): {lost}; {summary}"
    )
    unexplained = {
        feeds[i].name: rows[i][3]
        for i, o in by_feed.items()
        if o.status == "ingested" and not articles[i] and "skipped" not in (rows[i][3] or "")
    }
    assert not unexplained, f"feeds that gave no article and no warning why: {unexplained}"


def _refused_entities(served: Served, outcome: PollOutcome) -> bool:
    """Our documented refusal: a document declaring XML entities that could expand."""
    return (
        outcome.status == "error"
        and b"<!ENTITY" in served.body.upper()
        and (outcome.error or "").startswith("refused")
    )
