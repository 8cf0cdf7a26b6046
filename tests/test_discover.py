"""`sources add` checks before it subscribes: what a document is (discover.py), the
feeds an HTML page links, and the one-line refusals (feedcheck.py), against a real
loopback server. Every refusal is checked in the database too: nothing was added."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config, FeedsConfig
from aggregator.errors import FeedCheckError, ParseError
from aggregator.ingest.feedcheck import check_feed
from aggregator.model import FeedLink
from aggregator.sources.discover import (
    FeedDocument,
    Found,
    LinkingPage,
    feed_links,
    inspect_document,
)
from tests.clirun import run_cli

RSS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Wire</title>'
    "<item><guid>w1</guid><title>Talks resume</title>"
    "<description>Negotiators met again on Monday.</description></item>"
    "<item><guid>w2</guid><title>Talks stall</title>"
    "<description>Negotiators left on Tuesday.</description></item></channel></rss>"
)
ATOM = (
    '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Desk</title>'
    "<id>urn:desk</id><updated>2026-11-01T00:00:00Z</updated>"
    "<entry><id>urn:a1</id><title>One</title><updated>2026-11-01T00:00:00Z</updated>"
    "<summary>First.</summary></entry></feed>"
)
JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON Desk",
        "items": [
            {"id": "j1", "url": "https://example.org/j1", "content_text": "One."},
            {"id": "j2", "url": "https://example.org/j2", "content_text": "Two."},
            {"id": "j3", "url": "https://example.org/j3", "content_text": "Three."},
        ],
    }
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _page(*links: str, base: str = "") -> str:
    head = "".join(links) + (f'<base href="{base}">' if base else "")
    return (
        f"<!DOCTYPE html><html><head><title>Blog</title>{head}</head>"
        "<body><p>Welcome to the blog.</p></body></html>"
    )


def _link(href: str, media_type: str = "application/rss+xml", title: str = "") -> str:
    return f'<link rel="alternate" type="{media_type}" title="{title}" href="{href}">'


# -- what a document is (in process: the worker's function itself) ------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (RSS, "application/rss+xml", FeedDocument("RSS 2.0", "Wire", 2, None)),
        (  # mislabelled: read as a feed all the same, with feedparser's warning
            RSS,
            "text/html",
            FeedDocument(
                "RSS 2.0",
                "Wire",
                2,
                "NonXMLContentType: text/html; charset=utf-8 is not an XML media type",
            ),
        ),
        (ATOM, "application/atom+xml", FeedDocument("Atom 1.0", "Atom Desk", 1, None)),
        (JSON_FEED, "application/feed+json", FeedDocument("JSON Feed 1.1", "JSON Desk", 3, None)),
        (
            JSON_FEED,
            "application/octet-stream",
            FeedDocument("JSON Feed 1.1", "JSON Desk", 3, None),
        ),
        (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>R</title></channel>'
            '<item rdf:about="https://example.org/1"><title>T</title>'
            "<link>https://example.org/1</link></item></rdf:RDF>",
            "application/xml",
            FeedDocument("RSS 1.0", "R", 1, None),
        ),
        (
            '<rss version="2.0"><channel><title>New blog</title></channel></rss>',
            "application/rss+xml",
            FeedDocument("RSS 2.0", "", 0, None),  # no entries yet: still a feed
        ),
    ],
)
def test_a_feed_is_named_by_its_format(body: str, content_type: str, expected: Found) -> None:
    found = inspect_document(body.encode(), {"content-type": content_type}, "http://x/f", 5000)
    assert found == expected


def test_a_page_is_read_for_links_never_as_a_feed() -> None:
    page = _page(_link("/feed.xml", title="Blog feed"))
    found = inspect_document(page.encode(), {"content-type": "text/html"}, "http://x/a/", 5000)
    assert found == LinkingPage((FeedLink("http://x/feed.xml", "RSS", "Blog feed"),), None)


def test_links_resolve_against_the_base_and_skip_what_is_no_feed() -> None:
    page = _page(
        _link("feeds/main.xml", title="Main"),
        _link("//cdn.example.org/atom", "application/atom+xml"),
        _link("feeds/main.xml", title="Main again"),  # the same URL once
        _link("/comments.json", "application/feed+json; charset=utf-8", "Comments"),
        _link("/wp-json/wp/v2/posts/7", "application/json"),  # WordPress's REST API
        _link("javascript:alert(1)"),
        _link("http://[::1/broken"),
        '<link rel="stylesheet" type="text/css" href="/style.css">',
        '<link rel="alternate" hreflang="fr" href="/fr/">',
        '<link rel="ALTERNATE home" type="APPLICATION/RSS+XML" href="/upper.rss">',
        base="https://site.example/blog/",
    )
    links = feed_links(page.encode(), "https://site.example/index.html").links
    assert links == (
        FeedLink("https://site.example/blog/feeds/main.xml", "RSS", "Main"),
        FeedLink("https://cdn.example.org/atom", "Atom", ""),
        FeedLink("https://site.example/comments.json", "JSON Feed", "Comments"),
        FeedLink("https://site.example/upper.rss", "RSS", ""),
    )


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (_page(_link("/f", title="Café » Feed")).encode()[:-1] + b"\xc3", ""),  # cut mid-character
        (_page(_link("/f", title="Café » Feed")).encode("cp1252"), "text/html; charset=cp1252"),
        (
            _page('<meta charset="iso-8859-1">', _link("/f", title="Café » Feed")).encode(
                "latin-1"
            ),
            "text/html",
        ),
    ],
)
def test_link_titles_are_read_in_the_pages_encoding(content: bytes, content_type: str) -> None:
    page = feed_links(content, "http://x/", {"content-type": content_type})
    assert page.links == (FeedLink("http://x/f", "RSS", "Café » Feed"),)


def test_only_links_in_the_head_count() -> None:
    page = "<html><head><title>T</title></head><body>" + _link("/in-body.xml") + "</body></html>"
    assert feed_links(page.encode(), "http://x/").links == ()


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (PNG, "image/png", "a PNG image (image/png, 1,032 bytes), not a feed"),
        (b"\x00\x01\x02binary" * 50, "", "a binary file (450 bytes), not a feed"),
        (
            b"hello, world\n",
            "text/plain",
            "neither a feed (RSS, Atom, JSON Feed) nor an HTML page (text/plain)",
        ),
        (b"<!ENTITY x 'y'><rss/>", "", "not a feed: refused: declares XML entities"),
        (b'{"error": "nope"}', "application/json", "not a feed: not a JSON Feed"),
    ],
)
def test_what_is_neither_feed_nor_page_is_refused_in_one_line(
    body: bytes, content_type: str, reason: str
) -> None:
    with pytest.raises(ParseError) as caught:
        inspect_document(body, {"content-type": content_type}, "http://x/f", 5000)
    assert caught.value.reason.startswith(reason)
    assert "\n" not in caught.value.reason


# -- sources add against a real server -----------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet_test_server() -> Iterator[None]:
    """The test server's request log (werkzeug, at INFO) would reach the CLI's stderr."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def config_file(httpserver: HTTPServer, tmp_path: Path) -> Path:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    return config


def _add(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--config", config, "sources", "add", *args)
    return result.returncode, result.stdout, result.stderr


def _subscribed(config: Path) -> list[tuple[str, str]]:
    """(location, name) of every source in the database next to `config`."""
    database = config.parent / "news.db"
    if not database.exists():
        return []
    with closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT location, name FROM sources ORDER BY id").fetchall()


def _refused(config: Path, url: str, *args: str) -> str:
    """`sources add URL` fails with one line on stderr and adds nothing; that line."""
    code, out, err = _add(config, url, *args)
    assert code == 1, (out, err)
    assert err.count("\n") == 1, err
    assert err.startswith(f"aggregator: error: cannot subscribe to {url}: "), err
    assert _subscribed(config) == []
    return err.strip()


def test_a_feed_url_is_checked_and_described_in_one_line(
    httpserver: HTTPServer, config_file: Path
) -> None:
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    code, out, err = _add(config_file, httpserver.url_for("/rss"))
    assert (code, err) == (0, "")
    assert out == 'added feed 1: RSS 2.0, 2 entries, "Wire"\n'
    assert _subscribed(config_file) == [(httpserver.url_for("/rss"), "Wire")], "named by its title"


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (ATOM, "application/atom+xml", 'Atom 1.0, 1 entry, "Atom Desk"'),
        (JSON_FEED, "application/feed+json", 'JSON Feed 1.1, 3 entries, "JSON Desk"'),
    ],
)
def test_atom_and_json_feed_are_detected(
    httpserver: HTTPServer, config_file: Path, body: str, content_type: str, said: str
) -> None:
    httpserver.expect_request("/feed").respond_with_data(body, content_type=content_type)
    code, out, _ = _add(config_file, httpserver.url_for("/feed"), "--name", "Desk")
    assert (code, out) == (0, f"added feed 1: {said}\n")
    assert _subscribed(config_file) == [(httpserver.url_for("/feed"), "Desk")]


def test_a_page_linking_one_feed_subscribes_that_feed(
    httpserver: HTTPServer, config_file: Path
) -> None:
    """The href is relative: resolved against the page's URL after its redirect."""
    httpserver.expect_request("/blog").respond_with_data(
        "", status=301, headers={"Location": "/blog/"}
    )
    httpserver.expect_request("/blog/").respond_with_data(
        _page(_link("feeds/main.xml", title="Blog posts")), content_type="text/html"
    )
    httpserver.expect_request("/blog/feeds/main.xml").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    feed = httpserver.url_for("/blog/feeds/main.xml")
    code, out, err = _add(config_file, httpserver.url_for("/blog"))
    assert (code, err) == (0, "")
    assert out == f'found feed {feed} on the page\nadded feed 1: RSS 2.0, 2 entries, "Wire"\n'
    assert _subscribed(config_file) == [(feed, "Wire")], "the feed, not the page"


def test_a_page_linking_two_feeds_lists_them_and_adds_none(
    httpserver: HTTPServer, config_file: Path
) -> None:
    httpserver.expect_request("/").respond_with_data(
        _page(
            _link("/feed/", title="Blog » Feed"),
            _link("/comments/feed.atom", "application/atom+xml", "Blog » Comments"),
        ),
        content_type="text/html; charset=utf-8",
    )
    httpserver.expect_request("/comments/feed.atom").respond_with_data(
        ATOM, content_type="application/atom+xml"
    )
    page = httpserver.url_for("/")
    code, out, err = _add(config_file, page)
    assert code == 1
    assert out == (
        f"{page} links 2 feeds:\n"
        f'  1. RSS: "Blog » Feed" {httpserver.url_for("/feed/")}\n'
        f'  2. Atom: "Blog » Comments" {httpserver.url_for("/comments/feed.atom")}\n'
    )
    assert err == (
        f"aggregator: error: cannot subscribe to {page}: the page links 2 feeds, none added; "
        "run again with the URL of the one you want, or add --pick N\n"
    )
    assert _subscribed(config_file) == []

    code, out, _ = _add(config_file, page, "--pick", "2")
    assert code == 0
    assert out.endswith('added feed 1: Atom 1.0, 1 entry, "Atom Desk"\n')
    assert _subscribed(config_file) == [(httpserver.url_for("/comments/feed.atom"), "Atom Desk")]
    code, _, err = _add(config_file, page, "--pick", "3")
    assert (code, err.count("\n")) == (1, 1)
    assert err.endswith(": --pick 3: the page links 2 feeds\n")


def test_a_page_linking_no_feed_is_refused(httpserver: HTTPServer, config_file: Path) -> None:
    httpserver.expect_request("/about").respond_with_data(_page(), content_type="text/html")
    message = _refused(config_file, httpserver.url_for("/about"))
    assert message.endswith(": an HTML page that links no feed")


def test_a_linked_feed_that_fails_is_named_with_the_page(
    httpserver: HTTPServer, config_file: Path
) -> None:
    httpserver.expect_request("/").respond_with_data(
        _page(_link("/gone.xml")), content_type="text/html"
    )
    httpserver.expect_request("/gone.xml").respond_with_data("", status=404)
    message = _refused(config_file, httpserver.url_for("/"))
    assert message.endswith(f"it links {httpserver.url_for('/gone.xml')}, but HTTP 404 Not Found")


def test_an_http_error_is_refused(httpserver: HTTPServer, config_file: Path) -> None:
    httpserver.expect_request("/missing").respond_with_data("not here", status=404)
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    assert _refused(config_file, httpserver.url_for("/missing")).endswith(": HTTP 404 Not Found")
    assert _refused(config_file, httpserver.url_for("/broken")).endswith(
        ": HTTP 500 Internal Server Error"
    )


def test_a_binary_file_is_refused(httpserver: HTTPServer, config_file: Path) -> None:
    httpserver.expect_request("/logo.png").respond_with_data(PNG, content_type="image/png")
    message = _refused(config_file, httpserver.url_for("/logo.png"))
    assert message.endswith(": a PNG image (image/png, 1,032 bytes), not a feed")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _allowing(tmp_path: Path, entry: str, extra: str = "") -> Path:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["{entry}"]\n{extra}', encoding="utf-8"
    )
    return config


def test_a_closed_port_is_refused(tmp_path: Path, closed_port: int) -> None:
    config = _allowing(tmp_path, f"127.0.0.1:{closed_port}")
    message = _refused(config, f"http://127.0.0.1:{closed_port}/feed.xml")
    assert "cannot connect" in message and "refused" in message.lower()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock.getsockname()[1]


def test_a_server_that_never_answers_times_out(tmp_path: Path, silent_port: int) -> None:
    config = _allowing(tmp_path, f"127.0.0.1:{silent_port}", "deadline_seconds = 0.5\n")
    message = _refused(config, f"http://127.0.0.1:{silent_port}/feed.xml")
    assert message.endswith(": timed out after 0.5 s")


def test_a_loopback_address_is_refused_naming_the_key_that_allows_it(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    config = tmp_path / "aggregator.toml"
    config.write_text('database = "news.db"\n', encoding="utf-8")
    port = httpserver.port
    message = _refused(config, f"http://127.0.0.1:{port}/rss")
    assert message.endswith(
        f'127.0.0.1 is a loopback address; allow it with feeds.allow = ["127.0.0.1:{port}"]'
    )
    by_name = _refused(config, f"http://localhost:{port}/rss")
    assert "localhost resolves to a loopback address" in by_name
    assert by_name.endswith(f'allow it with feeds.allow = ["localhost:{port}"]')
    assert len(httpserver.log) == 0, "nothing was fetched"


def test_no_check_adds_without_fetching(httpserver: HTTPServer, config_file: Path) -> None:
    url = httpserver.url_for("/not-yet")
    code, out, _ = _add(config_file, url, "--no-check", "--name", "Later")
    assert (code, out) == (0, f"added feed 1: {url} (not checked)\n")
    assert _subscribed(config_file) == [(url, "Later")]
    assert len(httpserver.log) == 0


def test_adding_twice_points_at_sources_set_before_fetching(
    httpserver: HTTPServer, config_file: Path
) -> None:
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    url = httpserver.url_for("/rss")
    assert _add(config_file, url)[0] == 0
    fetched = len(httpserver.log)
    code, _, err = _add(config_file, url, "--full-text", "never")
    assert code == 1
    assert err == (
        f"aggregator: error: feed {url}: already subscribed as source 1; "
        "change it with `aggregator sources set 1`\n"
    )
    assert len(httpserver.log) == fetched


def test_the_parse_runs_in_a_worker_under_a_deadline(
    httpserver: HTTPServer, config: Config
) -> None:
    """A deadline shorter than a worker's start: the check is stopped, not run in process."""
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    config = replace(config, feeds=FeedsConfig(allow=(f"localhost:{httpserver.port}",)))
    with pytest.raises(FeedCheckError, match=r"reading it took longer than 0\.001 s; stopped"):
        check_feed(httpserver.url_for("/rss"), config, deadline=0.001)
    assert check_feed(httpserver.url_for("/rss"), config).entries == 2
