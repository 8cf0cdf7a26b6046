"""Fast feed path: well-formed RSS 2.0 and Atom 1.0 read with lxml, or declined.

feedparser is most of a feed parse (issue 15). `parse_well_formed` reads the
documents whose result it can give *exactly* as `parse.parse_feed` gets it from
feedparser, and returns None for the others, which feedparser parses as before.

* **Same input, checks first.** It gets the bytes feedparser would get (decoded
  by `encoding.py`, refused if they declare an entity, re-encoded as UTF-8 that
  says so) and the same headers: the encoding rules hold by construction.
* **lxml, strictly**: no entities resolved, no network, no DTD, `huge_tree` off
  (libxml2's depth and text limits stand); comments and processing
  instructions dropped, as feedparser ignores them. A libxml2 error or warning,
  a DOCTYPE, or a non-ASCII element or attribute name (expat and libxml2 differ
  there) declines: only what feedparser's strict parser reads too is read here.
* **feedparser's walk, on a subset.** Elements get feedparser's names (its
  namespace prefixes, lower case). `<rss version="2.0">` with one `<channel>`,
  or an Atom 1.0 `<feed>`. Per entry at most one title, id (guid), summary
  (description), content (content:encoded), published and updated element, each
  a direct child without children; links replayed in order (a permalink guid is
  the link until a link element says otherwise). Elements whose handlers touch
  nothing we read (categories, authors, media:content...) may be anywhere else,
  and so may unhandled ones, unless feedparser would store them under a key we
  read. The rest declines: other formats, xml:base or any `base` attribute
  (feedparser keeps it for the rest of the document), namespaced attributes but
  xml:lang, content types but text and html (xhtml, base64), a prefix that could
  reach another namespace's handlers, the RSS 1.0 and 0.90 namespaces.
* **feedparser's own functions**: dates, its HTML test for RSS titles, URI
  joining, its Windows-1252 map and namespace table, called as it calls them so
  they cannot drift (if they move, the fast path is off: `AVAILABLE`). Texts get
  what its `pop` does: stripped, UTF-8 read as Latin-1 repaired, C1 mapped.
* **Warnings and errors**: the encoding's warning is passed on, a non-XML media
  type gives feedparser's NonXMLContentType warning. No entries, or any
  exception in here, declines: feedparser then gives its own answer.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import Any

from lxml import etree

from aggregator.sources.parse import FeedEntry, ParsedFeed, _struct_time, plain_title

_ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Declaring either sets feedparser's version before <rss> or <feed> can.
_VERSION_URIS = frozenset(("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"))
_TEXT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html"}
_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml", "html", "xhtml"))
_C1 = re.compile("[\x80-\x9f]")
_QUERY_ENTITY = re.compile("&([A-Za-z0-9_]+);")  # feedparser's repair of links
_XML_MEDIA = frozenset(
    "application/xml application/xml-dtd application/xml-external-parsed-entity "
    "text/xml text/xml-external-parsed-entity".split()
)
# Entry fields: feedparser element name -> the field it sets (at most one element each).
_FIELDS = {
    name: field
    for field, names in (
        ("title", "title"),
        ("id", "guid id"),
        ("summary", "description dc_description summary itunes_summary"),
        ("content", "content content_encoded"),
        ("published", "pubdate published issued dcterms_issued"),
        ("updated", "updated modified lastbuilddate dc_date dcterms_modified"),
    )
    for name in names.split()
}
# Handled elements whose handlers touch nothing we read, nor the state our fields depend on.
_HARMLESS = frozenset(
    "category dc_subject media_category author dc_author dc_creator itunes_author "
    "managingeditor contributor dc_contributor name email uri url homepage webmaster "
    "dc_publisher itunes_owner itunes_name itunes_email itunes_category itunes_image "
    "itunes_explicit itunes_block enclosure media_content media_thumbnail media_group "
    "media_credit generator cloud language dc_language".split()
)
# The same for text constructs (read only without child elements), per context.
_LEAVES = frozenset("rights copyright dc_rights subtitle tagline itunes_subtitle".split())
_FEED_LEAVES = _LEAVES | {"description", "dc_description", "summary", "itunes_summary"}
_ENTRY_LEAVES = _LEAVES | {"source"}
# Dates feedparser parses outside the entry fields (an exception there is its crash).
_ENTRY_DATES = frozenset(("created", "dcterms_created"))
_FEED_DATES = _ENTRY_DATES | {n for n, f in _FIELDS.items() if f in ("published", "updated")}
_BOXES = {  # RSS channel children feedparser reads in a context of their own
    "image": frozenset(("title", "url", "link", "width", "height", "description")),
    "textinput": frozenset(("title", "description", "name", "link")),
}
# What feedparser stores that we read, per context: an unhandled element must not land there.
_FEED_KEYS = frozenset("title title_detail link links ttl id guidislink".split())
_ENTRY_KEYS = _FEED_KEYS - {"ttl"} | {"summary", "summary_detail", "content"}
_ENTRY_KEYS |= {"published", "published_parsed", "updated", "updated_parsed"}
_PARSER = {"resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False}
_PARSER |= {"remove_comments": True, "remove_pis": True, "collect_ids": False}

try:  # feedparser's internals (see above); where they are not, the fast path is off
    from feedparser.datetimes import _parse_date
    from feedparser.html import _cp1252
    from feedparser.mixin import _FeedParserMixin
    from feedparser.urls import _urljoin
    from feedparser.util import FeedParserDict

    _looks_like_html = _FeedParserMixin.looks_like_html
    _CP1252 = dict(_cp1252)
    _KEYMAP: dict[str, Any] = dict(FeedParserDict.keymap)  # key aliases: "date" is "updated"
    _PREFIXES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
    _CANONICAL = frozenset(prefix.lower() for prefix in _PREFIXES.values() if prefix)
    _methods = [n for n in dir(_FeedParserMixin) if n.startswith(("_start_", "_end_"))]
    _HANDLED = frozenset(n.split("_", 2)[2].lower() for n in _methods)  # names with a handler
    AVAILABLE = True
except (ImportError, AttributeError):
    AVAILABLE = False


class _Decline(Exception):
    """The document is outside the subset: feedparser reads it."""


def parse_well_formed(
    document: bytes, headers: dict[str, str], warning: str | None
) -> ParsedFeed | None:
    """The feed as `parse_feed` gets it from feedparser, or None: feedparser must read it.
    `document` and `headers` are what feedparser would be handed, `warning` the encoding's."""
    try:
        return _read(document, headers, warning)
    except Exception:  # _Decline, or a case not foreseen: feedparser decides
        return None


def explain(document: bytes, headers: dict[str, str]) -> str | None:
    """Why the fast path declines the document (None: it reads it); for tests and benchmarks."""
    try:
        _read(document, headers, None)
    except Exception as e:
        return str(e) if isinstance(e, _Decline) else f"unexpected {type(e).__name__}: {e}"
    return None


def _media_warning(headers: dict[str, str]) -> str | None:
    """feedparser's NonXMLContentType warning for these headers (its test, case and all)."""
    given = headers.get("content-type")
    media = (given or "").split(";")[0].strip()
    xml = media.startswith(("application/", "text/")) and media.endswith("+xml")
    if not headers or xml or media in _XML_MEDIA:
        return None
    if given is None:
        return "NonXMLContentType: no Content-type specified"
    return f"NonXMLContentType: {given} is not an XML media type"


def _read(document: bytes, headers: dict[str, str], warning: str | None) -> ParsedFeed:
    if not AVAILABLE:
        raise _Decline("feedparser's internals are not where the fast path expects them")
    parser = etree.XMLParser(**_PARSER)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as e:
        raise _Decline(f"not well-formed: {e}") from None
    if len(parser.error_log):
        raise _Decline(f"libxml2 says: {parser.error_log[0].message}")
    if root.getroottree().docinfo.doctype:
        raise _Decline("a DOCTYPE")
    title, link, ttl, entries = _Walk(_unknown_prefixes(root), document.isascii()).feed(root)
    if not entries:
        raise _Decline("no entries")
    return ParsedFeed(
        title=title,
        link=link,
        ttl_minutes=int(ttl) if ttl.isascii() and ttl.isdigit() and len(ttl) <= 9 else None,
        entries=tuple(entries),
        warning="; ".join(w for w in (warning, _media_warning(headers)) if w) or None,
    )


def _unknown_prefixes(root: Any) -> dict[str, str]:
    """Namespace URI -> the prefix feedparser gives its elements, for URIs it does not know
    ("": a default namespace, names left bare). Declines where feedparser's tables of
    prefixes could send an element to another namespace's handler."""
    uris_of: dict[str, set[str]] = {}  # lower-case prefix -> URIs
    prefixes_of: dict[str, set[str]] = {}  # unknown URI -> lower-case prefixes
    for _, (prefix, uri) in etree.iterwalk(root, events=("start-ns",)):
        if not uri:
            continue  # xmlns="": feedparser ignores it
        known, prefix = _known(uri.lower()), prefix.lower()
        if uri.lower() in _VERSION_URIS:
            raise _Decline(f"the namespace {uri} (RSS 1.0 or 0.90)")
        if prefix in _CANONICAL and (known or "").lower() != prefix:
            raise _Decline(f"the prefix {prefix} on another namespace than feedparser's")
        if prefix:
            uris_of.setdefault(prefix, set()).add(uri)
        if known is None:
            prefixes_of.setdefault(uri, set()).add(prefix)
    if any(len(found) > 1 for found in (*uris_of.values(), *prefixes_of.values())):
        raise _Decline("a prefix bound to two namespaces, or a namespace under two prefixes")
    return {uri: prefixes.pop() for uri, prefixes in prefixes_of.items()}


def _known(lowered: str) -> str | None:
    """feedparser's prefix for a (lower-case) namespace URI, None if it does not know it."""
    return "" if "backend.userland.com/rss" in lowered else _PREFIXES.get(lowered)


def _text(element: Any) -> str:
    """A field's text as feedparser joins it, stripped; declines on child elements."""
    if len(element):
        raise _Decline(f"child elements in <{element.tag}>")
    return str(element.text or "").strip()


class _Walk:
    """One document's walk: feedparser's element names and its treatment of each."""

    def __init__(self, unknown: dict[str, str], ascii_names: bool) -> None:
        self.unknown, self.ascii_names = unknown, ascii_names
        self.names: dict[str, str] = {}
        self.atom = self.media_title = False  # media:title: seen in the current entry

    def name(self, element: Any) -> str:
        """feedparser's name for the element ("dc_creator"); checks its attribute names too."""
        tag: str = element.tag
        keys = element.keys()
        if not self.ascii_names and not (tag.isascii() and all(k.isascii() for k in keys)):
            raise _Decline("a non-ASCII element or attribute name")
        if keys and any(k.rpartition("}")[2].lower() == "base" for k in keys):
            raise _Decline("xml:base or a base attribute")
        name = self.names.get(tag)
        if name is None:
            uri, _, local = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
            prefix = (_known(uri.lower()) if uri else "") or self.unknown.get(uri, "")
            if uri and _known(uri.lower()) is None and uri not in self.unknown:
                raise _Decline(f"the namespace {uri} was not seen declared")
            name = self.names[tag] = (
                f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()
            )
        return name

    def attributes(self, element: Any, allowed: tuple[str, ...]) -> dict[str, str]:
        """The attributes as feedparser's handlers see them (names lower case, and the values
        of rel and type); declines any other but xml:lang, which touches nothing we read."""
        found: dict[str, str] = {}
        for key, value in element.items():
            name = key.lower()
            if key != _XML_LANG and (name not in allowed or name in found):
                raise _Decline(f"the attribute {key} on <{element.tag}>")
            found[name] = value.lower() if name in ("rel", "type") else value
        return found

    def popped(self, text: str, resolve: bool = False) -> str:
        """A stripped text as feedparser's `pop` leaves it."""
        if resolve and text:
            text = str(_urljoin("", text))
        if not text.isascii():
            with contextlib.suppress(UnicodeError):  # UTF-8 read as Latin-1, repaired
                text = text.encode("iso-8859-1").decode("utf-8")
            if _C1.search(text):
                text = text.translate(_CP1252)
        return text

    def text_type(self, element: Any, name: str) -> str:
        """The content type feedparser gives a text construct; declines xhtml and base64."""
        default = "html" if name in ("description", "dc_description", "content_encoded") else "text"
        given = self.attributes(element, ("type",)).get("type", default)
        kind = _TEXT_TYPES.get(given, given)
        if kind not in ("text/plain", "text/html"):
            raise _Decline(f"content type {given!r} in <{element.tag}>")
        return kind

    def link(self, element: Any, current: str | None, entry: bool) -> str | None:
        """The context's link after this <link> (feedparser's `_start_link` and `pop`)."""
        text = _text(element)  # with an href too: feedparser still reads what is inside
        attrs = self.attributes(element, ("rel", "type", "href", "hreflang", "title", "length"))
        rel = attrs.get("rel", "alternate")
        if "href" in attrs:
            kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
            html = rel == "alternate" and kind in _HTML_TYPES
            return str(_urljoin("", attrs["href"])) if html else current
        value = self.popped(text, resolve=True)
        return _QUERY_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&") if entry else value)

    def guid(self, element: Any) -> tuple[str, bool]:
        """The id and whether feedparser takes it for a link (isPermaLink absent or "true")."""
        permalink = self.attributes(element, ("ispermalink",)).get("ispermalink", "true") == "true"
        return self.popped(_text(element), resolve=permalink), permalink

    def harmless(self, element: Any, keys: frozenset[str], leaves: frozenset[str]) -> None:
        """Declines unless nothing in the subtree can change what we read in its context.
        media:title in an entry is noted: feedparser keeps the entry's own title over it
        when that title is not empty and no <source> made it forget it (`entry`)."""
        dates = _ENTRY_DATES if keys is _ENTRY_KEYS else _FEED_DATES
        for node in element.iter():
            name = self.name(node)
            if name in leaves or name in dates:
                text = _text(node)
                if name in dates:  # feedparser parses it: an exception there is its crash
                    _parse_date(self.popped(text))
            elif name == "media_title" and keys is _ENTRY_KEYS:
                _text(node)
                self.media_title = True
            elif name in _HANDLED and name not in _HARMLESS:
                raise _Decline(f"<{node.tag}> ({name}) where the fast path does not read it")
            elif name not in _HARMLESS:
                key = _KEYMAP.get(name, name)
                if (key[0] if isinstance(key, list) else key) in keys:
                    raise _Decline(f"<{node.tag}> would be stored as {key}")

    def feed(self, root: Any) -> tuple[str, str, str, list[FeedEntry]]:
        """Feed title, link, ttl text (stripped) and entries."""
        self.atom = self.name(root) == "feed" and root.tag == _ATOM_FEED
        if self.atom:
            container, entry_name = root, "entry"
        elif self.name(root) != "rss":
            raise _Decline(f"not RSS 2.0 or Atom 1.0: <{root.tag}>")
        elif self.attributes(root, ("version",)).get("version") != "2.0":
            raise _Decline("RSS other than version 2.0")
        elif len(root) != 1 or self.name(root[0]) != "channel":
            raise _Decline("<rss> without exactly one <channel>")
        else:
            container, entry_name = root[0], "item"
        self.attributes(container, ())
        title: str | None = None
        link: str | None = None
        ttl = ""
        entries: list[FeedEntry] = []
        for child in container:
            name = self.name(child)
            if name == entry_name:
                entries.append(self.entry(child))
            elif name == "title":
                if title is not None:
                    raise _Decline("two feed titles")
                self.text_type(child, name)
                title = self.popped(_text(child))
            elif name == "link":
                link = self.link(child, link, entry=False)
            elif name in ("id", "guid"):
                value, permalink = self.guid(child)
                link = value if permalink and link is None else link
            elif name == "ttl":  # unhandled: with any attribute, feedparser keeps those instead
                if child.keys():
                    raise _Decline("attributes on <ttl>")
                ttl = self.popped(_text(child))
            elif name in _BOXES and not self.atom:
                for part in child:
                    if self.name(part) not in _BOXES[name] or part.tag[0] == "{":
                        raise _Decline(f"<{part.tag}> in <{child.tag}>")
                    _text(part)
            else:
                self.harmless(child, _FEED_KEYS, _FEED_LEAVES)
        return title or "", link or "", ttl, entries

    def entry(self, item: Any) -> FeedEntry:
        """One entry, its fields as feedparser's handlers leave them."""
        self.attributes(item, ())
        self.media_title = False
        values: dict[str, str] = {}
        dates: dict[str, datetime | None] = {}
        title_type = ""
        link: str | None = None
        for child in item:
            name = self.name(child)
            field = _FIELDS.get(name)
            if name == "link":
                link = self.link(child, link, entry=True)
            elif field is None:
                self.harmless(child, _ENTRY_KEYS, _ENTRY_LEAVES)
            elif field in values:
                raise _Decline(f"two {field} elements in one entry")
            elif field == "title":
                title_type = self.text_type(child, name)
                text = _text(child)
                if not self.atom and title_type == "text/plain" and _looks_like_html(text):
                    title_type = "text/html"
                values[field] = self.popped(text)
            elif field == "id":
                values[field], permalink = self.guid(child)
                link = values[field] if permalink and link is None else link
            elif field in ("summary", "content"):
                self.text_type(child, name)
                values[field] = self.popped(_text(child))
                if field == "content":  # feedparser copies it to the summary if there is none
                    values["content as summary"] = values[field]
            else:  # a date
                self.attributes(child, ())
                values[field] = self.popped(_text(child))
                dates[field] = _struct_time(_parse_date(values[field]))
        sourced = self.media_title and any(self.name(c) == "source" for c in item)
        if self.media_title and (sourced or not values.get("title")):  # see `harmless`
            raise _Decline("media:title without the entry's own title, or with a <source>")
        return FeedEntry(
            guid=values.get("id", ""),
            link=link or "",
            title=plain_title(values.get("title", ""), title_type),
            summary=values.get("summary", values.get("content as summary", "")),
            content=values.get("content", ""),
            published=values.get("published", ""),
            updated=values.get("updated", ""),
            published_at=dates.get("published") or dates.get("updated"),
        )
