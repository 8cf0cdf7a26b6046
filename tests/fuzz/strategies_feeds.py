"""Feed documents: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 skeletons with fuzzed text,
attributes, entities, CDATA, declared vs actual encodings and mutations; JSON Feed with
wrong types, huge numbers and deep nesting; each with its response headers. And the
sample documents of past bugs that the `@example`s and the reproductions share."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from hypothesis import strategies as st

from .strategies import (
    DATES,
    DECLARED,
    DOCTYPES,
    ENCODINGS,
    encode,
    fuzz_text,
    maybe_mutated,
    sentences,
    xml_text,
)

# ---------------------------------------------------------------------------------------
# Feed documents: XML.

NAMESPACES = (
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:media="http://search.yahoo.com/mrss/"'
)
RDF = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'


@dataclass(frozen=True, slots=True)
class Skeleton:
    opening: str
    closing: str
    channel: tuple[str, ...]  # elements of the feed itself
    item: str  # the entry element
    fields: tuple[str, ...]  # elements of an entry
    items_inside: bool  # entries inside the channel element (RSS 2.0) or beside it (RSS 1.0)


RSS_CHANNEL = ("title", "link", "description", "ttl", "language", "lastBuildDate", "pubDate")
RSS_FIELDS = (
    "title",
    "link",
    "description",
    "guid",
    "pubDate",
    "author",
    "category",
    "content:encoded",
    "dc:date",
    "dc:creator",
    "source",
    "comments",
    "atom:link",
    "media:content",
)
ATOM_CHANNEL = ("title", "id", "updated", "link", "subtitle", "author", "generator")
ATOM_FIELDS = (
    "id",
    "title",
    "link",
    "updated",
    "published",
    "summary",
    "content",
    "author",
    "category",
    "issued",
    "modified",
    "created",
)
SKELETONS = {
    "rss2.0": Skeleton(
        f'<rss version="2.0"{NAMESPACES}><channel>',
        "</channel></rss>",
        RSS_CHANNEL,
        "item",
        RSS_FIELDS,
        True,
    ),
    "rss0.91": Skeleton(
        '<rss version="0.91"><channel>', "</channel></rss>", RSS_CHANNEL, "item", RSS_FIELDS, True
    ),
    "rss0.92": Skeleton(
        '<rss version="0.92"><channel>', "</channel></rss>", RSS_CHANNEL, "item", RSS_FIELDS, True
    ),
    "rss0.90": Skeleton(
        f'<rdf:RDF {RDF} xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel>',
        "</rdf:RDF>",
        ("title", "link", "description"),
        "item",
        ("title", "link"),
        False,
    ),
    "rss1.0": Skeleton(
        f'<rdf:RDF {RDF} xmlns="http://purl.org/rss/1.0/"{NAMESPACES}>'
        '<channel rdf:about="https://feed.example/">',
        "</rdf:RDF>",
        ("title", "link", "description", "dc:date"),
        "item",
        ("title", "link", "description", "dc:date", "content:encoded"),
        False,
    ),
    "atom1.0": Skeleton(
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "</feed>",
        ATOM_CHANNEL,
        "entry",
        ATOM_FIELDS,
        True,
    ),
    "atom0.3": Skeleton(
        '<feed version="0.3" xmlns="http://purl.org/atom/ns#">',
        "</feed>",
        ATOM_CHANNEL,
        "entry",
        ATOM_FIELDS,
        True,
    ),
    "unknown": Skeleton("<document><list>", "</list></document>", ("name",), "row", ("x",), True),
}

ATTRIBUTES = {
    "link": [("href", "url"), ("rel", "rel"), ("type", "type")],
    "atom:link": [("href", "url"), ("rel", "rel")],
    "guid": [("isPermaLink", "bool")],
    "content": [("type", "type"), ("mode", "mode"), ("src", "url"), ("xml:base", "url")],
    "summary": [("type", "type"), ("mode", "mode")],
    "title": [("type", "type")],
    "media:content": [("url", "url"), ("medium", "text")],
    "source": [("url", "url")],
    "category": [("term", "text"), ("domain", "url")],
}
ATTRIBUTE_VALUES = {
    "url": st.one_of(
        st.sampled_from(
            [
                "https://news.example/story/1",
                "/relative",
                "story?utm_source=rss",
                "http://[::1",
                "data:text/html,<p>x</p>",
                "",
            ]
        ),
        st.text(max_size=20),
    ),
    "rel": st.sampled_from(["alternate", "self", "enclosure", "related", "via", ""]),
    "type": st.sampled_from(
        ["html", "xhtml", "text", "text/html", "text/plain", "application/octet-stream", "x"]
    ),
    "mode": st.sampled_from(["escaped", "base64", "xml", "bogus"]),
    "bool": st.sampled_from(["true", "false", "TRUE", "yes", ""]),
    "text": fuzz_text,
}


@functools.cache  # one strategy per element name: building strategies is not free
@st.composite
def xml_element(draw: st.DrawFn, name: str) -> str:
    attributes = ""
    for attribute, kind in ATTRIBUTES.get(name, []):
        if draw(st.booleans()):
            value = draw(ATTRIBUTE_VALUES[kind])
            attributes += f" {attribute}=" + (
                quoteattr(value) if draw(st.integers(0, 4)) else f'"{value}"'
            )
    if draw(st.integers(0, 9)) == 0:
        attributes += f' {draw(st.from_regex(r"[a-z][a-z0-9:-]{0,8}", fullmatch=True))}="x"'
    if draw(st.integers(0, 7)) == 0:
        return f"<{name}{attributes}/>"
    if name == "content" and draw(st.integers(0, 4)) == 0:
        inner = f'<div xmlns="http://www.w3.org/1999/xhtml">{draw(xml_text())}</div>'
        return f"<{name}{attributes}>{inner}</{name}>"
    return f"<{name}{attributes}>{draw(xml_text())}</{name}>"


@functools.cache
@st.composite
def xml_fields(draw: st.DrawFn, names: tuple[str, ...], max_size: int) -> str:
    chosen = draw(st.lists(st.sampled_from(names), max_size=max_size))
    return "".join(draw(xml_element(name)) for name in chosen)


@st.composite
def xml_feeds(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """An XML feed document and its response headers."""
    skeleton = SKELETONS[draw(st.sampled_from(sorted(SKELETONS)))]
    channel = draw(xml_fields(skeleton.channel, 5))
    items = "".join(
        f"<{skeleton.item}>{draw(xml_fields(skeleton.fields, 8))}</{skeleton.item}>"
        for _ in range(draw(st.integers(0, 4)))
    )
    # RSS 0.90 and 1.0 close the channel before the items.
    between = "" if skeleton.items_inside else "</channel>"
    body = skeleton.opening + channel + between + items + skeleton.closing
    encoding = draw(st.sampled_from(ENCODINGS))
    declared = draw(st.one_of(st.just(encoding), st.sampled_from(DECLARED)))
    declaration = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0"?>',
                f'<?xml version="1.0" encoding="{declared}"?>',
                f"<?xml version='1.1' encoding='{declared}' standalone='yes'?>",
                f'<?xml encoding="{declared}" version="1.0"?>',
                "<?xml-stylesheet href='x.xsl'?>",
            ]
        )
    )
    prolog = declaration + draw(st.sampled_from(DOCTYPES)) + draw(st.sampled_from(["", "\n"]))
    content = encode(prolog + body, encoding)
    content = draw(maybe_mutated(content))
    media = draw(
        st.sampled_from(
            [
                "",
                "application/rss+xml",
                "application/atom+xml",
                "text/xml",
                "application/xml",
                "text/html",
                "text/plain",
                "application/json",
            ]
        )
    )
    charset = draw(st.sampled_from(["", f"; charset={draw(st.sampled_from(DECLARED))}"]))
    headers = {"content-type": media + charset} if media else {}
    if draw(st.integers(0, 4)) == 0:
        headers["content-language"] = draw(st.sampled_from(["en", "fr-CA", "", "x" * 100]))
    return content, headers


FEED_URLS = st.sampled_from(
    [
        "https://feed.example/rss.xml",
        "http://127.0.0.1:8080/feeds/1",
        "https://news.example/a/b/atom?x=1",
        "https://[2001:db8::1]/feed",
    ]
)


# ---------------------------------------------------------------------------------------
# Feed documents: JSON Feed.

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    fuzz_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
JSON_ITEM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(fuzz_text, st.integers()),
    "url": ATTRIBUTE_VALUES["url"],
    "external_url": ATTRIBUTE_VALUES["url"],
    "title": fuzz_text,
    "content_html": st.one_of(fuzz_text, sentences.map(lambda s: f"<p>{s}</p>")),
    "content_text": st.one_of(fuzz_text, sentences),
    "summary": fuzz_text,
    "image": ATTRIBUTE_VALUES["url"],
    "date_published": st.sampled_from(DATES),
    "date_modified": st.sampled_from(DATES),
    "authors": st.lists(st.fixed_dictionaries({"name": fuzz_text}), max_size=2),
    "tags": st.lists(fuzz_text, max_size=3),
    "language": fuzz_text,
    "attachments": st.lists(st.fixed_dictionaries({"url": fuzz_text}), max_size=2),
}
JSON_VERSIONS = [
    "https://jsonfeed.org/version/1",
    "https://jsonfeed.org/version/1.1",
    "https://jsonfeed.org/version/1.2",
    "http://jsonfeed.org/version/1",
    "",
]
json_items = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={key: st.one_of(value, json_values) for key, value in JSON_ITEM_FIELDS.items()},
    ),
    json_values,
)
json_documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.sampled_from(JSON_VERSIONS), json_values),
        "title": st.one_of(fuzz_text, json_values),
        "home_page_url": st.one_of(ATTRIBUTE_VALUES["url"], json_values),
        "feed_url": ATTRIBUTE_VALUES["url"],
        "items": st.one_of(st.lists(json_items, max_size=4), json_values),
        "expired": json_values,
        "next_url": json_values,
    },
)


@st.composite
def json_feeds(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    document = draw(json_documents)
    if draw(st.integers(0, 2)):  # mostly a JSON Feed that can parse
        document.setdefault("version", draw(st.sampled_from(JSON_VERSIONS[:2])))
        document.setdefault("items", draw(st.lists(json_items, min_size=1, max_size=3)))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), allow_nan=True)
    raw = draw(
        st.sampled_from(
            ["", "huge-int", "huge-float", "tiny-float", "deep", "deep-object", "duplicate-key"]
        )
    )
    if raw:
        if raw == "huge-int":
            value = "1" * draw(st.sampled_from([20, 400, 4300, 4301, 10_000]))
        elif raw == "huge-float":
            value = "1e" + "9" * draw(st.integers(1, 400))
        elif raw == "tiny-float":
            value = "-1e-99999"
        elif raw == "deep":
            depth = draw(st.sampled_from([10, 500, 990, 1200, 20_000]))
            value = "[" * depth + "]" * depth
        elif raw == "deep-object":
            depth = draw(st.sampled_from([10, 1200]))
            value = '{"a":' * depth + "1" + "}" * depth
        else:
            value = '"dup", "version": 7'
        text = text[:-1] + ("," if len(text) > 2 else "") + f'"x": {value}' + "}"
    prefix = draw(st.sampled_from(["", " \n\t", "\ufeff"]))
    content = encode(prefix + text, draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"])))
    content = draw(maybe_mutated(content))
    media = draw(st.sampled_from(["application/feed+json", "application/json; charset=utf-8", ""]))
    return content, ({"content-type": media} if media else {})


# ---------------------------------------------------------------------------------------
# Sample documents of past bugs: the `@example`s and the reproductions.


RSS_TTL = (
    '<rss version="2.0"><channel><title>t</title><ttl>{}</ttl>'
    "<item><title>x</title></item></channel></rss>"
)
JSON_FEED = '{{"version": "https://jsonfeed.org/version/1.1", "items": [{}]}}'


def _json_item(**fields: str) -> bytes:
    return JSON_FEED.format(json.dumps({"id": "1", **fields})).encode()


ENCODING_NAME = (
    b'<?xml version="1.0" encoding="%sutf-8"?>'
    b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"></feed>'
)
