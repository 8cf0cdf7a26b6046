"""Normalise and segment: paragraphs into sentences, sentences into matchable units.

What this stage decides, and why:

* **Units are runs of whole sentences, not paragraphs.** Wire copy is often
  pasted as one sentence inside someone else's paragraph; a whole-paragraph
  comparison dilutes it below any useful threshold (0.34 for the seed corpus'
  "constructive partner" passage), while the sentence itself still matches at
  about 0.86.
* **Short sentences are merged with a neighbour** until a unit has at least
  `min_unit_words` words or holds a sentence of `sentence_words` words. A
  six-word sentence ("The coalition denied the allegations.") recurs by chance
  across unrelated stories and is no evidence of shared text. Merging goes
  forward; a short tail joins the unit before it. A paragraph that is short as
  a whole becomes one unit if it has at least two thirds of `min_unit_words`,
  and no unit at all below that.
* **Every sentence of `sentence_words` (8) words or more can be matched on
  its own** (issue 11). Merging depends on the neighbours: a sentence copied
  between other sentences is merged with a different neighbour on each side,
  and an exact copy of two sentences came out at Jaccard 0.41 / containment
  0.63, below both verify thresholds. Two rules fix that:
  - such a sentence ends its merged unit, so nothing after it is merged into
    it (before issue 11, "9 words. 9 words." was one unit of 18);
  - when short sentences before it (or a short tail after it) did join its
    unit, the sentence is also a unit of its own, unless it makes up
    `DOMINANT_SHARE` (80%) of the unit's words.
  So a copied sentence is, in both articles, a unit of its own or at least
  80% of one: some pair of units shares it at a Jaccard of at least
  1 / (1/0.8 + 1/0.8 - 1) = 0.67 (0.64 in shingles at worst, 8 of 10 words),
  a candidate under 32 x 4 bands 99.7% of the time and above the 0.5
  threshold. Ending the
  merged unit at such a sentence saves units: two 9-word sentences are two
  units, where merging them to 12 words and repeating both would make three.
  Measured (docs/benchmarks.md, "Sentence units"): no extra unit on the seed
  and benchmark corpora, whose sentences are long; +35% units and +11%
  shingles on text re-cut into 4-30-word sentences, against +50% / +31% with
  the old merging and +47% / +24% without the 80% exception. With
  `sentence_words` 0 both rules are off: the merged units of before.
* **Lost boundaries.** An edit that lower-cases the word after a full stop
  ("... the trail. reportedly ...") removes the boundary, so two sentences of
  the original are one in the copy. A single full stop followed by a
  lower-case word (not after an abbreviation, initial or acronym) therefore
  cuts a sentence into pieces, and a piece of `sentence_words` words is a unit
  of its own under the same 80% rule (against the smallest unit holding it);
  the copy's pieces then have the original sentences' tokens exactly. Such a
  stop is no boundary for merging or for `split_sentences`.
* **Units overlap and are ordered by start**, the longer first (a merged unit
  before the sentences inside it); `position` is the index in that order, so
  it is unique in the paragraph but says nothing about adjacency: passages are
  merged on character spans (match.py).
* **Sentence boundaries are found on the original text**, so every unit keeps
  exact character offsets into its paragraph and a match can be shown as the
  article printed it. A boundary is terminal punctuation (with any closing
  quotes or brackets), whitespace, then an upper-case letter, a digit or an
  opening quote. It is not a boundary after a known abbreviation ("Mr.",
  "Gen.", "Dec. 6"), a single initial ("J. Smith"), or a dotted acronym
  ("U.S.", "U.N."); decimals never qualify because no space follows the point.
  Erring towards no boundary is cheap: it only makes a unit longer (but a
  sentence that really ends in an initial or acronym, "... in the U.S.", is
  then matched only together with the sentence after it).
* **Normalisation** (tokens only; the text is kept as printed): Unicode NFKC,
  curly quotes and the dash family folded to ASCII, case folded. Tokens are
  runs of word characters, joined through inner apostrophes, hyphens and dots
  ("russia's", "el-zour", "u.s").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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

# A sentence of at least this many words ends its merged unit, and it (or a
# piece of one cut at a lost boundary) is a unit of its own as well...
SENTENCE_WORDS = 8
# ...unless it makes up at least this share of the words of the smallest unit
# that already holds it.
DOMINANT_SHARE = 0.8


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


def _pieces(text: str) -> list[tuple[int, int, bool]]:
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
    for start, end, closes in _pieces(text):
        if first < 0:
            first = start
        if closes:
            spans.append((first, end))
            first = -1
    return spans


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    tokens: tuple[str, ...]
    # Its pieces (start, end, tokens), more than one only where a boundary may have been lost.
    pieces: tuple[tuple[int, int, tuple[str, ...]], ...]


def _sentences(text: str) -> list[_Sentence]:
    """The sentences of a paragraph with their tokens, each tokenised once, piece by piece.

    Tokens never span whitespace and pieces are cut at whitespace, so a
    sentence's tokens are its pieces' tokens end to end.
    """
    sentences: list[_Sentence] = []
    group: list[tuple[int, int, tuple[str, ...]]] = []
    for start, end, closes in _pieces(text):
        group.append((start, end, tuple(tokenise(text[start:end]))))
        if closes:
            tokens = group[0][2] if len(group) == 1 else tuple(t for p in group for t in p[2])
            sentences.append(_Sentence(group[0][0], group[-1][1], tokens, tuple(group)))
            group = []
    return sentences


def segment_paragraph(
    text: str,
    paragraph: int,
    min_words: int,
    sentence_words: int = SENTENCE_WORDS,
    *,
    dominant: float = DOMINANT_SHARE,
) -> Iterator[Unit]:
    """Units of one paragraph, ordered by start (the longer first), positions 0, 1, ...

    Merged units: sentences merged forward until a unit has `min_words` tokens
    or holds a sentence of `sentence_words` tokens; they cover the paragraph's
    sentences without overlapping. Sentence units: every sentence of a merged
    unit of several sentences, and every piece of a sentence cut at a lost
    boundary, with at least `sentence_words` tokens and less than `dominant`
    of the tokens of the smallest unit already holding it. `sentence_words` 0:
    merged units only, merged up to `min_words` (as before issue 11).
    """
    sentences = _sentences(text)
    groups: list[list[_Sentence]] = []
    current: list[_Sentence] = []
    count = 0
    for sentence in sentences:
        current.append(sentence)
        count += len(sentence.tokens)
        if count >= min_words or 0 < sentence_words <= len(sentence.tokens):
            groups.append(current)
            current, count = [], 0
    if current:
        if groups:
            groups[-1].extend(current)
        elif count >= max(3, (2 * min_words) // 3):
            groups.append(current)
    units: list[tuple[int, int, tuple[str, ...]]] = []
    for group in groups:
        merged = group[0].tokens if len(group) == 1 else tuple(t for s in group for t in s.tokens)
        units.append((group[0].start, group[-1].end, merged))
        if sentence_words <= 0:
            continue
        for sentence in group:
            holder = len(merged)
            words = len(sentence.tokens)
            if len(group) > 1 and sentence_words <= words < dominant * holder:
                units.append((sentence.start, sentence.end, sentence.tokens))
                holder = words
            if len(sentence.pieces) > 1:
                units.extend(
                    piece
                    for piece in sentence.pieces
                    if sentence_words <= len(piece[2]) < dominant * holder
                )
    if len(units) > len(groups):
        units.sort(key=lambda u: (u[0], -u[1]))
    for position, (start, end, tokens) in enumerate(units):
        yield Unit(paragraph, position, start, end, tokens)


def segment(
    paragraphs: Sequence[str], min_words: int, sentence_words: int = SENTENCE_WORDS
) -> list[Unit]:
    """Units of a whole article, paragraph by paragraph, each paragraph's ordered by start."""
    units: list[Unit] = []
    for index, text in enumerate(paragraphs):
        units.extend(segment_paragraph(text, index, min_words, sentence_words))
    return units
