"""Parse: feed bytes into entries; the only module that imports feedparser.

What it decides, and why:

* **feedparser only ever sees bytes** (wrapped in a stream), with the response
  headers and the URL, never a URL or a path it could open itself.
  Its HTML sanitiser and relative-URI resolution are off: they cost about a
  third of parse time and do not catch everything; we sanitise when we render.
* **Entity expansion is refused before parsing.** A document whose internal
  DTD declares parameter or external entities, entities that reference other
  entities, values over 1 KiB, or more than 64 entities is refused:
  feedparser's fallback parser expands them and a 160 KB feed can become
  gigabytes. Ordinary feeds declare none.
* **JSON Feed 1.0/1.1** is parsed here (released feedparser has no support):
  chosen by the media type (`application/feed+json`, `application/json`) or a
  body that starts with `{`.
* **Errors.** No entries is a `ParseError` naming what was found instead (an
  HTML page, an empty channel). Entries with feedparser's `bozo` flag set are
  kept, with the problem reported as a warning.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from aggregator.errors import ParseError
from aggregator.model import parse_iso_date

_ENTITY = re.compile(
    rb"<!ENTITY\s+(%\s+)?([^\s>]+)\s+(?:\"([^\"]*)\"|'([^']*)'|(SYSTEM|PUBLIC))", re.IGNORECASE
)
_MAX_ENTITIES = 64
_MAX_ENTITY_BYTES = 1024
_MAX_EXPANSION = 1024 * 1024  # bytes all references to declared entities may add
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
    """Entries of a feed document (RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed)."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _JSON_TYPES or content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_json_feed(content, url)
    refuse_entities(content, url)
    # Only the headers that say how to read the bytes. Not Content-Location (or
    # any base): feedparser would resolve GUIDs and links against it, so a
    # server adding the header would change every entry's identity. Links stay
    # as the feed wrote them and are resolved against the feed URL later.
    try:
        parsed: Any = feedparser.parse(
            io.BytesIO(content),
            response_headers={k: v for k, v in headers.items() if k.lower() in _READ_HEADERS},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser's own bugs on odd input (found by fuzzing)
        raise ParseError(url, f"unreadable feed ({type(e).__name__}: {e})") from e
    entries = tuple(_entry(e) for e in parsed.entries)
    problem = parsed.get("bozo_exception")
    if not entries:
        version = parsed.get("version") or ""
        looks_html = b"<html" in content[:2048].lower()
        reason = (
            "an HTML page, not a feed"
            if looks_html and not version
            else f"no entries ({version or 'unrecognised format'}"
            + (f"; {type(problem).__name__}: {problem})" if problem else ")")
        )
        raise ParseError(url, reason)
    feed = parsed.feed
    ttl = str(feed.get("ttl", "")).strip()
    return ParsedFeed(
        title=str(feed.get("title", "")),
        link=str(feed.get("link", "")),
        ttl_minutes=int(ttl) if ttl.isascii() and ttl.isdigit() and len(ttl) <= 9 else None,
        entries=entries,
        warning=f"{type(problem).__name__}: {problem}" if parsed.get("bozo") and problem else None,
    )


def refuse_entities(content: bytes, url: str) -> None:
    """ParseError if the document declares entities that could expand.

    The whole document is searched (a declaration need not sit in the first
    bytes, nor end in "]>"), UTF-16 documents after decoding; and the total a
    document's references could add is bounded, not only each value.
    """
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        content = content.decode("utf-16", errors="replace").encode("utf-8")
    upper = content.upper()
    if b"<!ENTITY" not in upper:
        return
    declarations = _ENTITY.findall(content)
    if len(declarations) != upper.count(b"<!ENTITY"):
        raise ParseError(url, "refused: unreadable XML entity declaration")
    if len(declarations) > _MAX_ENTITIES:
        raise ParseError(url, f"refused: declares {len(declarations)} XML entities")
    expansion = 0
    for parameter, name, double, single, external in declarations:
        value = double or single
        if parameter or external:
            raise ParseError(url, "refused: declares parameter or external XML entities")
        if len(value) > _MAX_ENTITY_BYTES or b"&" in value or b"%" in value:
            raise ParseError(url, "refused: declares large or nested XML entities")
        expansion += content.count(b"&" + name + b";") * len(value)
    if expansion > _MAX_EXPANSION:
        raise ParseError(url, f"refused: XML entities would expand by {expansion >> 20} MiB")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str:
    """A field as text. Lone surrogates (JSON's "\\udc00", which json.loads passes on)
    become U+FFFD: no UTF-8 encoder, SQLite included, accepts them."""
    return _SURROGATE.sub("\ufffd", str(value)) if value is not None else ""


def _entry(raw: Any) -> FeedEntry:
    content = ""
    for part in raw.get("content") or ():
        content = _text(part.get("value"))
        if content:
            break
    return FeedEntry(
        guid=_text(raw.get("id")),
        link=_text(raw.get("link")),
        title=_text(raw.get("title")),
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


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    """A JSON Feed 1.0 or 1.1 document."""
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, huge ints, deep nesting
        raise ParseError(url, f"invalid JSON: {e}") from e
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/1"
    ):
        raise ParseError(url, "not a JSON Feed (no jsonfeed.org version)")
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
                title=_text(item.get("title")),
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
        warning=None,
    )
