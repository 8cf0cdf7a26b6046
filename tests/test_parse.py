"""Feed parsing: the formats, JSON Feed, entity-expansion refusal, clear errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError
from aggregator.parse import parse_feed

RSS20 = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link><ttl>30</ttl>
<item><guid>w-1</guid><link>https://wire.example/1</link><title>One</title>
<description>First &lt;b&gt;story&lt;/b&gt;</description>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item><guid>w-2</guid><link>https://wire.example/2</link><title>Two</title>
<description>Second</description></item>
</channel></rss>"""

RSS10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="https://r.example/"><title>R</title><link>https://r.example/</link>
<description>d</description></channel>
<item rdf:about="https://r.example/a"><title>A</title><link>https://r.example/a</link>
<description>Alpha</description></item></rdf:RDF>"""

RSS091 = b"""<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title>
<link>https://o.example/</link><description>d</description><language>en</language>
<item><title>Old one</title><link>https://o.example/1</link><description>x</description></item>
</channel></rss>"""

ATOM10 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title><id>urn:a</id>
<updated>2026-11-23T10:00:00Z</updated>
<entry><id>urn:a:1</id><title>Entry</title><link href="https://a.example/1"/>
<updated>2026-11-23T10:00:00Z</updated>
<content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry>
</feed>"""

ATOM03 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Old atom</title>
<modified>2026-11-23T10:00:00Z</modified>
<entry><id>tag:x,2026:1</id><title>Zero three</title>
<link rel="alternate" type="text/html" href="https://z.example/1"/>
<issued>2026-11-23T10:00:00Z</issued><modified>2026-11-23T10:00:00Z</modified>
<summary>Sum</summary></entry></feed>"""


@pytest.mark.parametrize(
    ("document", "guid", "link", "title"),
    [
        (RSS20, "w-1", "https://wire.example/1", "One"),
        (RSS10, "https://r.example/a", "https://r.example/a", "A"),
        (RSS091, "", "https://o.example/1", "Old one"),
        (ATOM10, "urn:a:1", "https://a.example/1", "Entry"),
        (ATOM03, "tag:x,2026:1", "https://z.example/1", "Zero three"),
    ],
)
def test_feed_formats_give_their_entries(document: bytes, guid: str, link: str, title: str) -> None:
    feed = parse_feed(document, {"content-type": "application/xml"}, "https://feed.example/")
    first = feed.entries[0]
    assert (first.guid, first.link, first.title) == (guid, link, title)
    assert feed.warning is None


def test_rss_ttl_and_untouched_html() -> None:
    feed = parse_feed(RSS20, {}, "https://wire.example/rss")
    assert feed.ttl_minutes == 30
    assert len(feed.entries) == 2
    assert feed.entries[0].summary == "First <b>story</b>"  # not sanitised here
    assert feed.entries[0].published == "Mon, 23 Nov 2026 10:00:00 GMT"
    assert feed.entries[0].published_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert feed.entries[1].published_at is None


def test_json_feed() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "home_page_url": "https://j.example/",
        "items": [
            {
                "id": "j1",
                "url": "https://j.example/1",
                "title": "Jay",
                "content_html": "<p>Hi</p>",
                "date_published": "2026-11-23T10:00:00Z",
            }
        ],
    }
    feed = parse_feed(json.dumps(document).encode(), {"content-type": "application/feed+json"}, "u")
    entry = feed.entries[0]
    assert (entry.guid, entry.link, entry.content, entry.published) == (
        "j1",
        "https://j.example/1",
        "<p>Hi</p>",
        "2026-11-23T10:00:00Z",
    )
    assert entry.published_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"version": "other", "items": []}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": []}', "no entries"),
    ],
)
def test_bad_json_feeds_are_clear_errors(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, {"content-type": "application/json"}, "https://j.example/feed")


def test_billion_laughs_is_refused_quickly() -> None:
    lol = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">'
        % (i, b"".join(b"&lol%d;" % (i - 1) if i > 1 else b"&lol;" for _ in range(10)))
        for i in range(1, 10)
    )
    document = (
        b'<?xml version="1.0"?><!DOCTYPE rss [' + lol + b']><rss version="2.0"><channel>'
        b"<title>&lol9;</title><item><title>x</title></item></channel></rss>"
    )
    started = time.monotonic()
    with pytest.raises(ParseError, match="refused: declares large or nested XML entities"):
        parse_feed(document, {}, "https://evil.example/feed")
    assert time.monotonic() - started < 1.0


def test_external_entity_is_refused() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>'
    )
    with pytest.raises(ParseError, match="parameter or external"):
        parse_feed(document, {}, "https://evil.example/feed")


def test_small_plain_entity_is_allowed() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY co "Company">]>'
        b'<rss version="2.0"><channel><title>t</title><item><guid>g</guid><title>&co; news</title>'
        b"</item></channel></rss>"
    )
    assert parse_feed(document, {}, "u").entries[0].guid == "g"


def test_html_page_is_a_clear_error() -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"
    with pytest.raises(ParseError, match="an HTML page, not a feed"):
        parse_feed(page, {"content-type": "text/html"}, "https://site.example/")


def test_malformed_feed_with_entries_is_a_warning() -> None:
    broken = RSS20.replace(b"</channel></rss>", b"<item><title>Three & four</title></item>")
    feed = parse_feed(broken, {}, "https://wire.example/rss")
    assert len(feed.entries) >= 2
    assert feed.warning is not None


def test_content_location_header_does_not_move_guids_or_links() -> None:
    feed = (
        b'<rss version="2.0"><channel><title>W</title>'
        b"<item><guid>abc</guid><title>A</title><description>x</description></item>"
        b"<item><link>/story</link><title>B</title><description>y</description></item>"
        b"</channel></rss>"
    )
    plain = parse_feed(feed, {}, "https://news.example/feed")
    moved = parse_feed(
        feed, {"content-location": "https://cdn.example.net/mirror/"}, "https://news.example/feed"
    )
    assert [(e.guid, e.link) for e in moved.entries] == [(e.guid, e.link) for e in plain.entries]
    assert [(e.guid, e.link) for e in plain.entries] == [("abc", "abc"), ("", "/story")]
