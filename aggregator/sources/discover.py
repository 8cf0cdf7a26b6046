"""Discover: what a fetched document is, and which feeds an HTML page links to.

`sources add` fetches the URL it is given once and asks `inspect_document`
what came back. This runs in a worker process with a deadline (`feedcheck.py`,
through `workers.ParsePool.call`), like a poll's parse: the body is untrusted.

What it decides, and why:

* **A binary file** (an image, a PDF, an archive, an executable: known magic
  numbers) is refused without parsing. Other bodies are not judged by their
  Content-Type alone: servers label feeds `text/html`, `text/plain` or
  `application/octet-stream` often enough. A body that no parser can read and
  that holds a NUL byte in its first KiB is called binary too.
* **Feed or page by the root element.** The first element after the XML
  declaration, comments, processing instructions and a DOCTYPE (or a leading
  `{` for JSON) decides: `html` (or `<!DOCTYPE html>`) is a page, read for
  links without feedparser ever seeing it; `rss`, `rdf:RDF`, `feed` and JSON
  go to `parse.parse_feed`, the poller's own parser, so what `sources add`
  accepts is what a poll can read. Anything else is tried as a feed and, if
  that fails and the server called it HTML, read as a page. The root element
  also names the format in the answer ("RSS 2.0", "Atom 1.0", "JSON Feed
  1.1"), read from its version attribute or namespace (feedparser's own
  version is not exposed by `parse.py`). A feed of a known format without
  entries is a feed (a new blog has none yet), said as "no entries yet".
* **Links of a page** are what Miniflux and FreshRSS discover: `<link
  rel="alternate">` in the head with type `application/rss+xml`,
  `application/atom+xml`, `application/feed+json` or `application/json`
  (JSON Feed's own discovery type), its href resolved against the page's
  `<base href>` or its final URL after redirects. Except an `application/json`
  link into `/wp-json/`: WordPress declares its REST API page that way on
  every post (Miniflux ignores it too, its pull request 4040). Only http(s)
  links count, each URL once, in document order.
* **Bounded.** Only the first `page_max_bytes` of a page are read (5 MiB, the
  full-text page cap; the head is at the start), through the linear limits of
  `htmllimits.py` before lxml sees them; the worker's deadline covers the rest.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from aggregator.errors import ParseError
from aggregator.model import FeedLink
from aggregator.sources.encoding import charset_of, decode_document
from aggregator.sources.htmllimits import limit_html
from aggregator.sources.parse import parse_feed, plain_title

LINK_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
}
_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))
_FEED_ROOTS = frozenset(("rss", "rdf", "feed", "json"))
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"RIFF", "a RIFF file (WebP, WAV, AVI)"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"OggS", "an Ogg file"),
    (b"ID3", "an MP3 file"),
    (b"\x00asm", "a WebAssembly module"),
    (b"wOF", "a web font"),
)
_SNIFF_BYTES = 4096
_TAG_NAME = re.compile(r"<([A-Za-z][^\s/>]*)([^>]*)")
_RSS_VERSION = re.compile(r"""\sversion\s*=\s*["']([0-9][0-9.]{0,8})["']""")
_JSON_VERSION = re.compile(r""""version"\s*:\s*"[^"]*?/version/(\d{1,3}(?:\.\d{1,3})?)/?\"""")


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """The document is a feed the poller can read."""

    format: str  # "RSS 2.0", "Atom 1.0", "JSON Feed 1.1"...
    title: str  # one line, "" when it has none
    entries: int
    warning: str | None


@dataclass(frozen=True, slots=True)
class LinkingPage:
    """The document is an HTML page; `links`: the feeds it links to (maybe none)."""

    links: tuple[FeedLink, ...]
    warning: str | None  # what of the page was over the HTML limits


Found = FeedDocument | LinkingPage


def inspect_document(
    content: bytes, headers: dict[str, str], url: str, page_max_bytes: int
) -> Found:
    """What `content` (fetched from `url`, after redirects) is; ParseError (one line)
    when it is neither a feed nor an HTML page. See the module docstring."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    binary = _magic(content)
    if binary:
        raise ParseError(url, _binary(binary, media_type, content))
    start = _start(content, charset_of(headers.get("content-type", "")), url)
    if start.kind == "html" or (start.kind == "other" and media_type in _HTML_TYPES):
        return feed_links(content[:page_max_bytes], url, headers)
    try:
        parsed = parse_feed(content, headers, url)
    except ParseError as e:
        empty = e.reason.startswith("no entries (") and "unrecognised" not in e.reason
        if start.kind in _FEED_ROOTS and empty:
            return FeedDocument(_format(start), "", 0, None)
        if media_type in _HTML_TYPES or e.reason.startswith("an HTML page"):
            return feed_links(content[:page_max_bytes], url, headers)
        if b"\x00" in content[:1024]:
            raise ParseError(url, _binary("a binary file", media_type, content)) from e
        if "unrecognised format" in e.reason:
            shown = f" ({media_type})" if media_type else ""
            reason = f"neither a feed (RSS, Atom, JSON Feed) nor an HTML page{shown}"
            raise ParseError(url, reason) from e
        raise ParseError(url, f"not a feed: {e.reason}") from e
    return FeedDocument(
        _format(start), plain_title(parsed.title), len(parsed.entries), parsed.warning
    )


def feed_links(content: bytes, url: str, headers: dict[str, str] | None = None) -> LinkingPage:
    """The feeds an HTML page links to in its head (see the module docstring)."""
    limited = limit_html(content)
    root = _html_tree(limited.content, charset_of((headers or {}).get("content-type", "")))
    if root is None:
        return LinkingPage((), limited.warning)
    base = url
    for element in root.iterfind(".//head/base[@href]"):
        base = _absolute(url, str(element.get("href"))) or url
        break
    links: dict[str, FeedLink] = {}
    for element in root.iterfind(".//head//link"):
        rel = str(element.get("rel") or "").lower().split()
        media_type = str(element.get("type") or "").split(";")[0].strip().lower()
        href = str(element.get("href") or "").strip()
        if "alternate" not in rel or media_type not in LINK_TYPES or not href:
            continue
        target = _absolute(base, href)
        if target is None:
            continue
        if media_type == "application/json" and "/wp-json/" in urlsplit(target).path:
            continue
        title = " ".join(str(element.get("title") or "").split())[:200]
        links.setdefault(target, FeedLink(target, LINK_TYPES[media_type], title))
    return LinkingPage(tuple(links.values()), limited.warning)


def _absolute(base: str, href: str) -> str | None:
    """`href` resolved against `base`, if that is an http(s) URL with a host."""
    try:
        target = urljoin(base, href.strip())
        parts = urlsplit(target)
        if parts.scheme in ("http", "https") and parts.hostname:
            return target
    except ValueError:  # "http://[::1" and the like
        pass
    return None


def _html_tree(content: bytes, charset: str) -> Any:
    """lxml's tree of a page, read in the HTTP charset when it names one lxml knows,
    else as UTF-8 when it is valid UTF-8 (libxml2 would read undeclared UTF-8 as
    Latin-1), else as the page's `<meta charset>` says (libxml2 reads that)."""
    encoding = None
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            encoding = None
    if encoding is None:
        try:  # not final: a page cut at the byte cap may end inside a character
            codecs.getincrementaldecoder("utf-8")().decode(content, final=False)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = None
    for attempt in (encoding, None) if encoding else (None,):
        try:
            parser = lxml.html.HTMLParser(encoding=attempt)
            return lxml.html.document_fromstring(content, parser=parser)
        except (ValueError, LookupError, etree.LxmlError):  # empty, or an encoding it lacks
            continue
    return None


def _magic(content: bytes) -> str | None:
    head = content[:16]
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        return "an MP4 or QuickTime file"
    return None


def _binary(what: str, media_type: str, content: bytes) -> str:
    labelled = f"{media_type}, " if media_type else ""
    return f"{what} ({labelled}{len(content):,} bytes), not a feed"


@dataclass(frozen=True, slots=True)
class _Start:
    """How a document starts: `kind` of its first element ("html", "json", a feed
    root "rss", "rdf" or "feed", "other"; "" when its start cannot be read), that
    element's attributes, and the first `_SNIFF_BYTES` as text."""

    kind: str
    attributes: str
    head: str


def _start(content: bytes, charset: str, url: str) -> _Start:
    """Skip the XML declaration, comments, processing instructions and a DOCTYPE
    (`<!DOCTYPE html>` is a page); name the first element. Each step moves on."""
    try:
        text = decode_document(content[:_SNIFF_BYTES], charset, url).text
    except ParseError:
        return _Start("", "", "")
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if text.startswith("{", position):
            return _Start("json", "", text)
        if text.startswith("<?", position):
            end, skip = text.find("?>", position), 2
        elif text.startswith("<!--", position):
            end, skip = text.find("-->", position), 3
        elif text.startswith("<!", position):
            end, skip = text.find(">", position), 1
            words = text[position + 2 : end if end != -1 else None].split()
            if len(words) > 1 and words[0].lower() == "doctype" and words[1].lower() == "html":
                return _Start("html", "", text)
        else:
            break
        if end == -1:
            return _Start("", "", text)
        position = end + skip
    tag = _TAG_NAME.match(text, position)
    if tag is None:
        return _Start("other", "", text)
    name = tag.group(1).lower()
    kind = {"html": "html", "rss": "rss", "feed": "feed", "rdf:rdf": "rdf", "rdf": "rdf"}
    return _Start(kind.get(name, "other"), tag.group(2), text)


def _format(start: _Start) -> str:
    """The feed's format as its root element (or JSON Feed version) declares it."""
    if start.kind == "json":
        version = _JSON_VERSION.search(start.head)
        if version is None:
            return "JSON Feed"
        number = version.group(1)
        return f"JSON Feed {number if '.' in number else number + '.0'}"
    if start.kind == "rss":
        found = _RSS_VERSION.search(start.attributes)
        return f"RSS {found.group(1)}" if found else "RSS"
    if start.kind == "rdf":
        return "RSS 1.0" if "purl.org/rss/1.0" in start.attributes else "RSS 0.90"
    if start.kind == "feed":
        if "www.w3.org/2005/Atom" in start.attributes:
            return "Atom 1.0"
        return "Atom 0.3" if "purl.org/atom/ns" in start.attributes else "Atom"
    return "a feed"
