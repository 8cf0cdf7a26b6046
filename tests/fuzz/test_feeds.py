"""Fuzz feed documents (XML and JSON Feed, and arbitrary bytes) through `parse_feed`,
`entry_documents` and `extract`."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from .checks import check_feed
from .harness import fuzz
from .strategies_feeds import ENCODING_NAME, FEED_URLS, RSS_TTL, _json_item, json_feeds, xml_feeds


@fuzz(200)
@given(xml_feeds(), FEED_URLS)
@example((RSS_TTL.format("\u00b2").encode(), {}), "https://feed.example/rss.xml")
@example(
    (
        b'<rss version="2.0"><channel><item><title>x</title>'
        b"<pubDate>Mon, 01 Jan 0001 00:00:00 GMT</pubDate></item></channel></rss>",
        {},
    ),
    "https://feed.example/rss.xml",
)
@example(
    (
        b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title a="x"/>'
        b'<title a="x">&#99999999;</title></feed>',
        {"content-language": "en"},
    ),
    "https://feed.example/rss.xml",
)
@example(
    (
        b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry>'
        b'<updated a="x">Mon, 01 Jan 0001 00:00:00 GMT</updated></entry></feed>',
        {},
    ),
    "https://feed.example/rss.xml",
)
@example((ENCODING_NAME % b"\x80", {}), "https://feed.example/rss.xml")
@example((ENCODING_NAME % b"\x00", {}), "https://feed.example/rss.xml")
@example(
    (
        '<rss version="2.0" xmlns:a="urn:x\u2028y"><channel><item><a:b>x</a:b><title>t</title>'
        "</item></channel></rss>".encode(),
        {},
    ),
    "https://feed.example/rss.xml",
)
def test_xml_feeds(document: tuple[bytes, dict[str, str]], url: str) -> None:
    content, headers = document
    check_feed(content, headers, url)


@fuzz(200)
@given(json_feeds(), FEED_URLS)
@example((b'{"a": ' + b"1" * 5000 + b"}", {}), "https://feed.example/rss.xml")
@example((b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}), "https://feed.example/rss.xml")
@example(
    (_json_item(date_published="9999-12-31T23:59:59-01:00"), {}), "https://feed.example/rss.xml"
)
@example((_json_item(content_text="a \udc00 b"), {}), "https://feed.example/rss.xml")
def test_json_feeds(document: tuple[bytes, dict[str, str]], url: str) -> None:
    content, headers = document
    check_feed(content, headers, url)


@fuzz(150)
@given(st.binary(max_size=2000), st.sampled_from(["", "application/json", "text/xml"]), FEED_URLS)
def test_feed_bytes(content: bytes, media: str, url: str) -> None:
    check_feed(content, {"content-type": media} if media else {}, url)
