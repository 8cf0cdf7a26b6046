"""Parse: feed bytes into entries, with feedparser (or, where it gives the same, lxml).

What it decides, and why:

* **Well-formed RSS 2.0 and Atom 1.0 are read with lxml** (fastfeed.py, about
  4x faster per document: docs/benchmarks.md) when the result is exactly
  feedparser's; every other document, and anything that path is unsure of,
  goes to feedparser after the same decoding and entity checks.

* **feedparser only ever sees bytes** (wrapped in a stream), with the response
  headers and the URL, never a URL or a path it could open itself.
  Its HTML sanitiser and relative-URI resolution are off: they cost about a
  third of parse time and do not catch everything; we sanitise when we render.
* **One reading of the bytes** (`aggregator.sources.encoding`): a document is decoded
  once (byte-order mark, then the first bytes' pattern, the XML declaration,
  the HTTP charset, UTF-8, Windows-1252), the entity check reads that text,
  and feedparser is handed the same text as UTF-8 that says so (declaration
  and charset). An undecodable document (UTF-16 or UTF-32 that is not valid)
  is a `ParseError`; a declaration or charset ignored, or a fallback taken,
  is a warning.
* **No entity declarations.** A document that declares any XML entity
  (`<!ENTITY`, in any case, anywhere in its text: a declaration need not sit
  in the first bytes nor end in `]>`) is refused before parsing, whatever the
  entity. feedparser's fallback parser expands what expat refused, so one
  10 KB entity referenced 10,000 times is a 100,000,000-character title.
  Small plain entities were allowed (up to 64, their total expansion
  bounded) until three ways round that (a late DOCTYPE, one entity referenced
  many times, another encoding) showed the rules cost more than they were
  worth: feeds have no need of entities. Of feedparser's 2,233 test feeds two
  declare any (an abbreviation `&id;`, and the XHTML Latin-1 set as an
  external parameter entity, refused before too). A DOCTYPE without
  declarations still parses: old RSS 0.91 feeds name the Netscape DTD, which
  nothing fetches, and feedparser's fallback parser reads its HTML entities.
  The cost: a feed quoting a declaration unescaped (in CDATA) is refused too.
  The raw bytes are also searched for `<!ENTITY` in UTF-16, UTF-32 and
  EBCDIC, so a reading gone wrong cannot hide one.
* **JSON Feed 1.0/1.1** is parsed here (released feedparser has no support):
  chosen by the media type (`application/feed+json`, `application/json`) or a
  body that starts with `{`.
* **Errors.** No entries is a `ParseError` naming what was found instead (an
  HTML page, an empty channel). Entries with feedparser's `bozo` flag set are
  kept, with the problem reported as a warning.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import lxml.html
from lxml import etree

from aggregator.errors import ParseError
from aggregator.model import parse_iso_date
from aggregator.sources.encoding import (
    Decoded,
    charset_of,
    decode_document,
    spelled_in,
    utf8_content_type,
    utf8_document,
)

_ENTITY_START = re.compile(r"<!ENTITY", re.IGNORECASE | re.ASCII)
# Only to say what was refused: every declaration is.
_ENTITY = re.compile(
    r"<!ENTITY\s+(%\s*)?[^\s>]+\s+(?:\"([^\"]*)\"|'([^']*)'|(SYSTEM|PUBLIC))",
    re.IGNORECASE | re.ASCII,
)
_LARGE_ENTITY = 1024
_JSON_TYPES = ("application/feed+json", "application/json")
_READ_HEADERS = frozenset(("content-type", "content-language"))


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry as the feed gave it: raw date strings, and the date parsed (UTC) if it could be."""

    guid: str
    link: str
    title: str
    summary: str
    content: str
    published: str
    updated: str
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str
    ttl_minutes: int | None
    entries: tuple[FeedEntry, ...]
    warning: str | None


def parse_feed(content: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    """Entries of a feed document (RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed).

    After decoding and the entity check, `fastfeed.parse_well_formed` reads the
    well-formed RSS 2.0 and Atom 1.0 documents whose result it can give exactly
    as feedparser would (issue 15); feedparser reads every document it declines.
    """
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _JSON_TYPES or content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_json_feed(content, url)
    # Only the headers that say how to read the bytes. Not Content-Location (or
    # any base): feedparser would resolve GUIDs and links against it, so a
    # server adding the header would change every entry's identity. Links stay
    # as the feed wrote them and are resolved against the feed URL later.
    forwarded = {k.lower(): v for k, v in headers.items() if k.lower() in _READ_HEADERS}
    decoded = decode_document(content, charset_of(forwarded.get("content-type", "")), url)
    _refuse_declarations(decoded, content, url)
    if "content-type" in forwarded:
        forwarded["content-type"] = utf8_content_type(forwarded["content-type"])
    document = utf8_document(decoded.text)
    # Well-formed RSS 2.0 and Atom 1.0 first, read as feedparser would (fastfeed.py).
    from aggregator.sources.fastfeed import parse_well_formed  # it imports this module

    fast = parse_well_formed(document, forwarded, decoded.warning)
    if fast is not None:
        return fast
    try:
        parsed: Any = feedparser.parse(
            io.BytesIO(document),
            response_headers=forwarded,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser's own bugs on odd input (found by fuzzing)
        raise ParseError(url, f"unreadable feed ({type(e).__name__}: {e})") from e
    entries = tuple(_entry(e) for e in parsed.entries)
    problem = parsed.get("bozo_exception")
    if not entries:
        version = parsed.get("version") or ""
        looks_html = "<html" in decoded.text[:2048].lower()
        reason = (
            "an HTML page, not a feed"
            if looks_html and not version
            else f"no entries ({version or 'unrecognised format'}"
            + (f"; {type(problem).__name__}: {problem})" if problem else ")")
        )
        raise ParseError(url, reason)
    feed = parsed.feed
    ttl = str(feed.get("ttl", "")).strip()
    bozo = f"{type(problem).__name__}: {problem}" if parsed.get("bozo") and problem else ""
    return ParsedFeed(
        title=str(feed.get("title", "")),
        link=str(feed.get("link", "")),
        ttl_minutes=int(ttl) if ttl.isascii() and ttl.isdigit() and len(ttl) <= 9 else None,
        entries=entries,
        warning="; ".join(w for w in (decoded.warning, bozo) if w) or None,
    )


def refuse_entities(content: bytes, url: str, charset: str = "") -> None:
    """ParseError if the document, read as `parse_feed` reads it, declares any XML entity.

    `charset` is the HTTP charset, which can decide how the bytes are read. An
    undecodable document is a ParseError too.
    """
    _refuse_declarations(decode_document(content, charset, url), content, url)


def _refuse_declarations(decoded: Decoded, content: bytes, url: str) -> None:
    """ParseError if the text declares an entity, or the raw bytes spell `<!ENTITY`
    in another encoding. The message says what kind of entity, for whoever reads
    the feed's error; the decision does not depend on it."""
    count = len(_ENTITY_START.findall(decoded.text))
    if not count:
        hidden = spelled_in(content, "<!ENTITY")
        if hidden:
            raise ParseError(
                url,
                f"refused: an XML entity declaration in {hidden[0]}"
                f" (the document reads as {decoded.encoding})",
            )
        return
    declarations = _ENTITY.findall(decoded.text)
    if any(parameter or external for parameter, _, _, external in declarations):
        raise ParseError(url, "refused: declares parameter or external XML entities")
    if any(
        len(value) > _LARGE_ENTITY or "&" in value or "%" in value
        for _, double, single, _ in declarations
        for value in (double or single,)
    ):
        raise ParseError(url, "refused: declares large or nested XML entities")
    raise ParseError(url, f"refused: declares XML entities ({count}; none are allowed)")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str:
    """A field as text. Lone surrogates (JSON's "\\udc00", which json.loads passes on)
    become U+FFFD: no UTF-8 encoder, SQLite included, accepts them."""
    return _SURROGATE.sub("\ufffd", str(value)) if value is not None else ""


_MAX_TITLE = 10_000  # characters of a title read; real ones are under 300
_MARKUP_TYPES = frozenset(("text/html", "application/xhtml+xml"))
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAG = re.compile("<[^<>]*>")
_HIDDEN = ("script", "style", "template")
_BREAKS = ("br", "p", "div", "li", "dt", "dd", "tr", "td", "th", "blockquote", "hr")
_BREAKS_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def plain_title(value: str, media_type: str = "text/plain") -> str:
    """A title as a reader sees it: one line, no markup when it is marked up.

    feedparser says how to read a title (`title_detail.type`): Atom's
    type="html" and type="xhtml" are `text/html` and `application/xhtml+xml`,
    and an RSS title that looks like HTML (a closing tag, an entity such as a
    double-escaped `&amp;#8217;`) is `text/html`. Those are stripped of tags
    and their entities decoded (`That&#8217;s` is `That’s`, `&#x0024;4300
    <sup>2</sup>` is `$4300 2`). A `text/plain` title (Atom type="text", a
    JSON Feed title, an RSS title without markup) is text: `Use <b>` keeps its
    `<b>`. Either way whitespace runs become one space. The input is cut to
    10,000 characters first: titles come from whoever publishes the feed.
    """
    text = value[:_MAX_TITLE]
    if media_type in _MARKUP_TYPES and ("<" in text or "&" in text):
        text = _strip_markup(text)
    return " ".join(text.split())


def _strip_markup(fragment: str) -> str:
    """The text of an HTML fragment: scripts and styles dropped, a space where a
    line would break, entities decoded.

    libxml2's HTML parser (linear, C) does the work. It refuses control
    characters (replaced by spaces first) and gives up on nesting deeper than
    256 elements; when it finds no text at all, tags are cut out with a
    regular expression (linear: `[^<>]` stops at the next bracket) instead.
    """
    fragment = _CONTROL.sub(" ", fragment)
    try:
        root: Any = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, etree.LxmlError):
        root = None
    if root is not None:
        for hidden in list(root.iter(*_HIDDEN)):
            hidden.drop_tree()  # keeps the text after it
        for element in root.iter(*_BREAKS, *_BREAKS_HEADINGS):
            element.text = " " + (element.text or "")
            element.tail = " " + (element.tail or "")
        text = "".join(root.itertext())
        if text.strip():
            return text
    return html.unescape(_TAG.sub(" ", fragment))


def _entry(raw: Any) -> FeedEntry:
    content = ""
    for part in raw.get("content") or ():
        content = _text(part.get("value"))
        if content:
            break
    return FeedEntry(
        guid=_text(raw.get("id")),
        link=_text(raw.get("link")),
        title=plain_title(
            _text(raw.get("title")), str((raw.get("title_detail") or {}).get("type", ""))
        ),
        summary=_text(raw.get("summary")),
        content=content,
        published=_text(raw.get("published")),
        # feedparser maps a missing `updated` to `published` with a warning;
        # ask the underlying dict so a missing value stays missing.
        updated=_text(dict.get(raw, "updated")),
        published_at=_struct_time(dict.get(raw, "published_parsed"))
        or _struct_time(dict.get(raw, "updated_parsed")),
    )


def _struct_time(value: Any) -> datetime | None:
    """feedparser's parsed dates are UTC `time.struct_time`s."""
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


_JSON_FEED_VERSION = re.compile(
    r"https?://(?:www\.)?jsonfeed\.org/version/(\d{1,9})(?:\.\d{1,9})?/?", re.IGNORECASE
)
_JSON_ITEM_FIELDS = ("content_html", "content_text", "url")


def _shown(value: Any, limit: int = 80) -> str:
    """A value from a document, quoted on one line and cut to `limit` characters."""
    text = " ".join(_text(value).split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _json_feed_warning(document: Any, url: str) -> str | None:
    """ParseError unless `document` is a JSON Feed 1.x; a warning if it is one only by its shape.

    Accepted versions are what publishers write for 1.0 and 1.1: http or https,
    with or without `www.`, any case, a trailing slash, `1`, `1.0`, `1.1` (and
    later 1.x: the spec keeps minor versions compatible). Another major version
    is refused as unsupported. Without a `version`, a document is still read
    when it has the shape of one (a string `title` and an `items` list with an
    object carrying an `id` and a `url` or content), with a warning: generators
    that forget the version exist, while API answers (`{"error": ...}`, a list
    of records) have neither a feed title nor such items and stay refused.
    """
    if not isinstance(document, dict):
        kind = {list: "an array", str: "a string", bool: "true or false"}.get(type(document))
        raise ParseError(url, f"not a JSON Feed (the document is {kind or 'a number or null'})")
    version = document.get("version")
    if version not in (None, ""):
        found = _JSON_FEED_VERSION.fullmatch(version.strip()) if isinstance(version, str) else None
        if found is None:
            raise ParseError(url, f"not a JSON Feed (version {_shown(version)})")
        if found.group(1) != "1":
            raise ParseError(url, f"unsupported JSON Feed version {_shown(version)}")
        return None
    items = document.get("items")
    if isinstance(document.get("title"), str) and isinstance(items, list):
        if any(
            isinstance(item, dict) and "id" in item and any(k in item for k in _JSON_ITEM_FIELDS)
            for item in items
        ):
            return "JSON Feed without a version, read as 1.1"
    for key in ("error", "errors", "message"):
        if key in document:
            raise ParseError(
                url, f"not a JSON Feed (an error response? {key}: {_shown(document[key])})"
            )
    raise ParseError(url, "not a JSON Feed (no jsonfeed.org version)")


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    """A JSON Feed 1.x document (see `_json_feed_warning` for what counts as one).

    Titles are text in JSON Feed (`content_html` is where HTML goes), so they
    keep any `<` or `&` and only have their whitespace normalised.
    """
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, huge ints, deep nesting
        raise ParseError(url, f"invalid JSON: {e}") from e
    warning = _json_feed_warning(document, url)
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "JSON Feed without an items list")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        entries.append(
            FeedEntry(
                guid=_text(item.get("id")),
                link=_text(item.get("url") or item.get("external_url")),
                title=plain_title(_text(item.get("title"))),
                summary=_text(item.get("summary")),
                content=_text(item.get("content_html") or item.get("content_text")),
                published=_text(item.get("date_published")),
                updated=_text(item.get("date_modified")),
                published_at=parse_iso_date(
                    _text(item.get("date_published") or item.get("date_modified"))
                ),
            )
        )
    if not entries:
        raise ParseError(url, "no entries (JSON Feed)")
    return ParsedFeed(
        title=_text(document.get("title")),
        link=_text(document.get("home_page_url")),
        ttl_minutes=None,
        entries=tuple(entries),
        warning=warning,
    )
