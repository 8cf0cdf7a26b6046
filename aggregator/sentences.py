"""Sentences: where a paragraph's sentences begin and end, and its tokens.

Used by extraction (an untitled text's title is its first sentence) and by
segmentation (units are runs of whole sentences), so both agree on what a
sentence is. The rules, and why (segment.py says how units use them):

* **Boundaries are found on the original text**, so every span is exact
  character offsets into the paragraph as printed. A boundary is terminal
  punctuation (with any closing quotes or brackets), whitespace, then an
  upper-case letter, a digit or an opening quote. It is not a boundary after
  a known abbreviation ("Mr.", "Gen.", "Dec. 6"), a single initial ("J.
  Smith"), or a dotted acronym ("U.S.", "U.N."); decimals never qualify
  because no space follows the point.
* **Lost boundaries.** A single full stop followed by a lower-case word (not
  after an abbreviation, initial or acronym) is where an edit may have
  lower-cased a sentence's first word: `sentence_pieces` marks it as a piece
  boundary that is no sentence boundary.
* **Normalisation** (tokens only; the text is kept as printed): Unicode NFKC,
  curly quotes and the dash family folded to ASCII, case folded. Tokens are
  runs of word characters, joined through inner apostrophes, hyphens and dots
  ("russia's", "el-zour", "u.s").
"""

from __future__ import annotations

import re
import unicodedata

_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
    }
)

_TOKEN = re.compile(r"\w+(?:['.\-]\w+)*")

# Terminal punctuation, closing quotes/brackets, whitespace; the caller checks
# what follows and what precedes.
_BOUNDARY = re.compile(r"([.!?\u2026]+)[\"'\u201d\u2019\u00bb)\]]*(\s+)")
_OPENERS = "\"'\u201c\u2018\u00ab([\u2014-"

# Titles, ranks and months: abbreviations only when written capitalised ("Sen.",
# "Dec."), so that a sentence ending in the word "sen" or "dec" still ends.
_TITLE_ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt cmdr adm maj cpl gov sen rep "
        "pres rev hon messrs mme mlle jan feb mar apr jun jul aug sep sept oct nov dec"
    ).split()
)
# Abbreviations in any case.
_ABBREVIATIONS = frozenset("vs v approx dept est fig vol op ch art para cf al".split())
# "No." is an abbreviation only before a number ("No. 10"); "the answer was no." ends.
_NUMBER_ABBREVIATIONS = frozenset(("no", "nos"))
_ACRONYM = re.compile(r"(?:\w\.)+\w$")
# The word before a full stop, looked for in at most this many characters before
# it, so that judging a boundary costs the same however long the paragraph is.
_WORD_WINDOW = 100
_WORD_BEFORE = re.compile(r"(\S+)\.$")

# What a candidate boundary is.
_NO_BOUNDARY, _LOST_BOUNDARY, _BOUNDARY_FOUND = 0, 1, 2


def normalise(text: str) -> str:
    """Fold text to the form that tokens are taken from."""
    if text.isascii():  # NFKC and the fold table change nothing in ASCII but the backtick
        return text.replace("`", "'").lower()
    return unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()


def tokenise(text: str) -> list[str]:
    """Normalised word tokens of `text`."""
    return _TOKEN.findall(normalise(text))


def _boundary(text: str, terminal_start: int, terminal_end: int, next_start: int) -> int:
    """What the terminal punctuation text[terminal_start:terminal_end] is, followed by
    closing quotes or brackets, whitespace, and the next text at `next_start`.

    `_BOUNDARY_FOUND`: a sentence boundary. `_LOST_BOUNDARY`: a single full stop
    followed by a lower-case letter (after any opening quote), which is not a
    boundary but may be one that an edit lost ("... the trail. reportedly ...");
    the abbreviation rules apply to both.
    """
    if next_start >= len(text):
        return _NO_BOUNDARY
    following = text[next_start]
    if following in _OPENERS and next_start + 1 < len(text):
        following = text[next_start + 1]
    if following.isupper() or following.isdigit():
        kind = _BOUNDARY_FOUND
    elif following.islower() and terminal_end - terminal_start == 1 and text[terminal_start] == ".":
        kind = _LOST_BOUNDARY
    else:
        return _NO_BOUNDARY
    if text[terminal_end - 1] != ".":
        return kind  # "!", "?" and "..." are boundaries whatever precedes them
    # The word right before the full stop (with any dots before it: "etc..").
    word_match = _WORD_BEFORE.search(text, max(0, terminal_end - _WORD_WINDOW), terminal_end)
    if word_match is None:
        return kind
    word = word_match.group(1).lstrip("\"'\u201c\u2018(")
    if len(word) == 1 and word.isalpha():
        return _NO_BOUNDARY  # an initial
    folded = word.casefold()
    if folded in _ABBREVIATIONS or (folded in _TITLE_ABBREVIATIONS and word[0].isupper()):
        return _NO_BOUNDARY
    if folded in _NUMBER_ABBREVIATIONS and following.isdigit():
        return _NO_BOUNDARY
    return _NO_BOUNDARY if _ACRONYM.search(word) else kind


def sentence_pieces(text: str) -> list[tuple[int, int, bool]]:
    """Spans (start, end, closes) of a paragraph cut at boundaries and at lost boundaries.

    `closes`: the piece ends a sentence (a boundary or the paragraph's end
    follows); consecutive pieces up to one that closes are one sentence.
    """
    pieces: list[tuple[int, int, bool]] = []
    start = len(text) - len(text.lstrip())
    for match in _BOUNDARY.finditer(text):
        end, next_start = match.start(2), match.end(2)
        if end <= start:
            continue
        kind = _boundary(text, match.start(1), match.end(1), next_start)
        if kind != _NO_BOUNDARY:
            pieces.append((start, end, kind == _BOUNDARY_FOUND))
            start = next_start
    end = len(text.rstrip())
    if end > start:
        pieces.append((start, end, True))
    elif pieces:  # only whitespace after a lost boundary: cannot happen, kept for safety
        pieces[-1] = (*pieces[-1][:2], True)
    return pieces


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of one paragraph."""
    spans: list[tuple[int, int]] = []
    first = -1
    for start, end, closes in sentence_pieces(text):
        if first < 0:
            first = start
        if closes:
            spans.append((first, end))
            first = -1
    return spans
