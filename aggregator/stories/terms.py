"""Terms: what an article says, as weighted evidence for joining an event story.

What it decides, and why:

* **Words, stemmed.** Tokens are folded (NFKC, case) and stemmed with the
  Snowball English stemmer (PyStemmer, its C build: 1.5 µs a word against 80
  for the pure-Python one on words not seen before), so "tapering" meets
  "taper" and "missiles" meets "missile". Stop words and the words every
  report uses ("said", "told", "reported") carry no evidence and are dropped
  before stemming.
* **Names and numbers weigh more.** The same event is told with the same
  people, places and figures even when every other word differs; two
  similar events of one kind (sibling events) differ mostly there. A word
  capitalised inside a sentence is taken as a name, a token with a digit as a
  number; their weights are multiplied by `name_weight` and `number_weight`.
  A headline in Title Case says nothing about names, so its capitals are not
  read as names.
* **The lead weighs more than the tail.** The title counts `title_weight`
  times; the first `lead_words` words of the body count fully, the next 750
  half, and the rest not at all: the tail of a report is background, which
  similar events share.
* **Sublinear counts**: 1 + ln(count), so a name repeated ten times does not
  drown the rest.
* **Hashed terms.** A term is its 64-bit xxhash, so document frequencies
  and story centroids are integer-keyed maps of bounded size, never a
  growing vocabulary of strings (`frequencies.py`); the strings of the
  strongest terms are kept only to explain a join.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
import xxhash

from aggregator.config import StoriesConfig

_WORD = re.compile(r"[^\W\d_][\w'’\-.]*[^\W_]|[^\W\d_]|\d[\d,.:]*%?", re.UNICODE)
# Sentence ends: terminal punctuation (and closing quotes or brackets), then space.
_SENTENCES = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
# Words of an article's body read past its lead: the tail is background, and an
# article of 10,000 words must not cost 40 times one of 250.
_TAIL_WORDS = 750

# Function words, and the verbs and fillers of reporting itself.
STOP_WORDS = frozenset(
    """
    a about above after again against all almost also although always am among an and
    another any are around as at back be became because become been before being below
    between both but by can cannot could did do does doing done down during each either
    else enough even ever every few for from further get gets got had has have having he
    her here hers herself him himself his how however i if in into is it its itself just
    last least less like made make many may me might more most much must my myself near
    neither never new next no nor not now of off often on once one only or other others
    our ours ourselves out over own per perhaps put rather really same see seen several
    shall she should since so some still such than that the their theirs them themselves
    then there these they this those though through thus to too toward towards under
    until up upon us very via was we well were what whatever when where whether which
    while who whom whose why will with within without would yet you your yours yourself
    according added adds announced asked comment comments reported reports say saying
    says said statement stated tell telling tells told week weeks year years today
    yesterday tomorrow monday tuesday wednesday thursday friday saturday sunday mr mrs
    ms dr percent including include includes two three four five six seven eight nine ten
    first second third time times day days month months people
    """.split()
)

_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of a folded word (memoised: a stream repeats its words)."""
    return str(_STEMMER.stemWord(word))


def term_key(term: str) -> int:
    """A term's stable 63-bit key (the same in every process and after a restart)."""
    return int(xxhash.xxh64_intdigest(term.encode("utf-8")) >> 1)


_DEFAULTS = StoriesConfig()


@dataclass(frozen=True, slots=True)
class TermWeights:
    """How much each kind of evidence weighs (`[stories]` in the config, whose
    defaults these are)."""

    title_weight: float = _DEFAULTS.title_weight
    name_weight: float = _DEFAULTS.name_weight
    number_weight: float = _DEFAULTS.number_weight
    lead_words: int = _DEFAULTS.lead_words


@dataclass(frozen=True, slots=True)
class Terms:
    """An article's weighted terms: key -> weight (before IDF), and key -> term text."""

    weights: dict[int, float]
    names: dict[int, str]
    kinds: dict[int, str]  # "name" or "number" for the keys that are one


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("’", "'")


def _title_case(words: list[str]) -> bool:
    """Most long words capitalised: a headline style, not a sign of names."""
    long = [w for w in words if len(w) > 3 and w[0].isalpha()]
    return len(long) >= 3 and sum(w[0].isupper() for w in long) >= 0.7 * len(long)


def _count(
    text: str,
    scale: float,
    names_allowed: bool,
    counts: dict[str, float],
    kinds: dict[str, str],
    budget: list[int],
) -> None:
    """Add `text`'s terms to `counts`: `scale` per occurrence while `budget[0]`
    words of lead remain, half of it after; nothing past `_MAX_WORDS` of it."""
    sentences = [_WORD.findall(s) for s in _SENTENCES.split(_fold(text))]
    if names_allowed:
        names_allowed = not _title_case([w for words in sentences for w in words])
    for words in sentences:
        if budget[0] <= -_TAIL_WORDS:
            return
        for n, word in enumerate(words):
            weight = scale if budget[0] > 0 else scale / 2
            budget[0] -= 1
            folded = word.casefold().strip("'.-").removesuffix("'s")
            if folded in STOP_WORDS or not folded:
                continue
            if folded[0].isdigit():
                term = folded.rstrip(".,:")
                kinds[term] = "number"
            elif len(folded) < 2:
                continue
            else:
                term = stem(folded)
                # A capital inside a sentence (not its first word) is a name.
                if names_allowed and n and word[0].isupper():
                    kinds.setdefault(term, "name")
            counts[term] = counts.get(term, 0.0) + weight


def article_terms(title: str, paragraphs: list[str], weights: TermWeights) -> Terms:
    """The weighted terms of an article (title and body)."""
    counts: dict[str, float] = {}
    kinds: dict[str, str] = {}
    _count(title, weights.title_weight, True, counts, kinds, [1 << 30])
    budget = [weights.lead_words]
    for paragraph in paragraphs:
        if paragraph.strip() == title.strip():
            continue
        _count(paragraph, 1.0, True, counts, kinds, budget)
    out: dict[int, float] = {}
    names: dict[int, str] = {}
    kind_of: dict[int, str] = {}
    for term, count in counts.items():
        key = term_key(term)
        weight = 1.0 + math.log(count) if count >= 1.0 else count
        kind = kinds.get(term)
        if kind == "name":
            weight *= weights.name_weight
        elif kind == "number":
            weight *= weights.number_weight
        if kind:
            kind_of[key] = kind
        out[key] = out.get(key, 0.0) + weight
        names[key] = term
    return Terms(out, names, kind_of)
