"""Plain text: the paragraphs of a `.txt` file, found and cleaned one at a time.

The rules are extract.py's (and the README's): paragraphs are the blocks
between blank lines, their lines joined with spaces, or, when no blank line
separates text anywhere in the file, its non-empty lines; the first paragraph
is the headline when it is one line of at most 20 words that does not end in
`.`, `,`, `;` or `:`, and something follows it.

What this module decides is how to apply them to a file of any size within
`ingest.max_file_bytes` (issue 13, item 5) without holding the file several
times over: the decoded text is held once (stripped, the unstripped copy
dropped); paragraphs are spans of it, found by a regular expression as they
are asked for; a paragraph is cleaned (white space collapsed) only when it is
taken, and one longer than `_WINDOW` in windows cut at white space, never as
one list of all its words (a 10 MB paragraph made 1.6 million word strings,
150 MB). `PlainReader.take` builds only as much of a paragraph as it is asked
for; `rest` counts the paragraphs and characters of what is left without
building any of it, so the caps' warning gives exact figures for any file
(about 0.1 s of CPU for 10 MB).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from aggregator.sources.caps import ALL

BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")
_NON_SPACE = re.compile(r"\S")
_SPACE = re.compile(r"\s")
# A line holding some text (possessive: a line of white space costs one pass).
_TEXT_LINE = re.compile(r"^[^\S\n]*+\S[^\n]*+", re.MULTILINE)
_MAX_HEADLINE_WORDS = 20
# Matches (anchored) text of more words than a headline may have.
_TOO_MANY_WORDS = re.compile(rf"(?:\S++\s++){{{_MAX_HEADLINE_WORDS}}}\S")
# Characters of a paragraph cleaned at a time; shorter ones are cleaned in one go.
_WINDOW = 1 << 16


def clean(line: str) -> str:
    """`line` with its white space collapsed to single spaces, and none at the ends."""
    return " ".join(line.split())


class PlainReader:
    """The paragraphs of a plain-text file's text, lazily (see `caps.Reader`)."""

    def __init__(self, text: str) -> None:
        """`text`: the decoded file, newlines normalised; pass it without keeping a
        reference, so that only its stripped copy stays alive."""
        self._text = text = text.strip()
        spans = _block_spans(text) if BLANK_LINE.search(text) else _line_spans(text)
        self.title = ""
        self._taken = 0  # where the last paragraph taken (or the headline) ends
        first = next(spans, None)
        second = None if first is None else next(spans, None)
        if first is not None and second is not None and _is_headline(text, *first):
            self.title = _clean_span(text, *first, ALL)[0]
            self._taken = first[1]
            first = None
        self._spans = _chain(first, second, spans)

    def take(self, room: int) -> tuple[str, int] | None:
        span = next(self._spans, None)
        if span is None:
            return None
        self._taken = span[1]
        return _clean_span(self._text, *span, room)

    def rest(self) -> tuple[int, int]:
        """Counted in bulk: paragraphs are separated by white space, so no word spans
        two of them, and their cleaned lengths add up to the characters that are not
        white space, plus the words, less one per paragraph."""
        count = sum(1 for _ in self._spans)
        words = chars = 0
        for window in _windows(self._text, self._taken, len(self._text)):
            split = window.split()
            words += len(split)
            chars += sum(map(len, split))
        return count, chars + words - count

    def extent(self) -> None:
        return None  # `rest` counts to the end


def _chain(
    first: tuple[int, int] | None, second: tuple[int, int] | None, rest: Iterator[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    for span in (first, second):
        if span is not None:
            yield span
    yield from rest


def _block_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each block between blank lines holding some text."""
    start = 0
    for blank in BLANK_LINE.finditer(text):
        if _NON_SPACE.search(text, start, blank.start()):
            yield start, blank.start()
        start = blank.end()
    if _NON_SPACE.search(text, start):
        yield start, len(text)


def _line_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line holding some text."""
    return (line.span() for line in _TEXT_LINE.finditer(text))


def _is_headline(text: str, start: int, end: int) -> bool:
    """Is the block text[start:end] a headline: one line, few words, no end punctuation?"""
    first = _NON_SPACE.search(text, start, end)
    if first is None:
        return False
    start = first.start()
    while text[end - 1].isspace():
        end -= 1
    return (
        text.find("\n", start, end) == -1
        and _TOO_MANY_WORDS.match(text, start, end) is None
        and text[end - 1] not in ".,;:"
    )


def _windows(text: str, start: int, end: int) -> Iterator[str]:
    """text[start:end] in pieces of about `_WINDOW` characters, cut at white space."""
    while start < end:
        stop = min(start + _WINDOW, end)
        if stop < end:
            space = _SPACE.search(text, stop, end)
            stop = end if space is None else space.start()
        yield text[start:stop]
        start = stop


def _clean_span(text: str, start: int, end: int, room: int) -> tuple[str, int]:
    """The cleaned paragraph text[start:end] (at least its first `room + 1` characters)
    and its cleaned length."""
    if end - start <= _WINDOW:
        cleaned = clean(text[start:end])
        return cleaned, len(cleaned)
    parts: list[str] = []
    built = words = chars = 0
    for window in _windows(text, start, end):
        split = window.split()
        words += len(split)
        chars += sum(map(len, split))
        if built <= room and split:
            part = " ".join(split)
            built += len(part) + (1 if parts else 0)
            parts.append(part)
    return " ".join(parts), chars + max(words - 1, 0)
