"""The trafilatura wrapper: main text, title and date of an HTML page.

The only module that imports trafilatura. trafilatura returns None when it
finds no main text; we turn that into an ExtractError with the page's location
so the cause is never lost. Paragraph breaks in its text output are newlines.
When a page has no article, trafilatura's fallbacks return what text there is
(menus, a copyright line); a result with no paragraph of `MIN_PROSE_WORDS`
words is therefore treated as "no article text" too.
Its own logging is chatty on malformed pages, so it is capped at ERROR here.

**Limits.** Every document goes through `htmllimits.limit_html` (a linear
scan of its bytes) before lxml or trafilatura parses it: an element's excess
attributes are cut, a document past 250,000 tags or 16 MiB is cut, a text or
tag past 4 MiB is cut, each with a one-line warning. Nesting: a fragment is
parsed, and a page whose nesting the scan bounds above 200 is parsed once by
lxml to see; if libxml2 stopped at its depth limit of 256 (dropping the rest
of the document), the document is scanned again with its nesting flattened
below 200 and read again, text kept. `read_page` and `read_fragment` return
the warning for the caller to record (the parse workers carry it back to the
poller, which puts it in the feed's `last_warning`); `extract_html` and
`fragment_paragraphs`, used in process for files, log it. Should libxml2
still stop at one of its limits, that is said in the warning too ("the text
after that point was lost"): never silent.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lxml.html
from lxml import etree

from aggregator.errors import ExtractError
from aggregator.model import parse_iso_date
from aggregator.sources.htmllimits import MAX_DEPTH, limit_html
from aggregator.sources.pageclean import drop_title_repeats, prune_page

log = logging.getLogger(__name__)
logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)

MIN_PROSE_WORDS = 8


@dataclass(frozen=True, slots=True)
class Page:
    """What `read_page` finds in an HTML page; `warning`: what of it was over the limits."""

    title: str
    published: datetime | None
    paragraphs: tuple[str, ...]
    outlet: str | None
    warning: str | None


def extract_html(
    content: bytes, location: str
) -> tuple[str, datetime | None, list[str], str | None]:
    """(title, published date or None, paragraphs, outlet or None) of the page's main text.

    The outlet is the page's `og:site_name` (or `application-name`...), else the
    host of its canonical URL: trafilatura's `sitename`. What was over the limits
    is logged (files are read in process; see `read_page` for the workers).
    """
    page = read_page(content, location)
    if page.warning:
        log.warning("HTML over the limits location=%s: %s", location, page.warning)
    return page.title, page.published, list(page.paragraphs), page.outlet


def read_page(content: bytes, location: str, clean: bool = True) -> Page:
    """The main text of an HTML page, after `limit_html`; ExtractError if it has none.

    `clean=False` reads it as trafilatura alone does, without `pageclean.py`
    (for bench/pages.py, which measures what that stage changes)."""
    # Imported on first use: trafilatura costs about 0.2 s to import, which commands
    # that never read a page (status, clusters, digest) should not pay.
    import trafilatura

    limited = limit_html(content)
    lost: list[str] = []
    if limited.depth > MAX_DEPTH:  # the scan's bound says libxml2 might stop: ask it
        lost = _parse_limits(limited.content)
        if any("depth" in message for message in lost):
            limited = limit_html(content, flatten=True)
            lost = _parse_limits(limited.content)
    warning = _with_lost(limited.warning, lost)
    result, paragraphs, pruned = _extract(trafilatura, limited.content, location, prune=clean)
    if pruned and not _has_prose(paragraphs):
        # What pageclean.py took for comments or ads was the story: read the page as it is.
        result, paragraphs, _ = _extract(trafilatura, limited.content, location, prune=False)
    if not _has_prose(paragraphs):
        reason = "no article text found in HTML"
        raise ExtractError(location, f"{reason} ({warning})" if warning else reason)
    title = " ".join((getattr(result, "title", None) or "").split())
    return Page(
        title,
        parse_iso_date(date) if isinstance(date := getattr(result, "date", None), str) else None,
        tuple(paragraphs),
        _outlet(getattr(result, "sitename", None)),
        warning,
    )


def _extract(
    trafilatura: Any, content: bytes, location: str, prune: bool
) -> tuple[Any, list[str], bool]:
    """trafilatura's result for the page (None if it found nothing), its paragraphs
    (the title's repeat dropped if `prune`), and whether comment threads or ads were
    removed first (only if `prune`)."""
    try:
        tree = trafilatura.load_html(content)
        if tree is None:
            raise ExtractError(location, "no HTML document found")
        pruned = bool(prune_page(tree)) if prune else False
        result: Any = trafilatura.bare_extraction(
            tree,
            url=location if location.startswith(("http://", "https://")) else None,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
        )
    except ExtractError:
        raise
    except Exception as e:  # trafilatura raises assorted lxml/ValueError types on bad markup
        raise ExtractError(location, f"HTML extraction failed: {type(e).__name__}: {e}") from e
    lines = (" ".join(line.split()) for line in (getattr(result, "text", None) or "").split("\n"))
    title = getattr(result, "title", None) or ""
    paragraphs = [line for line in lines if line]
    if prune:
        paragraphs = list(drop_title_repeats(paragraphs, [title]))
    return result, paragraphs, pruned


def _has_prose(paragraphs: list[str]) -> bool:
    return any(len(p.split()) >= MIN_PROSE_WORDS for p in paragraphs)


def _parse_limits(content: bytes) -> list[str]:
    """libxml2's limits `content` runs into (its messages), parsed as lxml does on its
    own. trafilatura parses a page itself, so this is a second parse (about a tenth
    of trafilatura's time), only for pages the scan says may nest too deep."""
    parser = lxml.html.HTMLParser()
    with contextlib.suppress(etree.ParserError, ValueError):
        lxml.html.document_fromstring(content, parser=parser)
    return _limits_hit(parser)


def _limits_hit(parser: Any) -> list[str]:
    """The limits libxml2 stopped at in the parser's last parse: after one, the rest
    of the document is gone (its depth limit of 256, a text node past 10 MB)."""
    return [
        " ".join(e.message.split()) for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT"
    ]


def _with_lost(warning: str | None, lost: list[str]) -> str | None:
    """`warning`, and what libxml2's limits cost, never silent."""
    if not lost:
        return warning
    said = f"libxml2 stopped at its limit ({lost[0]}): the text after that point was lost"
    return f"{warning}; {said}" if warning else said


def _outlet(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    name = " ".join(name.split())
    return name[4:] if name.lower().startswith("www.") else name


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DROPPED = frozenset(("script", "style"))
_BLOCKS = frozenset(
    "p div li blockquote h1 h2 h3 h4 h5 h6 pre td th dd dt figcaption section article".split()
)


def fragment_paragraphs(content: bytes, location: str = "") -> list[str]:
    """Paragraphs of an HTML fragment; what was over the limits is logged.

    For callers in process (a Markdown file's HTML blocks); see `read_fragment`.
    """
    paragraphs, warning = read_fragment(content)
    if warning:
        log.warning("HTML over the limits location=%s: %s", location or "-", warning)
    return paragraphs


def read_fragment(content: bytes) -> tuple[list[str], str | None]:
    """Paragraphs of an HTML fragment (a feed entry's content), one per block element,
    and what of it was over the limits (`limit_html`), or None.

    Scripts, styles and comments are dropped; `<br>` breaks a line. Plain text
    with no markup gives one paragraph per line. A fragment that is a whole page
    (`<html>`, `<head>`) gives the text of its body. The tree is only read,
    never changed: lxml refuses to set text holding characters XML cannot carry
    (`&#1;` parses into one), so those are dropped from the text afterwards.
    """
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        return [], None
    encoded = text.encode()
    limited = limit_html(encoded)
    try:
        root, lost = _parse_fragment(limited.content)
        if any("depth" in message for message in lost):  # flatten, and read it again
            limited = limit_html(encoded, flatten=True)
            root, lost = _parse_fragment(limited.content)
    except etree.ParserError:  # "Document is empty": comments, or markup-like text
        return _lines(_without_comments(text)), limited.warning  # such as a bare "<!DOCTYPE"
    warning = _with_lost(limited.warning, lost)
    if root is None:  # <html> or <frameset> alone: no body, no text
        return [], warning
    return _lines(_text_with_breaks(root)), warning


def _parse_fragment(content: bytes) -> tuple[Any, list[str]]:
    """The body of a fragment's tree (or None), and the limits libxml2 stopped at.

    A parser per call: its error log is this parse's, and callers on several
    threads must not share one (2 microseconds to make)."""
    parser = lxml.html.HTMLParser(encoding="utf-8")
    root = lxml.html.document_fromstring(content, parser=parser).find("body")
    return root, _limits_hit(parser)


def clean_paragraphs(paragraphs: tuple[str, ...] | list[str]) -> list[str]:
    """Paragraphs as `read_fragment` gives them back from `<p>` elements holding them:
    characters XML cannot carry dropped, white space collapsed, empty ones left out."""
    return _lines("\n".join(paragraphs))


def _lines(text: str) -> list[str]:
    lines = _NOT_XML.sub("", text).split("\n")
    return [" ".join(line.split()) for line in lines if line.strip()]


def _without_comments(text: str) -> str:
    """`text` less its `<!-- -->` comments (an unclosed one runs to the end), in one pass."""
    kept: list[str] = []
    start = 0
    while (opening := text.find("<!--", start)) != -1:
        kept.append(text[start:opening])
        closing = text.find("-->", opening + 4)
        start = len(text) if closing == -1 else closing + 3
    kept.append(text[start:])
    return "".join(kept)


def _text_with_breaks(root: Any) -> str:
    """The text under `root`, with a newline around each block element and at each
    `<br>`; scripts, styles and comments left out (their tails kept). Iterative, so
    deep nesting cannot exhaust the stack."""
    parts: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        tag = node.tag if isinstance(node.tag, str) else ""  # "": a comment or PI
        if closing or not tag or tag in _DROPPED:
            if closing and tag in _BLOCKS:
                parts.append("\n")
            if node.tail and node is not root:
                parts.append(node.tail)
            continue
        if tag == "br" or tag in _BLOCKS:
            parts.append("\n")
        parts.append(node.text or "")
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return "".join(parts)
