"""The trafilatura wrapper: main text, title and date of an HTML page.

The only module that imports trafilatura. trafilatura returns None when it
finds no main text; we turn that into an ExtractError with the page's location
so the cause is never lost. Paragraph breaks in its text output are newlines.
When a page has no article, trafilatura's fallbacks return what text there is
(menus, a copyright line); a result with no paragraph of `MIN_PROSE_WORDS`
words is therefore treated as "no article text" too.
Its own logging is chatty on malformed pages, so it is capped at ERROR here.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import lxml.html
from lxml import etree

from aggregator.errors import ExtractError
from aggregator.model import parse_iso_date

logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)

MIN_PROSE_WORDS = 8


def extract_html(
    content: bytes, location: str
) -> tuple[str, datetime | None, list[str], str | None]:
    """(title, published date or None, paragraphs, outlet or None) of the page's main text.

    The outlet is the page's `og:site_name` (or `application-name`...), else the
    host of its canonical URL: trafilatura's `sitename`.
    """
    # Imported on first use: trafilatura costs about 0.2 s to import, which commands
    # that never read a page (status, clusters, digest) should not pay.
    import trafilatura

    try:
        result: Any = trafilatura.bare_extraction(
            content,
            url=location if location.startswith(("http://", "https://")) else None,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
        )
    except Exception as e:  # trafilatura raises assorted lxml/ValueError types on bad markup
        raise ExtractError(location, f"HTML extraction failed: {type(e).__name__}: {e}") from e
    text = getattr(result, "text", None) or ""
    paragraphs = [" ".join(line.split()) for line in text.split("\n")]
    paragraphs = [p for p in paragraphs if p]
    if not any(len(p.split()) >= MIN_PROSE_WORDS for p in paragraphs):
        raise ExtractError(location, "no article text found in HTML")
    return (
        " ".join((getattr(result, "title", None) or "").split()),
        parse_iso_date(date) if isinstance(date := getattr(result, "date", None), str) else None,
        paragraphs,
        _outlet(getattr(result, "sitename", None)),
    )


def _outlet(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    name = " ".join(name.split())
    return name[4:] if name.lower().startswith("www.") else name


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UTF8_PARSER = lxml.html.HTMLParser(encoding="utf-8")
_DROPPED = frozenset(("script", "style"))
_BLOCKS = frozenset(
    "p div li blockquote h1 h2 h3 h4 h5 h6 pre td th dd dt figcaption section article".split()
)


def fragment_paragraphs(content: bytes) -> list[str]:
    """Paragraphs of an HTML fragment (a feed entry's content), one per block element.

    Scripts, styles and comments are dropped; `<br>` breaks a line. Plain text
    with no markup gives one paragraph per line. A fragment that is a whole page
    (`<html>`, `<head>`) gives the text of its body. The tree is only read,
    never changed: lxml refuses to set text holding characters XML cannot carry
    (`&#1;` parses into one), so those are dropped from the text afterwards.
    """
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        return []
    try:
        root = lxml.html.document_fromstring(text.encode(), parser=_UTF8_PARSER).find("body")
    except etree.ParserError:  # "Document is empty": comments, or markup-like text
        return _lines(_without_comments(text))  # such as a bare "<!DOCTYPE"
    if root is None:  # <html> or <frameset> alone: no body, no text
        return []
    return _lines(_text_with_breaks(root))


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
