"""The fast feed path (issue 15, item 5): differential tests against feedparser.

The oracle is `parse_feed` with the fast path switched off, i.e. feedparser as
before. Every document is parsed both ways; where the fast path reads one, the
`ParsedFeed`s must be equal (every field of every entry, the warning too), and
where it declines, `parse_feed` is the feedparser path by construction. Errors
must be the same `ParseError`. The documents: feedparser's own test corpus
(acceptance is reported and has a floor), the benchmark's generated feeds and
generated real-world-shaped RSS 2.0 and Atom 1.0 feeds (which must be read by the
fast path, not only agree), cases that must be declined, and hostile inputs.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from unittest.mock import patch
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.sources import fastfeed
from aggregator.sources.parse import ParsedFeed, parse_feed
from tests.fuzz.strategies import DATES
from tests.test_feedparser_corpus import _HINT, CORPUS, FOLDERS

URL = "https://feed.example/rss.xml"
Outcome = ParsedFeed | tuple[str, str]
_REAL = fastfeed.parse_well_formed


def _outcome(content: bytes, headers: dict[str, str], url: str = URL) -> Outcome:
    try:
        return parse_feed(content, headers, url)
    except ParseError as e:
        return ("ParseError", str(e))


def both(content: bytes, headers: dict[str, str]) -> tuple[Outcome, Outcome, str | None]:
    """`parse_feed` with the fast path, without it, and why the fast path declined (None:
    it read the document; "" when `parse_feed` stopped before reaching it)."""
    why: list[str | None] = []

    def spy(document: bytes, forwarded: dict[str, str], warning: str | None) -> Any:
        result = _REAL(document, forwarded, warning)
        why.append(None if result is not None else fastfeed.explain(document, forwarded))
        return result

    with patch.object(fastfeed, "parse_well_formed", spy):
        fast = _outcome(content, headers)
    with patch.object(fastfeed, "parse_well_formed", lambda *args: None):
        slow = _outcome(content, headers)
    return fast, slow, why[0] if why else ""


def assert_same(content: bytes, headers: dict[str, str]) -> str | None:
    fast, slow, why = both(content, headers)
    assert fast == slow, f"fast path differs from feedparser (declined: {why!r})"
    return why


def test_feedparser_internals_are_where_the_fast_path_expects_them() -> None:
    assert fastfeed.AVAILABLE


# -- feedparser's own corpus --------------------------------------------------------------


def _corpus_files() -> list[tuple[str, bytes, dict[str, str]]]:
    missing = [f for f in FOLDERS if not any((CORPUS / f).rglob("*.xml"))]
    if missing:
        reason = f"feedparser test corpus missing from {CORPUS}; `make test` fetches it"
        if os.environ.get("AGGREGATOR_REQUIRE_CORPUS") == "1":
            pytest.fail(reason + " (AGGREGATOR_REQUIRE_CORPUS=1)")
        pytest.skip(reason)
    files = []
    for folder in FOLDERS:
        for path in sorted((CORPUS / folder).rglob("*.xml")):
            body = path.read_bytes()
            headers = {"Content-Type": "application/xml"}
            for key, value in _HINT.findall(body):
                headers[key.decode().strip()] = value.decode().strip()
            files.append((path.relative_to(CORPUS).as_posix(), body, headers))
    return files


def test_corpus_every_file_the_fast_path_reads_equals_feedparser() -> None:
    files = _corpus_files()
    accepted: list[str] = []
    reasons: Counter[str] = Counter()
    for name, body, headers in files:
        fast, slow, why = both(body, headers)
        assert fast == slow, f"{name}: the fast path differs from feedparser"
        if why is None:
            accepted.append(name)
        else:
            kind = re.sub(r"<[^>]*>", "<...>", why.split(": ")[0])  # without names and details
            reasons[kind or "refused or undecodable before the fast path"] += 1
    print(
        f"fast path: {len(accepted)} of {len(files)} corpus files read "
        f"({dict(Counter(n.split('/')[0] for n in accepted))}); declined: "
        + "; ".join(f"{count} {kind}" for kind, count in reasons.most_common())
    )
    assert len(accepted) >= 560, f"only {len(accepted)} corpus files read by the fast path"


# -- the benchmark's feeds, and real-world-shaped ones ----------------------------------


def test_the_benchmark_feeds_are_read_by_the_fast_path_and_equal() -> None:
    from bench.feeds import build_feeds

    for doc in build_feeds(8, 20).docs:
        assert assert_same(doc.body, {"Content-Type": "application/rss+xml"}) is None


XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\ufffe\uffff",
    min_codepoint=0x9,
).filter(lambda c: c >= " " or c in "\t\n\r")
TEXTS = st.one_of(
    st.text(XML_CHARS, max_size=40),
    st.sampled_from(
        [
            "",
            "  padded  ",
            "AT&T and Procter & Gamble",
            "That\u2019s it",
            "Caf\u00c3\u00a9 au lait",  # UTF-8 read as Latin-1: feedparser repairs it
            "smart \x93quotes\x94 and \x80",  # C1 controls: feedparser maps them
            "<b>bold</b> &amp; <i>x</i>",
            "&#8217; escaped twice",
            "&nbsp;&copy;",
            "x < y > z",
            "]]>",
            "\U0001f600 \u202e \u00e9\u00e8",
            "/relative/path?a=1&b=2",
            "http:///three.example/slashes",
            "https://news.example/a?utm_source=rss&id=1",
        ]
    ),
)
ZONES = ["GMT", "UT", "Z", "EST", "PDT", "+0000", "-0500", "+0530", "+2400", "A", "bogus"]
RFC822 = st.builds(
    lambda d, z, s: f"{d} {z}" if s else f"{d}{z}",
    st.sampled_from(["Mon, 23 Nov 2026 10:00:00", "23 Nov 2026 10:00", "Tue, 1 Dec 26 7:05:09"]),
    st.sampled_from(ZONES),
    st.booleans(),
)
ISO = st.sampled_from(
    [
        "2026-11-23T10:00:00Z",
        "2026-11-23T10:00:00+01:00",
        "2026-11-23T10:00:00.5-08:00",
        "2026-11-23 10:00:00",
        "2026-11-23",
    ]
)
DATE_TEXTS = st.one_of(RFC822, ISO, st.sampled_from([*DATES, "", " "]))


@st.composite
def text_node(draw: st.DrawFn, text: str | None = None) -> str:
    """Element content: escaped, as character references, or in CDATA."""
    value = draw(TEXTS) if text is None else text
    how = draw(st.sampled_from(["escaped", "escaped", "cdata", "charrefs"]))
    if how == "cdata" and "]]>" not in value:
        return f"<![CDATA[{value}]]>"
    if how == "charrefs":
        return "".join(f"&#{ord(c)};" if ord(c) > 127 or c in "<&>" else c for c in value)
    return escape(value)


NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "media": "http://search.yahoo.com/mrss/",
    "atom": "http://www.w3.org/2005/Atom",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
    "wfw": "http://wellformedweb.org/commentAPI/",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "yt": "http://www.youtube.com/xml/schemas/2015",  # unknown to feedparser
}
DECLARATIONS = "".join(f" xmlns:{p}={quoteattr(u)}" for p, u in NAMESPACES.items())


@st.composite
def link_element(draw: st.DrawFn, atom: bool) -> str:
    href = quoteattr(draw(st.sampled_from(["https://news.example/a?x=1&y=2", "/rel", ""])))
    rel = draw(st.sampled_from(["", ' rel="alternate"', ' rel="self"', ' rel="enclosure"']))
    kind = draw(st.sampled_from(["", ' type="text/html"', ' type="application/rss+xml"']))
    if atom:
        return f"<link{rel}{kind} href={href}/>"
    if draw(st.booleans()):
        return f"<atom:link{rel}{kind} href={href}/>"
    return f"<link>{draw(text_node())}</link>"


@st.composite
def rss_item(draw: st.DrawFn) -> str:
    title = draw(TEXTS)
    parts = [f"<title>{draw(text_node(title))}</title>"]
    permalink = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"']))
    parts.append(f"<guid{permalink}>{draw(text_node())}</guid>")
    parts += draw(st.lists(link_element(False), max_size=2))
    parts.append(f"<description>{draw(text_node())}</description>")
    parts.append(f"<content:encoded>{draw(text_node())}</content:encoded>")
    parts.append(f"<pubDate>{escape(draw(DATE_TEXTS))}</pubDate>")
    parts.append(f"<dc:date>{escape(draw(DATE_TEXTS))}</dc:date>")
    parts += [
        f"<dc:creator>{draw(text_node())}</dc:creator>",
        f"<category>{draw(text_node())}</category>",
        '<enclosure url="https://cdn.example/a.mp3" length="1" type="audio/mpeg"/>',
        "<comments>https://news.example/c</comments><slash:comments>3</slash:comments>",
        "<wfw:commentRss>https://news.example/c/feed</wfw:commentRss>",
        '<media:content url="https://cdn.example/i.jpg" medium="image">'
        '<media:thumbnail url="https://cdn.example/t.jpg"/></media:content>',
        f"<yt:videoId>{draw(text_node())}</yt:videoId>",
    ]
    chosen = draw(st.lists(st.sampled_from(parts), unique=True, max_size=len(parts)))
    if parts[0] in chosen and title.strip():  # feedparser prefers the item's own title
        media_title = f"<media:title>{draw(text_node())}</media:title></media:content>"
        chosen = [p.replace("</media:content>", media_title) for p in chosen]
    return "<item>" + "".join(chosen) + "</item>"


@st.composite
def rss_feeds(draw: st.DrawFn) -> bytes:
    channel = [
        f"<title>{draw(text_node())}</title>",
        f"<link>{draw(text_node())}</link>",
        f"<description>{draw(text_node())}</description>",
        f"<ttl>{draw(st.sampled_from(['60', ' 15 ', 'x', '', '9' * 12]))}</ttl>",
        "<language>en-us</language><generator>gen</generator>",
        f"<lastBuildDate>{escape(draw(DATE_TEXTS))}</lastBuildDate>",
        draw(link_element(False)),
        "<image><url>https://news.example/i.png</url><title>Logo</title>"
        "<link>https://news.example/</link><width>88</width></image>",
        "<sy:updatePeriod>hourly</sy:updatePeriod>",
    ]
    head = draw(st.lists(st.sampled_from(channel), unique=True))
    items = draw(st.lists(rss_item(), min_size=1, max_size=4))
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"{DECLARATIONS}><channel>'
        + "".join(head + items)
        + "</channel></rss>"
    ).encode()


@st.composite
def atom_entry(draw: st.DrawFn) -> str:
    kinds = st.sampled_from(["", ' type="text"', ' type="html"'])
    parts = [
        f"<title{draw(kinds)}>{draw(text_node())}</title>",
        f"<id>{draw(text_node())}</id>",
        *draw(st.lists(link_element(True), max_size=3)),
        f"<summary{draw(kinds)}>{draw(text_node())}</summary>",
        f"<content{draw(kinds)}>{draw(text_node())}</content>",
        f"<published>{escape(draw(DATE_TEXTS))}</published>",
        f"<updated>{escape(draw(DATE_TEXTS))}</updated>",
        f"<author><name>{draw(text_node())}</name><uri>https://a.example/</uri></author>",
        '<category term="world" scheme="https://news.example/s"/>',
        f"<dc:subject>{draw(text_node())}</dc:subject>",
    ]
    chosen = draw(st.lists(st.sampled_from(parts), unique=True, max_size=len(parts)))
    return "<entry>" + "".join(chosen) + "</entry>"


@st.composite
def atom_feeds(draw: st.DrawFn) -> bytes:
    head = [
        f"<title>{draw(text_node())}</title>",
        f"<id>{draw(text_node())}</id>",
        draw(link_element(True)),
        f"<updated>{escape(draw(DATE_TEXTS))}</updated>",
        f"<subtitle>{draw(text_node())}</subtitle>",
        "<author><name>Desk</name><email>d@news.example</email></author>",
        '<generator uri="https://gen.example/" version="1">gen</generator>',
    ]
    chosen = draw(st.lists(st.sampled_from(head), unique=True))
    entries = draw(st.lists(atom_entry(), min_size=1, max_size=4))
    lang = draw(st.sampled_from(["", ' xml:lang="en"']))
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"'
        f' xmlns:dc="http://purl.org/dc/elements/1.1/"{lang}>'
        + "".join(chosen + entries)
        + "</feed>"
    ).encode()


CONTENT_TYPES = st.sampled_from(
    [
        {"Content-Type": "application/rss+xml; charset=utf-8"},
        {"Content-Type": "application/atom+xml"},
        {"Content-Type": "text/xml"},
        {"Content-Type": "application/xml"},
        {"Content-Type": "text/html; charset=UTF-8"},  # feedparser warns: not XML
        {"Content-Type": "Application/XML"},  # feedparser compares case-sensitively
        {"Content-Type": "application/octet-stream"},
        {"Content-Language": "en"},  # no Content-Type: feedparser warns
        {},
    ]
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-16", "windows-1252", "iso-8859-1"])


def _encoded(document: bytes, encoding: str) -> bytes:
    """The document in another encoding, declared (characters it lacks as references)."""
    text = document.decode("utf-8").replace('encoding="utf-8"', f'encoding="{encoding}"', 1)
    return text.encode(encoding, "xmlcharrefreplace")


@given(st.one_of(rss_feeds(), atom_feeds()), CONTENT_TYPES, ENCODINGS)
def test_generated_feeds_are_read_by_the_fast_path_and_equal(
    document: bytes, headers: dict[str, str], encoding: str
) -> None:
    assert assert_same(_encoded(document, encoding), headers) is None


REAL_WORLD = [
    # WordPress-like RSS: dc:, content:encoded in CDATA, atom:link, slash:, wfw:, entities.
    """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
    xmlns:content="http://purl.org/rss/1.0/modules/content/"
    xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
    xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>
    <title>A Blog &#8211; News</title><atom:link href="https://blog.example/feed/" rel="self"
    type="application/rss+xml" /><link>https://blog.example</link><description>News</description>
    <lastBuildDate>Tue, 24 Nov 2026 08:12:03 +0000</lastBuildDate><language>en-US</language>
    <sy:updatePeriod>hourly</sy:updatePeriod><generator>https://wordpress.org/?v=6.4</generator>
    <item><title>It&#8217;s a &#8220;test&#8221; &amp; more</title>
    <link>https://blog.example/2026/11/24/test/</link>
    <comments>https://blog.example/2026/11/24/test/#respond</comments>
    <dc:creator><![CDATA[Jane Doe]]></dc:creator><pubDate>Tue, 24 Nov 2026 08:12:03 +0000</pubDate>
    <category><![CDATA[World]]></category><guid isPermaLink="false">https://blog.example/?p=123</guid>
    <description><![CDATA[<p>The summary [&#8230;]</p>]]></description>
    <content:encoded><![CDATA[<p>Body &amp; <a href="/x">link</a></p>]]></content:encoded>
    <wfw:commentRss>https://blog.example/2026/11/24/test/feed/</wfw:commentRss>
    <slash:comments>0</slash:comments></item></channel></rss>""",
    # A news site: media:content with media:title and thumbnails, dates in other zones.
    """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"
    xmlns:media="http://search.yahoo.com/mrss/" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <channel><title>World</title><link>https://news.example/world</link><ttl>15</ttl>
    <image><url>https://news.example/logo.png</url><title>World</title>
    <link>https://news.example/world</link></image>
    <item><title>Talks resume in Brussels</title><link>https://news.example/a?id=1&amp;src=rss</link>
    <guid>https://news.example/a/1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 EST</pubDate>
    <description>Officials said &lt;b&gt;talks&lt;/b&gt; would resume.</description>
    <media:content url="https://cdn.example/1.jpg" medium="image" width="1024">
    <media:title type="plain">Photo</media:title><media:credit>AP</media:credit>
    <media:thumbnail url="https://cdn.example/1t.jpg"/></media:content></item>
    <item><title>Second</title><guid isPermaLink="true">https://news.example/a/2</guid>
    <dc:date>2026-11-23T09:00:00+05:30</dc:date></item>
    <item><title>Third</title><guid>/relative/3</guid><pubDate>23 Nov 2026 07:00 -0800</pubDate>
    </item></channel></rss>""",
    # Atom 1.0 (Blogger/GitHub-like): html titles and content, several links, xml:lang.
    """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"
    xml:lang="en-US"><id>tag:news.example,2026:feed</id><title type="html">A &amp;amp; B</title>
    <link rel="self" href="https://news.example/atom"/><link href="https://news.example/"/>
    <updated>2026-11-24T10:00:00Z</updated><author><name>Desk</name></author>
    <entry><id>tag:news.example,2026:1</id><title type="html">&lt;em&gt;Big&lt;/em&gt; news</title>
    <link rel="alternate" type="text/html" href="https://news.example/1"/>
    <link rel="replies" type="application/atom+xml" href="https://news.example/1/c"/>
    <published>2026-11-24T09:00:00-05:00</published><updated>2026-11-24T10:00:00.25Z</updated>
    <summary>Plain summary &lt;not markup&gt;</summary>
    <content type="html">&lt;p&gt;Body &amp;amp; more&lt;/p&gt;</content></entry>
    <entry><id>https://news.example/2</id><title>Only an id</title>
    <updated>2026-11-24T08:00:00+01:00</updated></entry></feed>""",
]


@pytest.mark.parametrize("document", REAL_WORLD, ids=["wordpress", "news-media", "atom"])
def test_real_world_shapes_are_read_by_the_fast_path_and_equal(document: str) -> None:
    content = document.encode("utf-8")
    assert assert_same(content, {"Content-Type": "application/rss+xml"}) is None


# -- what must be declined ---------------------------------------------------------------

_RSS = '<rss version="2.0"><channel><title>T</title>{}</channel></rss>'
_ITEM = "<item><title>x</title><guid>g</guid>{}</item>"
DECLINED = {
    "rss 0.91": '<rss version="0.91"><channel><item><title>x</title></item></channel></rss>',
    "rss 1.0": '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns="http://purl.org/rss/1.0/"><channel/><item><title>x</title></item></rdf:RDF>',
    "atom 0.3": '<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title>x</title>'
    "</entry></feed>",
    "doctype": '<!DOCTYPE rss SYSTEM "http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    + _RSS.format(_ITEM.format("")),
    "xml:base": '<rss version="2.0"><channel xml:base="https://b.example/"><item>'
    "<link>/x</link></item></channel></rss>",
    "base attribute deep inside": _RSS.format(_ITEM.format('<foo base="https://b/">y</foo>')),
    "two titles": _RSS.format(_ITEM.format("<title>y</title>")),
    "two contents": _RSS.format(
        _ITEM.format("<description>a</description><description>b</description>")
    ),
    "xhtml content": '<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml">'
    '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content></entry></feed>',
    "base64 content": '<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
    '<content type="image/png">aGk=</content></entry></feed>',
    "markup inside a description": _RSS.format(_ITEM.format("<description><p>x</p></description>")),
    "nested date": _RSS.format(_ITEM.format("<foo><pubDate>Mon, 23 Nov 2026</pubDate></foo>")),
    "an unhandled element stored as updated": _RSS.format(_ITEM.format("<date>2026</date>")),
    "itunes:summary beside description": '<rss version="2.0" '
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
    + "<channel>"
    + _ITEM.format("<description>a</description><itunes:summary>b</itunes:summary>")
    + "</channel></rss>",
    "a known prefix on another namespace": '<rss version="2.0" xmlns:dc="http://other.example/">'
    "<channel>" + _ITEM.format("<dc:date>2026-01-01</dc:date>") + "</channel></rss>",
    "an undefined entity": _RSS.format(_ITEM.format("<description>&nbsp;</description>")),
    "non-ASCII element name": _RSS.format(_ITEM.format("<caf\u00e9>x</caf\u00e9>")),
    "media:title without the item's title": '<rss version="2.0" '
    'xmlns:media="http://search.yahoo.com/mrss/"><channel><item><guid>g</guid>'
    "<media:content><media:title>m</media:title></media:content></item></channel></rss>",
    "no entries": _RSS.format(""),
    "truncated": _RSS.format(_ITEM.format(""))[:-20],
}


@pytest.mark.parametrize("document", DECLINED.values(), ids=DECLINED.keys())
def test_what_the_fast_path_declines_still_parses_as_before(document: str) -> None:
    why = assert_same(document.encode("utf-8"), {"Content-Type": "application/rss+xml"})
    assert why, "the fast path read a document it should decline"


EQUAL_AND_READ = {
    "unknown default namespace": '<rss version="2.0"><channel><item>'
    '<title xmlns="http://unknown.example/">x</title></item></channel></rss>',
    "rss title that looks like html": _RSS.format(
        "<item><title>&lt;b&gt;Bold&lt;/b&gt; &amp;amp; more</title></item>"
    ),
    "relative links and guid": _RSS.format(
        '<item><guid isPermaLink="true">/a/1</guid><link>../b?x=1&amp;amp;y=2</link></item>'
    ),
    "guid before link, link wins": _RSS.format(
        "<item><guid>https://g.example/1</guid><link>https://l.example/1</link></item>"
    ),
    "empty link after a permalink guid": _RSS.format(
        "<item><guid>https://g/1</guid><link/></item>"
    ),
    "odd dates": _RSS.format(
        "<item><pubDate>2026-W48-1</pubDate></item><item><pubDate>yesterday</pubDate>"
        "<dc:date xmlns:dc='http://purl.org/dc/elements/1.1/'>31 Feb 2026 25:61:61</dc:date>"
        "</item><item><pubDate>Sun, 31 Dec 9999 23:59:59 -1200</pubDate></item>"
    ),
    "comment and processing instruction inside a title": _RSS.format(
        "<item><title>a<!-- c -->b<?pi x?>c</title></item>"
    ),
}


@pytest.mark.parametrize("document", EQUAL_AND_READ.values(), ids=EQUAL_AND_READ.keys())
def test_edge_cases_the_fast_path_reads_equal_feedparser(document: str) -> None:
    assert assert_same(document.encode("utf-8"), {"Content-Type": "application/rss+xml"}) is None


# -- hostile inputs ----------------------------------------------------------------------


def _laughs() -> bytes:
    entities = '<!ENTITY a0 "ha">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return f"<!DOCTYPE rss [{entities}]>{_RSS.format(_ITEM.format('<title>&a9;</title>'))}".encode()


def _attributes(count: int) -> bytes:
    return _RSS.format(
        _ITEM.format("<foo " + " ".join(f'a{i}="x"' for i in range(count)) + "/>")
    ).encode()


HOSTILE: dict[str, Callable[[], bytes]] = {
    "billion laughs": _laughs,
    "external entity": lambda: (
        '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + _RSS.format(_ITEM.format("<description>&x;</description>"))
    ).encode(),
    "utf-16 entity declaration": lambda: (
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE rss [<!ENTITY a "x">]>'
        + _RSS.format(_ITEM.format("<title>&a;</title>"))
    ).encode("utf-16"),
    "deep nesting": lambda: _RSS.format(
        _ITEM.format("<foo>" * 100_000 + "x" + "</foo>" * 100_000)
    ).encode(),
    "deep nesting in a description": lambda: _RSS.format(
        _ITEM.format("<description>" + "<b>" * 50_000 + "</b>" * 50_000 + "</description>")
    ).encode(),
    # feedparser's SAX attribute look-up is quadratic: 5,000 take it 0.3 s, 100,000 minutes.
    "5k attributes": lambda: _attributes(5_000),
    "11 MB text": lambda: _RSS.format(
        _ITEM.format(f"<description>{'x' * 11_000_000}</description>")
    ).encode(),
    "invalid UTF-8 bytes": lambda: (
        b'<?xml version="1.0" encoding="utf-8"?>'
        + _RSS.format(_ITEM.format("<description>caf\xe9 \x81\x9d</description>")).encode("latin-1")
    ),
    "invalid UTF-16": lambda: b"\xff\xfe" + "<rss".encode("utf-16-le") + b"\x00\xd8",
    "NUL bytes": lambda: _RSS.format(_ITEM.format("<title>a\x00b</title>")).encode(),
    "truncated in a tag": lambda: _RSS.format(_ITEM.format("<description>x</descr")).encode()[:-40],
    "truncated in CDATA": lambda: _RSS.format(_ITEM.format("<description><![CDATA[x")).encode()[
        :-30
    ],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_inputs_are_declined_or_fail_as_before_in_bounded_time(
    make: Callable[[], bytes],
) -> None:
    content = make()
    started = time.monotonic()
    fast, slow, why = both(content, {"Content-Type": "application/rss+xml"})
    assert fast == slow
    assert time.monotonic() - started < 60
    if why is not None and why != "":  # reached the fast path and declined: how fast?
        started = time.monotonic()
        _REAL(content, {}, None)
        assert time.monotonic() - started < 5


def test_100k_attributes_on_one_element_take_the_fast_path_milliseconds() -> None:
    """feedparser would take minutes (the parse deadline stops it); the fast path reads
    the element like any unknown one, in linear time."""
    started = time.monotonic()
    parsed = _REAL(_attributes(100_000), {}, None)
    assert parsed is not None and parsed.entries[0].title == "x"
    assert time.monotonic() - started < 5


# -- mutations: anything feedparser handles, anywhere ----------------------------------

SEEDS = [*REAL_WORLD, DECLINED["two titles"], EQUAL_AND_READ["odd dates"]]
_NS = {**NAMESPACES, "dcterms": "http://purl.org/dc/terms/", "x": "http://unknown.example/x"}
_NS |= {
    "itunes": "http://www.itunes.com/DTDs/PodCast-1.0.dtd",
    "georss": "http://www.georss.org/georss",
}
RDF_URI = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_NS |= {"feedburner": "http://rssnamespace.org/feedburner/ext/1.0", "rdf": RDF_URI}
# A canonical prefix in another case on another namespace, and an unknown default namespace.
_NS |= {"DC": "http://unknown.example/DC", "media2": "http://search.yahoo.com/mrss"}
_NAMES = (
    "title link description guid id pubDate updated published summary content category "
    "author name email uri url source enclosure comments ttl image textInput item entry date "
    "modified issued created lastBuildDate generator cloud language rights copyright subtitle "
    "info abstract body fullitem keywords tags width height foo docs expirationDate "
    "newlocation contributor webMaster managingEditor homepage links published_parsed "
    "dc:date dc:creator dc:subject dc:title dc:description dc:rights dc:publisher "
    "dc:contributor dcterms:issued dcterms:modified dcterms:created dcterms:valid "
    "content:encoded media:title media:description media:content media:thumbnail media:group "
    "media:credit media:category media:keywords media:player media:rating itunes:summary "
    "itunes:subtitle itunes:author itunes:image itunes:owner itunes:category itunes:explicit "
    "itunes:keywords atom:link atom:title atom:summary atom:content atom:id atom:updated "
    "atom:entry atom:source georss:point yt:videoId x:title x:foo feedburner:origLink "
    "slash:comments wfw:commentRss rdf:li DC:date media2:title {http://unknown.example/d}title"
).split()
_ATTRIBUTES = [
    ("type", ["text", "html", "xhtml", "text/plain", "HTML", "application/octet-stream"]),
    ("rel", ["alternate", "self", "ALTERNATE", "enclosure", ""]),
    ("href", ["https://h.example/1", "/rel", ""]),
    ("url", ["https://u.example/1"]),
    ("uri", ["https://u.example/2"]),
    ("mode", ["base64", "escaped"]),
    ("src", ["https://s.example/"]),
    ("isPermaLink", ["true", "false", "True"]),
    ("version", ["2.0", "0.3"]),
    ("lastmod", ["2026-01-01"]),
    ("term", ["t"]),
    ("base", ["https://b.example/"]),
    ("{http://www.w3.org/XML/1998/namespace}base", ["https://b.example/"]),
    ("{http://www.w3.org/XML/1998/namespace}lang", ["en", ""]),
    ("{http://unknown.example/x}type", ["html"]),
    (f"{{{RDF_URI}}}about", ["https://r.example/"]),
]


def _tag_and_namespaces(name: str) -> tuple[str, dict[str | None, str]]:
    """The element's tag, and the namespaces declared on it ("{URI}local": as the default)."""
    if name.startswith("{"):
        return name, {None: name[1:].partition("}")[0]}
    prefix, _, local = name.rpartition(":")
    return (f"{{{_NS[prefix]}}}{local}" if prefix else local), dict(_NS)


@st.composite
def mutated_feeds(draw: st.DrawFn) -> bytes:
    from lxml import etree

    root = etree.fromstring(draw(st.sampled_from(SEEDS)).encode())
    for _ in range(draw(st.integers(1, 6))):
        elements = list(root.iter())
        target = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["insert", "insert", "attribute", "wrap", "move", "copy"]))
        if action == "insert":
            tag, namespaces = _tag_and_namespaces(draw(st.sampled_from(_NAMES)))
            new = etree.SubElement(target, tag, nsmap=namespaces)
            new.text = draw(st.one_of(TEXTS, DATE_TEXTS))
            target.insert(draw(st.integers(0, len(target) - 1)), new)
        elif action == "attribute":
            name, values = draw(st.sampled_from(_ATTRIBUTES))
            target.set(name, draw(st.sampled_from(values)))
        elif target is not root:
            parent = target.getparent()
            if action == "wrap":
                tag, namespaces = _tag_and_namespaces(draw(st.sampled_from(_NAMES)))
                wrapper = etree.Element(tag, nsmap=namespaces)
                parent.replace(target, wrapper)
                wrapper.append(target)
            elif action == "move":
                other = draw(
                    st.sampled_from(
                        [e for e in elements if target not in e.iterancestors() and e is not target]
                    )
                )
                other.append(target)
            else:
                parent.insert(parent.index(target), etree.fromstring(etree.tostring(target)))
        if draw(st.integers(0, 9)) == 0:
            target.tag = target.tag.upper() if draw(st.booleans()) else target.tag.title()
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


@given(mutated_feeds(), CONTENT_TYPES)
def test_mutated_feeds_equal_feedparser_whenever_the_fast_path_reads_them(
    document: bytes, headers: dict[str, str]
) -> None:
    assert_same(document, headers)
