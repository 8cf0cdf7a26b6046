"""Caps: how much of one article is kept, decided while the document is read.

Every article, from a file or a feed, is held to the `[ingest]` caps
(`IngestConfig`): a title of at most `max_title_chars`, at most
`max_paragraphs` paragraphs, a text (the paragraphs joined by blank lines) of
at most `max_text_chars`. What this stage decides, and why:

* **What is kept** (`cap_article`). The first paragraphs; the text cap then
  keeps whole paragraphs while they fit and cuts the next one at a space
  (`_cut`) when at least `_MIN_PIECE` characters of room are left there, else
  stops at the paragraph boundary. A cut title or paragraph ends in "…". An
  article always keeps some text (the cap is at least 1 KiB).
* **Reading stops at the caps** (`gather`; issue 13, item 5). A 10 MB file
  used to become 90,000 paragraph strings, a Markdown token list of the whole
  file (300,000 tokens, 150 MB) or a trafilatura tree of the whole page, of
  which the caps then kept 2,000 paragraphs. Readers now hand paragraphs over
  one at a time and `gather` takes only what `cap_article` needs: the first
  `max_paragraphs`, and the one that crosses the text cap only up to
  `max_text_chars + 1` characters (enough to cut it exactly where the whole
  one would be cut). So the article kept is the one a whole read would keep
  (the exceptions, a Markdown file parsed in chunks and a page cut before
  trafilatura, are in `extract.MarkdownReader` and pagecut.py).
* **The warning stays truthful.** It says what was cut, from how much to how
  much. A reader that can count what it does not keep without parsing it
  (plain text: blank lines and words, a linear scan) counts to the end, so
  the figures are exact. Markdown and HTML cannot be counted without their
  parsers, which is the cost being avoided: when such a reader stopped early
  (`Reader.extent`), the figures count what was read ("paragraphs cut from
  at least 18,388 to 2,000") and the warning ends with how much of the
  document that was ("read the first 2,097,198 of 10,485,724 characters").

Figures (peak RSS, wall and CPU time per file shape, before and after) are in
docs/benchmarks.md, "Large files (issue 13, item 5)".
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from aggregator.config import IngestConfig
from aggregator.model import Article

ALL = sys.maxsize  # room that asks a reader for whole paragraphs


@dataclass(frozen=True, slots=True)
class Tally:
    """What a document held: paragraphs and their text (joined by blank lines).

    With `read` set, the document was read only that far (of `size`, in `unit`)
    and both counts are of the part read: lower bounds.
    """

    paragraphs: int
    text_chars: int
    read: int | None = None
    size: int = 0
    unit: str = "bytes"


class Reader(Protocol):
    """The paragraphs of one document, handed over one at a time."""

    @property
    def title(self) -> str:
        """The title the document gives itself ("" if none): known before any `take`."""
        ...

    def take(self, room: int) -> tuple[str, int] | None:
        """The next non-empty paragraph (None after the last) and its length; the text
        is the whole paragraph, or at least its first `room + 1` characters."""
        ...

    def rest(self) -> tuple[int, int]:
        """How many paragraphs are left and their total length, counted without
        keeping them: all of them, or only those read already when the reader
        stops early (see `extent`)."""
        ...

    def extent(self) -> tuple[int, int, str] | None:
        """(read, size, unit) when the document was not read to its end, else None."""
        ...


class ListReader:
    """A reader of paragraphs already in memory (a page's, a feed entry's)."""

    def __init__(
        self,
        paragraphs: Iterable[str],
        title: str = "",
        extent: tuple[int, int, str] | None = None,
    ) -> None:
        self.title = title
        self._paragraphs = iter([p for p in paragraphs if p])
        self._extent = extent

    def take(self, room: int) -> tuple[str, int] | None:
        paragraph = next(self._paragraphs, None)
        return None if paragraph is None else (paragraph, len(paragraph))

    def rest(self) -> tuple[int, int]:
        lengths = [len(p) for p in self._paragraphs]
        return len(lengths), sum(lengths)

    def extent(self) -> tuple[int, int, str] | None:
        return self._extent


def gather(
    reader: Reader, caps: IngestConfig | None, title: str = ""
) -> tuple[str, list[str], Tally]:
    """The title, the paragraphs `cap_article` needs, and the tally of the whole.

    `title`: the one the source gave (a feed entry's), which wins over the
    reader's. A first paragraph equal to the title is dropped when another
    follows (a page's own heading repeated as its first block). With no
    `caps`, every paragraph is kept.
    """
    title = title or reader.title
    most = caps.max_paragraphs if caps else ALL
    limit = caps.max_text_chars if caps else ALL
    item = reader.take(max(limit, len(title)))  # whole, if it could equal the title
    if item is not None and title and item == (title, len(title)):
        item = reader.take(limit) or item
    kept: list[str] = []
    used = count = chars = 0  # text kept; paragraphs and text seen
    while item is not None:
        text, length = item
        joint = 2 if count else 0
        count += 1
        chars += joint + length
        if len(kept) >= most:
            break
        if used + joint + length > limit:
            kept.append(text[: limit + 1])  # enough for `_cut_text` to cut it as a whole one
            break
        kept.append(text)
        used += joint + length
        item = reader.take(limit)
    if item is not None:  # stopped at the caps: the rest is only counted
        left, left_chars = reader.rest()
        count, chars = count + left, chars + left_chars + 2 * left
    extent = reader.extent()
    tally = Tally(count, chars) if extent is None else Tally(count, chars, *extent)
    return title, kept, tally


def cap_article(
    article: Article, caps: IngestConfig, tally: Tally | None = None
) -> tuple[Article, str | None]:
    """`article` within the caps, and a one-line account of what was cut (None: nothing).

    The paragraph cap keeps the first paragraphs; the text cap (the stored body:
    paragraphs joined by blank lines) then keeps whole paragraphs while they
    fit and cuts the next one at a space (`_cut`) when at least
    `_MIN_PIECE` characters of room are left, else stops at the paragraph
    boundary. Each part of the message gives the original and the stored size:
    of the whole document as `tally` counted it when `gather` kept only part of
    it (`article` then holds what the caps need), else of `article`.
    """
    cuts: list[str] = []
    title = article.title
    if len(title) > caps.max_title_chars:
        title = _cut(title, caps.max_title_chars)
        cuts.append(f"title cut from {len(article.title):,} to {len(title):,} characters")
    if tally is None:
        tally = Tally(len(article.paragraphs), _text_length(article.paragraphs))
    at_least = "" if tally.read is None else "at least "
    paragraphs = article.paragraphs[: caps.max_paragraphs]
    before = _text_length(paragraphs)
    if before > caps.max_text_chars:
        paragraphs = _cut_text(paragraphs, caps.max_text_chars)
    if tally.paragraphs > caps.max_paragraphs:
        cuts.append(f"paragraphs cut from {at_least}{tally.paragraphs:,} to {len(paragraphs):,}")
    if before > caps.max_text_chars:
        cuts.append(
            f"text cut from {at_least}{tally.text_chars:,} to "
            f"{_text_length(paragraphs):,} characters"
        )
    if tally.read is not None:
        cuts.append(f"read the first {tally.read:,} of {tally.size:,} {tally.unit}")
    if not cuts:
        return article, None
    capped = Article(title, article.published_at, paragraphs, article.outlet, article.dated)
    return capped, "; ".join(cuts)


_MIN_PIECE = 200  # characters: below this, a cut paragraph adds a fragment, not text
_ELLIPSIS = "…"


def _text_length(paragraphs: tuple[str, ...]) -> int:
    """Characters of the stored body: the paragraphs joined by blank lines."""
    return sum(map(len, paragraphs)) + 2 * max(len(paragraphs) - 1, 0)


def _cut_text(paragraphs: tuple[str, ...], limit: int) -> tuple[str, ...]:
    kept: list[str] = []
    used = 0
    for paragraph in paragraphs:
        joint = 2 if kept else 0
        if used + joint + len(paragraph) <= limit:
            kept.append(paragraph)
            used += joint + len(paragraph)
            continue
        room = limit - used - joint
        if room >= _MIN_PIECE or not kept:
            kept.append(_cut(paragraph, room))
        break
    return tuple(kept)


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in "…": at the last space when that
    keeps four fifths of the room, else inside a word (a run of text with no spaces)."""
    room = limit - len(_ELLIPSIS)
    head = text[:room]
    if not text[room].isspace():
        space = head.rfind(" ")
        if space >= room * 4 // 5:
            head = head[:space]
    return head.rstrip(" ,;:") + _ELLIPSIS
