"""Extract: raw bytes of a text, Markdown or HTML file into an Article.

Rules for plain text (`.txt`), also documented in the README:

* The file must be UTF-8 (a BOM is allowed); a NUL byte in the first 8 KiB
  marks it as binary. Either is an error naming the file, never a guess.
* **Paragraphs.** If any blank line separates text, paragraphs are the blocks
  between blank lines and the lines inside a block are joined with spaces
  (hard-wrapped text). Otherwise every non-empty line is a paragraph (the
  seed corpus' layout).
* **Title.** The first paragraph is the headline when it is a single line of
  at most 20 words, does not end in `.`, `,`, `;` or `:`, and something
  follows it. Otherwise the title is the opening of the first sentence,
  shortened to about 90 characters.
* **Date.** Files carry none, so the file's modification time is used.

**Outlet** (who published a saved article: a folder of saved pages often holds
many, and boilerplate is told per outlet). First found wins: Markdown front
matter `source:`, `outlet:`, `site_name:`, `publisher:`, then the host of its
`canonical_url:`, `canonical:`, `url:` or `link:`; for HTML, the page's
`og:site_name` (or `application-name`), then the host of its canonical URL.
Plain text and feed entries have none: their source (folder or feed) stands in.

Markdown is read by a CommonMark parser (markdown-it-py), with text indented by
four spaces taken as prose, not code. YAML-style front matter (`title:`,
`date:`) is honoured; a leading `#` heading is the title; list items and
headings are their own paragraphs; links keep their text; images, fenced code
and comments are dropped; HTML blocks are read like a feed entry's HTML.

HTML goes to trafilatura (the only module that imports it), which finds the
main text, the title and the date; a page with no main text is an error.

A feed entry's HTML fragment is split into paragraphs directly; a feed's
entries arrive already split (`RawDocument.paragraphs`, read in the parse
worker, see entrytext.py), and those paragraphs are taken as they are. An
entry with a title and no text (a headline-only feed) keeps its title as its
only paragraph: readers of such feeds expect the headline, and a short
paragraph never matches anything (it is below the unit size).

All HTML, pages and fragments, first goes through the linear limits of
htmllimits.py; what they cut is logged with the document's location.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aggregator.errors import ExtractError
from aggregator.model import Article, RawDocument, parse_iso_date
from aggregator.segment import split_sentences

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

# An HTML fragment from a feed entry: no page around it, so no trafilatura.
FRAGMENT = "text/html-fragment"

# Front matter keys naming the outlet, first found wins (then a URL's host).
OUTLET_KEYS = ("source", "outlet", "site_name", "publisher")
_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")
_MAX_HEADLINE_WORDS = 20


def extract(doc: RawDocument) -> Article:
    """Title, date and paragraphs of one document; ExtractError if there is no text."""
    if b"\x00" in doc.content[:8192]:
        raise ExtractError(doc.location, "binary file (contains NUL bytes)")
    if doc.media_type == FRAGMENT and doc.paragraphs is not None:
        title, published, outlet = "", None, None
        paragraphs = list(doc.paragraphs)
    elif doc.media_type in ("text/html", FRAGMENT):
        # trafilatura is slow to import; only pay for it when there is HTML.
        from aggregator import htmltext

        if doc.media_type == FRAGMENT:
            title, published, outlet = "", None, None
            paragraphs = htmltext.fragment_paragraphs(doc.content, doc.location)
        else:
            title, published, paragraphs, outlet = htmltext.extract_html(doc.content, doc.location)
    else:
        text = _decode(doc)
        outlet = None
        if doc.media_type == "text/markdown":
            title, published, paragraphs, outlet = _markdown(text, doc.location)
        else:
            title, published, paragraphs = _plain(text)
    title = doc.title or title
    published = doc.published_at or published
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs and doc.media_type == FRAGMENT and title:
        paragraphs = [title]
    if not paragraphs:
        raise ExtractError(doc.location, "no text found")
    if not title:
        title = _title_from(paragraphs[0])
    elif len(paragraphs) > 1 and paragraphs[0] == title:
        paragraphs = paragraphs[1:]  # the page's own heading, repeated as its first block
    return Article(
        title=title,
        published_at=published or doc.modified_at,
        paragraphs=tuple(paragraphs),
        outlet=outlet if doc.source_kind == "folder" else None,
    )


def _decode(doc: RawDocument) -> str:
    try:
        text = doc.content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractError(
            doc.location, f"not UTF-8 text (byte 0x{doc.content[e.start]:02x} at offset {e.start})"
        ) from e
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _clean(line: str) -> str:
    return " ".join(line.split())


def _blocks(text: str) -> list[str]:
    """Paragraphs by the blank-line rule, falling back to one per line."""
    stripped = text.strip()
    if _BLANK_LINE.search(stripped):
        return [_clean(block) for block in _BLANK_LINE.split(stripped) if block.strip()]
    return [_clean(line) for line in stripped.split("\n") if line.strip()]


def _is_headline(first: str, rest_exists: bool) -> bool:
    return (
        rest_exists
        and "\n" not in first
        and len(first.split()) <= _MAX_HEADLINE_WORDS
        and not first.rstrip().endswith((".", ",", ";", ":"))
    )


def _plain(text: str) -> tuple[str, datetime | None, list[str]]:
    stripped = text.strip()
    if not stripped:
        return "", None, []
    blocks = _blocks(stripped)
    raw_first = _BLANK_LINE.split(stripped)[0] if _BLANK_LINE.search(stripped) else blocks[0]
    if _is_headline(raw_first.strip(), len(blocks) > 1):
        return blocks[0], None, blocks[1:]
    return "", None, blocks


def _title_from(paragraph: str, limit: int = 90) -> str:
    spans = split_sentences(paragraph)
    sentence = paragraph[spans[0][0] : spans[0][1]] if spans else paragraph
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


@functools.cache
def _markdown_parser() -> MarkdownIt:
    """CommonMark, less indented code: news text indented by four spaces is prose."""
    from markdown_it import MarkdownIt  # 30 ms to import; only paid for Markdown

    return MarkdownIt("commonmark").disable("code")


def _markdown(text: str, location: str = "") -> tuple[str, datetime | None, list[str], str | None]:
    """Title, date and paragraphs of a Markdown file, by a CommonMark parser.

    markdown-it-py is linear on unclosed brackets, emphasis and comments, where
    the regular expressions this replaced were quadratic (40 KB of `[` took 6 s).
    Every paragraph, heading and list item is a paragraph; a level-1 heading
    before any text is the title; fenced code, comments, images and raw inline
    tags are dropped; an HTML block is read like a feed entry's HTML.
    """
    title, published = "", None
    said: dict[str, str] = {}
    front = _FRONT_MATTER.match(text)
    if front:
        text = text[front.end() :]
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            value = value.strip().strip("'\"")
            if key.strip() == "title":
                title = value
            elif key.strip() == "date":
                published = parse_iso_date(value)
            elif value:
                said[key.strip().lower()] = " ".join(value.split())
    paragraphs: list[str] = []
    tokens = _markdown_parser().parse(text)
    for before, token in zip([None, *tokens], tokens, strict=False):
        if token.type == "inline":
            line = _clean(_inline_text(token.children or []))
            if not title and not paragraphs and before is not None and before.tag == "h1":
                title = line
            else:
                paragraphs.append(line)
        elif token.type == "html_block" and not token.content.lstrip().startswith("<!--"):
            from aggregator import htmltext  # lxml, only for Markdown with HTML in it

            paragraphs.extend(htmltext.fragment_paragraphs(token.content.encode(), location))
    return title, published, [p for p in paragraphs if p], _front_matter_outlet(said)


def _front_matter_outlet(said: dict[str, str]) -> str | None:
    """Who published a saved article, by its front matter: a name, else its URL's host."""
    for key in OUTLET_KEYS:
        if said.get(key):
            return said[key]
    for key in ("canonical_url", "canonical", "url", "link"):
        host = urlsplit(said.get(key, "")).hostname
        if host:
            return host.removeprefix("www.")
    return None


def _inline_text(children: list[Token]) -> str:
    """The words of one inline run: text, code and link text; not images or tags."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)
