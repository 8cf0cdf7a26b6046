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
  stop is no boundary for merging or for `sentences.split_sentences`.
* **Units overlap and are ordered by start**, the longer first (a merged unit
  before the sentences inside it); `position` is the index in that order, so
  it is unique in the paragraph but says nothing about adjacency: passages are
  merged on character spans (match.py).
* **Sentences and tokens** are aggregator/sentences.py's: boundaries found
  on the original text, so every unit keeps exact character offsets into its
  paragraph and a match can be shown as the article printed it. Erring
  towards no boundary (after an abbreviation, initial or acronym) is cheap: it
  only makes a unit longer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from aggregator.model import Unit
from aggregator.sentences import sentence_pieces, tokenise

# A sentence of at least this many words ends its merged unit, and it (or a
# piece of one cut at a lost boundary) is a unit of its own as well...
SENTENCE_WORDS = 8
# ...unless it makes up at least this share of the words of the smallest unit
# that already holds it.
DOMINANT_SHARE = 0.8


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
    for start, end, closes in sentence_pieces(text):
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
