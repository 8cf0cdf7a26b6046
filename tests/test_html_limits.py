"""Hostile HTML (issue 12, items 3 and 9): entry HTML and full-text pages are read in
killable worker processes with a deadline, after a linear scan that cuts what is past
the limits (htmllimits.py); deep nesting keeps its text, or says it was lost."""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import lxml.etree
import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from aggregator.config import Config
from aggregator.errors import WorkerError
from aggregator.ingest.entries import entry_documents
from aggregator.ingest.feeds import add_feed, find_feed, list_feeds
from aggregator.ingest.poll import Poller
from aggregator.model import RawDocument
from aggregator.sources import htmltext
from aggregator.sources.entrytext import ReadEntry, read_feed
from aggregator.sources.extract import extract
from aggregator.sources.fetch import FetchPolicy
from aggregator.sources.fulltext import FullTextFetcher
from aggregator.sources.htmllimits import (
    IMPLIED_LEVELS,
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_TAGS,
    MAX_TOTAL_ATTRIBUTES,
    Limited,
    limit_html,
)
from aggregator.sources.htmltext import read_fragment, read_page
from aggregator.sources.workers import ParsePool
from tests.conftest import SEEDS, OpenStore

DEADLINE = 2.0  # feeds.deadline_seconds in these tests
PARSE_DEADLINE = 3.0  # the parse and page deadlines in these tests
PROSE = "This sentence is ordinary article prose, long enough to count as text."
SEED = (SEEDS / "001_a6bde1a4b5b05d85.txt").read_text(encoding="utf-8").splitlines()[1:]


def _attributes(n: int) -> str:
    return " ".join(f'a{i}="x"' for i in range(n))


def _nested(n: int) -> str:
    """Three paragraphs, the second inside `n` nested <div>s (libxml2 stops at 256)."""
    return (
        f"<p>First: {PROSE}</p>{'<div>' * n}<p>Second: {PROSE}</p>{'</div>' * n}"
        f"<p>Third: {PROSE}</p>"
    )


def _rss(items: list[tuple[str, str, str]]) -> bytes:
    """RSS with (guid, link, description HTML) items."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>Item {guid}</title><link>{link}</link>"
        f"<description>{html.escape(text)}</description></item>"
        for guid, link, text in items
    )
    return f'<rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


RSS = "application/rss+xml"


def _page(body: str) -> str:
    return f"<html><head><title>Story</title></head><body><article>{body}</article></body></html>"


@pytest.fixture
def feeds_config(httpserver: HTTPServer, config: Config) -> Config:
    feeds = replace(
        config.feeds, allow=(f"localhost:{httpserver.port}",), deadline_seconds=DEADLINE
    )
    return replace(config, feeds=feeds)


@pytest.fixture
def poller(open_store: OpenStore, feeds_config: Config) -> Iterator[Poller]:
    with Poller(open_store(), feeds_config) as poller:
        poller.parse_deadline = PARSE_DEADLINE
        poller.full_text.deadline = PARSE_DEADLINE
        yield poller


def _bodies(poller: Poller, source: str) -> list[str]:
    rows = poller.store.execute(
        "SELECT a.body FROM articles a JOIN sources s ON s.id = a.source_id "
        "WHERE s.location = ? ORDER BY a.id",
        (source,),
    )
    return [row[0] for row in rows]


@pytest.mark.timeout(30)  # the code before these limits spent 50 s on this poll
def test_hostile_entry_and_page_do_not_hold_up_the_poll(
    httpserver: HTTPServer, poller: Poller
) -> None:
    """An entry with 100,000 attributes on one element and a linked page with 80,000,
    polled beside a normal feed: the poll ends within the fetch and parse deadlines,
    the thread that writes spends little CPU (it parses no feed HTML), the normal feed
    is stored, and the hostile feed has its text and a one-line warning."""
    normal = httpserver.url_for("/normal")
    hostile = httpserver.url_for("/hostile")
    page = httpserver.url_for("/page")
    httpserver.expect_request("/normal").respond_with_data(
        _rss([("n1", "", f"<p>{SEED[0]}</p>"), ("n2", "", f"<p>{SEED[1]}</p>")]), content_type=RSS
    )
    httpserver.expect_request("/hostile").respond_with_data(
        _rss(
            [
                ("h1", "", f"<p {_attributes(100_000)}>Hello there, {PROSE}</p>"),
                ("h2", page, "Short teaser."),
            ]
        ),
        content_type=RSS,
    )
    httpserver.expect_request("/page").respond_with_data(
        _page(f"<p {_attributes(80_000)}>{PROSE}</p>" + f"<p>{SEED[2]}</p>"),
        content_type="text/html",
    )
    add_feed(poller.store, normal, "Normal", full_text="never")
    add_feed(poller.store, hostile, "Hostile", full_text="auto")

    started, cpu = time.monotonic(), time.thread_time()
    outcomes = {o.url: o for o in poller.poll(list_feeds(poller.store))}
    cpu, took = time.thread_time() - cpu, time.monotonic() - started

    assert took < DEADLINE + PARSE_DEADLINE, f"the poll took {took:.1f} s"
    assert cpu < 1.5, f"the writing thread spent {cpu:.2f} s of CPU"
    assert (outcomes[normal].status, outcomes[normal].new) == ("ingested", 2)
    assert _bodies(poller, normal) == SEED[:2]
    assert (outcomes[hostile].status, outcomes[hostile].new) == ("ingested", 2)
    first, second = _bodies(poller, hostile)
    assert first == f"Hello there, {PROSE}"
    assert SEED[2] in second, "the page's text, not the teaser"
    warning = find_feed(poller.store, hostile).last_warning
    assert warning == outcomes[hostile].error
    assert warning is not None and "\n" not in warning
    assert warning.startswith("HTML over the limits in 2 of 2 entries, last: page HTML: ")
    assert f"kept the first {MAX_ATTRIBUTES}" in warning
    assert find_feed(poller.store, normal).last_warning is None


@pytest.mark.timeout(30)
def test_a_page_past_its_deadline_is_stopped_and_the_summary_kept(
    httpserver: HTTPServer, poller: Poller
) -> None:
    """A page within the limits that trafilatura still takes long over (50,000
    <span>s: about 20 s) is stopped at the page deadline; the entry keeps its summary,
    the reason is in the feed's warning, and the poll goes on. The feed's pages share
    that deadline: a second such page is not even fetched."""
    poller.full_text.deadline = 1.0
    page = httpserver.url_for("/slow")
    httpserver.expect_request("/slow").respond_with_data(
        _page(f"<p>{PROSE}</p><div>{'<span>x</span>' * 50_000}</div>"), content_type="text/html"
    )
    httpserver.expect_request("/feed").respond_with_data(
        _rss([("s1", page, "The summary."), ("s2", page + "?2", "Another.")]), content_type=RSS
    )
    feed = add_feed(poller.store, httpserver.url_for("/feed"), "Slow", full_text="always")
    started = time.monotonic()
    outcome = poller.poll_one(feed)
    assert time.monotonic() - started < DEADLINE + 1.0 + 2.0
    assert outcome.status == "ingested"
    assert outcome.error is not None
    assert outcome.error.startswith("full text unavailable for 2 of 2 entries")
    assert outcome.error.endswith(
        "last: reading this feed's pages took its 1 s for this poll; "
        "the later entries keep their summaries"
    )
    assert [r.path for r, _ in httpserver.log].count("/slow") == 1
    assert _bodies(poller, feed.location) == ["The summary.", "Another."]


def test_a_single_page_is_stopped_at_the_deadline() -> None:
    """The reason a page past its deadline gives (the warning's last part above names
    the budget instead)."""
    fetcher = FullTextFetcher(FetchPolicy(), deadline=0.5)
    try:
        with pytest.raises(WorkerError, match=r"took longer than 0\.5 s; stopped"):
            fetcher.pages.call(
                read_page,
                _page(f"<p>{PROSE}</p>" + "<span>x</span>" * 50_000).encode(),
                "https://x.example/",
                deadline=fetcher.deadline,
            )
    finally:
        fetcher.close()


@pytest.mark.timeout(30)
def test_deep_nesting_in_an_entry_keeps_every_paragraph_and_says_so(
    httpserver: HTTPServer, poller: Poller
) -> None:
    """100,000 nested <div>s around the second of three paragraphs: libxml2 alone keeps
    only the first; all three are stored, and the feed's warning says the nesting was
    flattened."""
    httpserver.expect_request("/deep").respond_with_data(
        _rss([("d1", "", _nested(100_000))]), content_type=RSS
    )
    feed = add_feed(poller.store, httpserver.url_for("/deep"), "Deep", full_text="never")
    outcome = poller.poll_one(feed)
    assert outcome.status == "ingested"
    [body] = _bodies(poller, feed.location)
    assert body.split("\n\n") == [f"{n}: {PROSE}" for n in ("First", "Second", "Third")]
    warning = find_feed(poller.store, feed.location).last_warning
    assert warning is not None and "nested deeper than libxml2's 256 levels" in warning


def test_deep_nesting_in_a_file_keeps_every_paragraph_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same in an HTML file (read in process): all text, and a log line."""
    doc = RawDocument(
        "folder",
        "/f",
        "f",
        "/f/deep.html",
        "/f/deep.html",
        "text/html",
        _page(_nested(100_000)).encode(),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    with caplog.at_level(logging.WARNING, logger="aggregator.sources.htmltext"):
        article = extract(doc)
    assert [p.split(":")[0] for p in article.paragraphs] == ["First", "Second", "Third"]
    [record] = caplog.records
    assert "location=/f/deep.html" in record.getMessage()
    assert "below depth 200 left out, their text kept" in record.getMessage()


def test_the_worker_reads_entries_and_the_writer_takes_their_paragraphs() -> None:
    """read_feed (what the parse pool runs) returns each entry with its paragraphs; an
    entry whose content changed afterwards is read again, not given stale text."""
    feed = read_feed(_rss([("r1", "", "<p>One.</p><p>Two.</p>")]), {}, "http://x/feed")
    [entry] = feed.entries
    assert isinstance(entry, ReadEntry)
    assert (entry.paragraphs, entry.html_warning) == (("One.", "Two."), None)
    [doc] = entry_documents(feed.entries, "http://x/feed", "x", datetime.now(UTC))
    assert doc.paragraphs == ("One.", "Two.")
    changed = replace(entry, content="<p>Three.</p>")
    [doc] = entry_documents([changed], "http://x/feed", "x", datetime.now(UTC))
    assert doc.paragraphs is None and extract(doc).paragraphs == ("Three.",)


# --- the scan ------------------------------------------------------------------------


def test_ordinary_html_passes_through_as_the_same_bytes() -> None:
    for content in (
        _page(" ".join(f"<p class='c' id='p{i}'>{PROSE}</p>" for i in range(500))).encode(),
        b"<p>a <b>b</b><br/>c<!-- <div> --><script>if (a<b) x='</div>'</script></p>",
        ("<div>" * 150 + "x" + "</div>" * 150).encode(),
        b"plain text, no markup",
    ):
        limited = limit_html(content)
        assert limited.content is content and limited.warning is None


def test_an_element_keeps_its_first_attributes() -> None:
    content = f"<p><a id='k' {_attributes(5_000)} href='/x'>link</a> after</p>".encode()
    limited = limit_html(content)
    tree = lxml.html.fragment_fromstring(limited.content)
    [link] = tree.findall("a")
    assert len(link.attrib) == MAX_ATTRIBUTES and link.get("id") == "k"
    assert tree.text_content() == "link after"
    assert limited.warning == (
        f"1 element(s) with more than {MAX_ATTRIBUTES} attributes (up to 5,002): "
        f"kept the first {MAX_ATTRIBUTES}"
    )


def test_a_document_keeps_at_most_its_total_of_attributes() -> None:
    """2 million attributes took a page worker to 1 GB: past MAX_TOTAL_ATTRIBUTES the
    elements keep none (their text stays)."""
    content = ("<div>" + f"<i {_attributes(50)}>x</i>" * 5_000 + "</div>").encode()
    limited = limit_html(content)
    tree = lxml.html.fragment_fromstring(limited.content)
    assert sum(len(e.attrib) for e in tree.iter()) == MAX_TOTAL_ATTRIBUTES
    assert tree.text_content() == "x" * 5_000
    assert limited.warning == (
        f"more than {MAX_TOTAL_ATTRIBUTES:,} attributes in all: 1,000 element(s) after "
        "those kept none"
    )


def test_too_many_tags_are_cut_with_a_warning() -> None:
    content = b"<b>x</b>" * (MAX_TAGS // 2 + 10)
    limited = limit_html(content)
    assert len(limited.content) == MAX_TAGS * 4
    assert limited.warning == f"more than {MAX_TAGS:,} tags: cut before byte {MAX_TAGS * 4:,}"


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("attributes on one element", b" a=x"),
        ("attributes without values", b" a"),
        ("nested elements", b"<div>"),
        ("unclosed quotes", b"<p a='"),
        ("unclosed comments", b"<!--"),
        ("unclosed tags", b"<a "),
        ("end tags", b"</div>"),
        ("raw text", b"<script>"),
    ],
)
def test_the_scan_is_linear_and_quick(name: str, unit: bytes) -> None:
    """Four times the input takes about four times as long (CPU, best of three rounds
    of each), and a megabyte takes well under a second."""

    def seconds(content: bytes) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.thread_time()
            limit_html(content, flatten=True)
            best = min(best, time.thread_time() - started)
        return best

    prefix = b"<p" if unit.startswith(b" ") else b""
    small = prefix + unit * (256 * 1024 // len(unit))
    large = prefix + unit * (1024 * 1024 // len(unit))
    small_s, large_s = seconds(small), seconds(large)
    assert large_s < 8 * small_s + 0.05, f"{name}: {small_s:.3f} s, then {large_s:.3f} s"
    assert large_s < 1.0


# --- the depth bound, against libxml2 ------------------------------------------------

# Elements with every kind of behaviour in libxml2's tree builder: closed by their own
# start tag, void, table parts, formatting, blocks, and html/head/body themselves.
_NAMES = (
    "div p li a b span td tr th table tbody thead tfoot ul ol option select form colgroup "
    "col dt dd h1 pre br img i font center blockquote nobr caption object embed applet map "
    "area button label fieldset legend dl menu dir address html head body frameset frame "
    "noscript template svg title script textarea"
).split()
_TEXT_NAMES = [n for n in _NAMES if n not in ("html", "head", "body", "frameset", "frame")]
_RAW = ("title", "script", "textarea")


def _tag_soup(names: list[str]) -> st.SearchStrategy[bytes]:
    token = st.one_of(
        st.sampled_from(names).map(lambda n: f"<{n}>"),
        st.sampled_from(names).map(lambda n: f"</{n}>"),
        st.sampled_from(names).map(lambda n: f"<{n.upper()} class='c'>"),
        st.sampled_from(names).map(lambda n: f"<{n}/>"),
        st.just("x"),
        st.just("<!-- <div> -->"),
    )
    unit = st.lists(token, min_size=1, max_size=40).map("".join)
    return st.tuples(unit, st.integers(1, 30)).map(lambda u: (u[0] * u[1]).encode())


def _tree_depth(content: bytes) -> tuple[int, bool]:
    """The depth of libxml2's tree of `content`, and whether it stopped at its limit."""
    parser = lxml.html.HTMLParser(encoding="utf-8")
    tree = lxml.html.document_fromstring(b"<br>" + content, parser=parser)
    depth = deepest = 0
    for event, _ in lxml.etree.iterwalk(tree, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest, any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_tag_soup(_NAMES))
def test_the_depth_bound_is_never_below_libxml2s_depth(content: bytes) -> None:
    """The scan's depth is an upper bound of the tree libxml2 builds (less the levels
    it may add itself): flattening below MAX_DEPTH by it is sure to keep libxml2 within
    its 256 levels."""
    depth, _ = _tree_depth(content)
    assert depth <= limit_html(content).depth + IMPLIED_LEVELS


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_tag_soup(_TEXT_NAMES).map(lambda soup: soup * 10))
def test_flattened_nesting_keeps_all_text_within_libxml2s_limit(content: bytes) -> None:
    """Flattened, the deepest soups stay under 256 levels with every text kept."""
    flat = limit_html(content, flatten=True)
    depth, stopped = _tree_depth(flat.content)
    assert not stopped and depth <= MAX_DEPTH + IMPLIED_LEVELS
    if not any(f"<{name}>".encode() in content.lower() for name in _RAW):
        tree = lxml.html.document_fromstring(b"<br>" + flat.content)
        assert tree.text_content().count("x") == content.count(b"x")


def test_libxml2_stopping_anyway_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a shape get past the bound, the text lost is never silent."""
    monkeypatch.setattr(htmltext, "limit_html", lambda content, flatten=False: _unlimited(content))
    paragraphs, warning = read_fragment(_nested(300).encode())
    assert paragraphs == [f"First: {PROSE}"]
    assert warning is not None
    assert warning.startswith("libxml2 stopped at its limit (Excessive depth in document: 256")
    assert warning.endswith("the text after that point was lost")


def _unlimited(content: bytes) -> Limited:
    return Limited(content, None, 10_000)


def test_a_deep_page_keeps_its_text() -> None:
    page = read_page(_page(_nested(5_000)).encode(), "https://x.example/deep")
    assert [p.split(":")[0] for p in page.paragraphs] == ["First", "Second", "Third"]
    assert page.warning is not None and "their text kept" in page.warning


# --- the pool's calls with a deadline ------------------------------------------------


def test_a_call_past_its_deadline_is_stopped_and_others_in_flight_run_again() -> None:
    """A call past its deadline raises WorkerError at the deadline (its worker killed);
    a call of another thread that was killed with it runs again and succeeds."""
    pool = ParsePool(workers=2)
    try:
        assert pool.call(pow, 2, 10, deadline=30) == 1024  # the pool is up
        innocent: list[object] = []
        thread = threading.Thread(
            target=lambda: innocent.append(pool.call(time.sleep, 1.5, deadline=30))
        )
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(WorkerError, match=r"took longer than 0\.5 s; stopped"):
            pool.call(time.sleep, 60, deadline=0.5)
        assert time.monotonic() - started < 2
        thread.join(30)
        assert innocent == [None], "run again in the new pool"
        assert pool.call(pow, 3, 3, deadline=30) == 27
    finally:
        pool.close()
    with pytest.raises(WorkerError, match="closed"):
        pool.call(pow, 2, 2, deadline=1)


def test_closing_the_pool_at_once_ends_its_workers() -> None:
    """close(wait=False), as the daemon does on shutdown: every worker ends."""
    pool = ParsePool(workers=2)
    pool.call(pow, 2, 2, deadline=30)
    assert pool._pool is not None
    processes = list(pool._pool._processes.values())
    pool.close(wait=False)
    for process in processes:
        process.join(5)
        assert not process.is_alive()
