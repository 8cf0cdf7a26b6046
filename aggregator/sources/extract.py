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

**Large files** (issue 13, item 5). `extract_within`, which ingest uses,
reads a document only as far as the `[ingest]` caps need (caps.py): plain
text paragraph by paragraph (plaintext.py), Markdown in chunks of
`MARKDOWN_CHUNK` characters (`MarkdownReader`), an HTML page cut before
trafilatura once it holds twice what the caps keep (pagecut.py). `extract`
reads all of a document.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator.config import IngestConfig
from aggregator.errors import ExtractError
from aggregator.model import Article, RawDocument, parse_iso_date
from aggregator.sentences import split_sentences
from aggregator.sources.caps import ListReader, Reader, Tally, cap_article, gather
from aggregator.sources.pagecut import cut_page
from aggregator.sources.plaintext import PlainReader, clean

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

# An HTML fragment from a feed entry: no page around it, so no trafilatura.
FRAGMENT = "text/html-fragment"

# Front matter keys naming the outlet, first found wins (then a URL's host).
OUTLET_KEYS = ("source", "outlet", "site_name", "publisher")


def extract(doc: RawDocument) -> Article:
    """Title, date and paragraphs of one document; ExtractError if there is no text."""
    return _read(doc, None)[0]


def extract_within(doc: RawDocument, caps: IngestConfig) -> tuple[Article, str | None]:
    """`extract`, reading only as far as the caps need, and the article cut to them
    with the one-line account of what was cut (None: nothing); see caps.py."""
    article, tally = _read(doc, caps)
    return cap_article(article, caps, tally)


def _read(doc: RawDocument, caps: IngestConfig | None) -> tuple[Article, Tally]:
    """The article of `doc`, holding what the caps need of it (all of it without
    caps), and the tally of the whole document."""
    if b"\x00" in doc.content[:8192]:
        raise ExtractError(doc.location, "binary file (contains NUL bytes)")
    published: datetime | None = None
    outlet: str | None = None
    reader: Reader
    if doc.media_type == FRAGMENT and doc.paragraphs is not None:
        reader = ListReader(doc.paragraphs)
    elif doc.media_type in ("text/html", FRAGMENT):
        # trafilatura is slow to import; only pay for it when there is HTML.
        from aggregator.sources import htmltext

        if doc.media_type == FRAGMENT:
            reader = ListReader(htmltext.fragment_paragraphs(doc.content, doc.location))
        else:
            content, extent = cut_page(doc.content, caps) if caps else (doc.content, None)
            title, published, paragraphs, outlet = htmltext.extract_html(content, doc.location)
            reader = ListReader(paragraphs, title, extent)
    elif doc.media_type == "text/markdown":
        markdown = MarkdownReader(_decode(doc), doc.location)
        reader, published, outlet = markdown, markdown.published, markdown.outlet
    else:
        reader = PlainReader(_decode(doc))
    title, paragraphs, tally = gather(reader, caps, doc.title or "")
    if not paragraphs and doc.media_type == FRAGMENT and title:
        paragraphs, tally = [title], Tally(1, len(title))
    if not paragraphs:
        raise ExtractError(doc.location, "no text found")
    article = Article(
        title=title or _title_from(paragraphs[0]),
        published_at=doc.published_at or published or doc.modified_at,
        paragraphs=tuple(paragraphs),
        outlet=outlet if doc.source_kind == "folder" else None,
        dated=bool(doc.published_at or published),
    )
    return article, tally


def _decode(doc: RawDocument) -> str:
    try:
        text = doc.content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractError(
            doc.location, f"not UTF-8 text (byte 0x{doc.content[e.start]:02x} at offset {e.start})"
        ) from e
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _title_from(paragraph: str, limit: int = 90) -> str:
    spans = split_sentences(paragraph)
    sentence = paragraph[spans[0][0] : spans[0][1]] if spans else paragraph
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
# Characters of Markdown parsed at a time: a file up to this size is parsed whole.
MARKDOWN_CHUNK = 2 * 1024 * 1024
# Blocks that may be cut at a line end when one fills a chunk alone.
_CUT_INSIDE = ("bullet_list_open", "ordered_list_open", "blockquote_open")


@functools.cache
def _markdown_parser() -> MarkdownIt:
    """CommonMark, less indented code: news text indented by four spaces is prose."""
    from markdown_it import MarkdownIt  # 30 ms to import; only paid for Markdown

    return MarkdownIt("commonmark").disable("code")


class MarkdownReader:
    """Title, date, outlet and paragraphs of a Markdown file, by a CommonMark parser.

    markdown-it-py is linear on unclosed brackets, emphasis and comments, where
    the regular expressions this replaced were quadratic (40 KB of `[` took 6 s).
    Every paragraph, heading and list item is a paragraph; a level-1 heading
    before any text is the title; fenced code, comments, images and raw inline
    tags are dropped; an HTML block is read like a feed entry's HTML.

    **Large files are parsed in chunks** of `MARKDOWN_CHUNK` characters, as the
    caps ask for paragraphs (see `caps.Reader`): markdown-it holds about 15
    bytes of tokens per byte of text (150 MB for 10 MB), so a whole parse cost
    more than everything else the file needed. A chunk ends at a line end; the
    last top-level block of a chunk that is not the file's last (a paragraph,
    list, quote, fence or HTML block that may go on) is left to the next chunk,
    which starts where that block starts, so every block is parsed whole. Only
    a list or quote that fills a chunk alone is cut at the chunk's end (its
    items read the same on either side); any other block that fills a chunk
    alone is parsed with more text until it ends. Link reference definitions
    carry forward from chunk to chunk; a reference used before its definition
    in a later chunk is left as written ("[text][ref]"). Files up to
    `MARKDOWN_CHUNK` are parsed whole, as before.
    """

    def __init__(self, text: str, location: str = "") -> None:
        self._text = text
        self._location = location
        self.title = ""
        self.published: datetime | None = None
        said: dict[str, str] = {}
        front = _FRONT_MATTER.match(text)
        self._position = front.end() if front else 0  # where the next chunk starts
        for line in front.group(1).splitlines() if front else ():
            key, _, value = line.partition(":")
            value = value.strip().strip("'\"")
            if key.strip() == "title":
                self.title = value
            elif key.strip() == "date":
                self.published = parse_iso_date(value)
            elif value:
                said[key.strip().lower()] = " ".join(value.split())
        self.outlet = _front_matter_outlet(said)
        self._env: dict[str, Any] = {}  # markdown-it's: the link references found so far
        self._found = False  # a paragraph (even an empty one) was found: no title after it
        self._ready: deque[str] = deque()
        while not self._found and self._position < len(text):
            self._parse_chunk()  # a leading heading may be the title: settle it now

    def take(self, room: int) -> tuple[str, int] | None:
        while not self._ready and self._position < len(self._text):
            self._parse_chunk()
        if not self._ready:
            return None
        paragraph = self._ready.popleft()
        return paragraph, len(paragraph)

    def rest(self) -> tuple[int, int]:
        """The paragraphs of the chunks parsed already; the rest is not read."""
        return len(self._ready), sum(map(len, self._ready))

    def extent(self) -> tuple[int, int, str] | None:
        if self._position >= len(self._text):
            return None
        return self._position, len(self._text), "characters"

    def _parse_chunk(self) -> None:
        text, start = self._text, self._position
        size = MARKDOWN_CHUNK
        while True:
            end = _chunk_end(text, start + size)
            tokens = _markdown_parser().parse(text[start:end], self._env)
            if end == len(text) or not tokens:
                break
            last = _last_block(tokens)
            lines = tokens[last].map if last > 0 else None
            if lines:  # the blocks before the last one are whole: keep them
                end = _line_start(text, start, lines[0])
                tokens = tokens[:last]
                break
            if tokens[0].type in _CUT_INSIDE:
                break
            size *= 2
        self._position = end
        for before, token in zip([None, *tokens], tokens, strict=False):
            if token.type == "inline":
                line = clean(_inline_text(token.children or []))
                if not self.title and not self._found and before is not None and before.tag == "h1":
                    self.title = line
                else:
                    self._add([line])
            elif token.type == "html_block" and not token.content.lstrip().startswith("<!--"):
                from aggregator.sources import htmltext  # lxml, only for Markdown with HTML in it

                self._add(htmltext.fragment_paragraphs(token.content.encode(), self._location))

    def _add(self, paragraphs: list[str]) -> None:
        self._found = self._found or bool(paragraphs)
        self._ready.extend(p for p in paragraphs if p)


def _last_block(tokens: list[Token]) -> int:
    """The index of the token opening the last top-level block (-1: none)."""
    for index in range(len(tokens) - 1, -1, -1):
        if tokens[index].level == 0 and tokens[index].nesting >= 0:
            return index
    return -1


def _chunk_end(text: str, position: int) -> int:
    """Where the first line ending at or after `position` ends (after its newline);
    the text's end if none does."""
    if position >= len(text):
        return len(text)
    newline = text.find("\n", max(position - 1, 0))
    return len(text) if newline == -1 else newline + 1


def _line_start(text: str, start: int, lines: int) -> int:
    """Where the line `lines` lines after the one starting at `start` starts."""
    for _ in range(lines):
        start = text.find("\n", start) + 1
    return start


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
