"""Normalise and segment: paragraphs into sentences, sentences into matchable units.

What this stage decides, and why:

* **Units are runs of whole sentences, not paragraphs.** Wire copy is often
  pasted as one sentence inside someone else's paragraph; a whole-paragraph
  comparison dilutes it below any useful threshold (0.34 for the seed corpus'
  "constructive partner" passage), while the sentence itself still matches at
  about 0.86.
* **Short sentences are merged with a neighbour** until a unit has at least
  `min_unit_words` words. A six-word sentence ("The coalition denied the
  allegations.") recurs by chance across unrelated stories and is no evidence
  of shared text. Merging goes forward; a short tail joins the unit before it.
  A paragraph that is short as a whole becomes one unit if it has at least
  two thirds of `min_unit_words`, and no unit at all below that.
* **Sentence boundaries are found on the original text**, so every unit keeps
  exact character offsets into its paragraph and a match can be shown as the
  article printed it. A boundary is terminal punctuation (with any closing
  quotes or brackets), whitespace, then an upper-case letter, a digit or an
  opening quote. It is not a boundary after a known abbreviation ("Mr.",
  "Gen.", "Dec. 6"), a single initial ("J. Smith"), or a dotted acronym
  ("U.S.", "U.N."); decimals never qualify because no space follows the point.
  Erring towards no boundary is cheap: it only makes a unit longer.
* **Normalisation** (tokens only; the text is kept as printed): Unicode NFKC,
  curly quotes and the dash family folded to ASCII, case folded. Tokens are
  runs of word characters, joined through inner apostrophes, hyphens and dots
  ("russia's", "el-zour", "u.s").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

from aggregator.model import Unit

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
_BOUNDARY = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*(\s+)")
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


def normalise(text: str) -> str:
    """Fold text to the form that tokens are taken from."""
    if text.isascii():  # NFKC and the fold table change nothing in ASCII but the backtick
        return text.replace("`", "'").lower()
    return unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()


def tokenise(text: str) -> list[str]:
    """Normalised word tokens of `text`."""
    return _TOKEN.findall(normalise(text))


def _is_boundary(text: str, stop: int, next_start: int) -> bool:
    """Is the punctuation ending at `stop` (with the next sentence at `next_start`) a boundary?"""
    if next_start >= len(text):
        return False
    following = text[next_start]
    if following in _OPENERS and next_start + 1 < len(text):
        following = text[next_start + 1]
    if not (following.isupper() or following.isdigit()):
        return False
    # The word right before the terminal punctuation.
    head = text[:stop].rstrip("\"'\u201d\u2019\u00bb)]")
    if not head.endswith("."):
        return True  # "!", "?" and "..." are boundaries whatever precedes them
    word_match = re.search(r"(\S+)\.$", head)
    if word_match is None:
        return True
    word = word_match.group(1).lstrip("\"'\u201c\u2018(")
    if len(word) == 1 and word.isalpha():
        return False  # an initial
    folded = word.casefold()
    if folded in _ABBREVIATIONS or (folded in _TITLE_ABBREVIATIONS and word[0].isupper()):
        return False
    if folded in _NUMBER_ABBREVIATIONS and following.isdigit():
        return False
    return _ACRONYM.search(word) is None


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of one paragraph."""
    spans: list[tuple[int, int]] = []
    start = len(text) - len(text.lstrip())
    for match in _BOUNDARY.finditer(text):
        end = match.start(1)
        next_start = match.end(1)
        if end > start and _is_boundary(text, end, next_start):
            spans.append((start, end))
            start = next_start
    end = len(text.rstrip())
    if end > start:
        spans.append((start, end))
    return spans


def segment_paragraph(text: str, paragraph: int, min_words: int) -> Iterator[Unit]:
    """Units of one paragraph: sentences merged until each has `min_words` tokens."""
    sentences = [(s, e, tokenise(text[s:e])) for s, e in split_sentences(text)]
    groups: list[list[tuple[int, int, list[str]]]] = []
    current: list[tuple[int, int, list[str]]] = []
    count = 0
    for sentence in sentences:
        current.append(sentence)
        count += len(sentence[2])
        if count >= min_words:
            groups.append(current)
            current, count = [], 0
    if current:
        if groups:
            groups[-1].extend(current)
        elif count >= max(3, (2 * min_words) // 3):
            groups.append(current)
    for position, group in enumerate(groups):
        tokens = tuple(token for _, _, toks in group for token in toks)
        yield Unit(paragraph, position, group[0][0], group[-1][1], tokens)


def segment(paragraphs: Sequence[str], min_words: int) -> list[Unit]:
    """Units of a whole article, in reading order."""
    units: list[Unit] = []
    for index, text in enumerate(paragraphs):
        units.extend(segment_paragraph(text, index, min_words))
    return units
