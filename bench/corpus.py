"""The benchmark corpus: deterministic synthetic news articles with planted near-duplicates.

Articles have 8-12 paragraphs of 1-3 sentences; words come from a Zipf-distributed
synthetic vocabulary mixed with English function words. About 10% of articles carry
a passage copied, with small edits, from a recent article of another source, either
as its own paragraph or spliced into another one. `Plant` records each copy so the
benchmark can measure recall.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from aggregator.model import RawDocument

SEED = 20_240_601

# Common English function words, most frequent first; they make up
# FUNCTION_SHARE of the running text, as in real prose.
FUNCTION_WORDS = """
the of and to a in that is was for on with as by at from it he his said be
have has had are were not but this they their an which or will who its been
after more than also over into about would up out new one two when there
all she her we can could other some what time year people while
""".split()
FUNCTION_SHARE = 0.42

_ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr st tr ch sh th".split()
_VOWELS = "a e i o u a e i o ai ea io ou".split()
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]


# -- the corpus -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plant:
    """A passage of article `source` copied, with small edits, into article `target`."""

    target: int
    target_source: int
    source: int
    source_source: int
    words: int
    mode: str  # "paragraph" (a paragraph of its own) or "spliced" (inside another one)


Paragraph = list[list[str]]  # sentences, each a list of lower-case words


def _zipf_cdf(n: int, exponent: float, offset: int = 0) -> npt.NDArray[np.float64]:
    weights = 1.0 / np.arange(offset + 1, offset + n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    return np.asarray(cdf / cdf[-1], dtype=np.float64)


def _vocabulary(rng: np.random.Generator, size: int, reserved: set[str]) -> list[str]:
    words: list[str] = []
    seen = set(reserved)
    syllables = rng.choice([1, 2, 3, 4], p=[0.15, 0.45, 0.3, 0.1], size=size * 2)
    parts = rng.integers(0, 1 << 30, size=(size * 2, 4, 3))
    for n, picks in zip(syllables.tolist(), parts.tolist(), strict=True):
        word = "".join(
            _ONSETS[o % len(_ONSETS)] + _VOWELS[v % len(_VOWELS)] + _CODAS[c % len(_CODAS)]
            for o, v, c in picks[:n]
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
            if len(words) == size:
                return sorted(words, key=len)  # frequent words are short, as in real text
    raise RuntimeError("vocabulary generator ran out of words")


class Corpus:
    """A deterministic stream of synthetic news articles with planted near-duplicates.

    Articles have 8-12 paragraphs (10 on average) of 1-3 sentences of 12-30 words.
    Words come from a Zipf-distributed synthetic vocabulary mixed with English
    function words. About `plant_rate` of the articles carry a passage of at least
    20 words (whole sentences) copied from one of the previous `lookback` articles
    of another source, with one word substituted and one dropped; half of the
    copies are a paragraph of their own, half are spliced between two sentences
    of another paragraph. `plants` lists them once the stream has been consumed.
    """

    def __init__(
        self,
        size: int,
        seed: int = SEED,
        sources: int = 20,
        vocabulary: int = 30_000,
        plant_rate: float = 0.10,
        per_day: int = 1_000,
        lookback: int = 2_000,
    ) -> None:
        self.size = size
        self.seed = seed
        self.sources = sources
        self.plant_rate = plant_rate
        self.per_day = per_day
        self.lookback = lookback
        self.plants: list[Plant] = []
        rng = np.random.default_rng(seed)
        content = _vocabulary(rng, vocabulary, set(FUNCTION_WORDS))
        # Function words first (ids 0..F-1), then content words by falling frequency.
        self.words: list[str] = FUNCTION_WORDS + content
        self._functions = len(FUNCTION_WORDS)
        self._function_cdf = _zipf_cdf(len(FUNCTION_WORDS), 1.0)
        # Zipf-Mandelbrot: content words continue the ranks after the function words.
        self._content_cdf = _zipf_cdf(vocabulary, 1.07, offset=len(FUNCTION_WORDS))
        self.start = datetime(2024, 1, 1, tzinfo=UTC)

    def _draw_words(
        self, rng: np.random.Generator, n: int, content_at: npt.NDArray[np.int64] | None = None
    ) -> list[str]:
        """`n` words of running text; positions `content_at` get content words."""
        function = rng.random(n) < FUNCTION_SHARE
        if content_at is not None:
            function[content_at] = False
        f_ids = np.searchsorted(self._function_cdf, rng.random(n))
        c_ids = np.searchsorted(self._content_cdf, rng.random(n)) + self._functions
        ids = np.where(function, f_ids, c_ids).tolist()
        words = self.words
        return [words[i] for i in ids]

    def documents(self) -> Iterator[RawDocument]:
        """Generate the corpus, article by article (call once per Corpus)."""
        self.plants = []
        rng = np.random.default_rng(self.seed + 1)
        recent: deque[tuple[int, int, list[Paragraph]]] = deque(maxlen=self.lookback)
        seconds_apart = 86_400 / self.per_day
        for index in range(self.size):
            source = int(rng.integers(0, self.sources))
            n_paragraphs = int(rng.integers(8, 13))
            n_sentences = rng.integers(1, 4, size=n_paragraphs)
            lengths = rng.integers(12, 31, size=int(n_sentences.sum()))
            title_words = int(rng.integers(5, 12))
            # Titles and sentences end in a content word, as English ones do.
            ends = np.cumsum(np.concatenate([[title_words], lengths])) - 1
            words = self._draw_words(rng, int(ends[-1]) + 1, content_at=ends)
            title = words[:title_words]
            at = title_words
            paragraphs: list[Paragraph] = []
            k = 0
            for count in n_sentences.tolist():
                sentences = []
                for length in lengths[k : k + count].tolist():
                    sentences.append(words[at : at + length])
                    at += length
                k += count
                paragraphs.append(sentences)
            if recent and rng.random() < self.plant_rate:
                self._plant(rng, index, source, paragraphs, recent)
            recent.append((index, source, paragraphs))
            published = self.start + timedelta(
                seconds=index * seconds_apart + float(rng.random()) * 600
            )
            text = _render_title(title) + "\n" + "\n".join(_render(p) for p in paragraphs)
            path = location(index, source)
            yield RawDocument(
                source_kind="folder",
                source_location=f"/bench/src{source:02d}",
                source_name=f"src{source:02d}",
                identity=path,
                location=path,
                media_type="text/plain",
                content=text.encode("utf-8"),
                modified_at=published,
            )

    def _plant(
        self,
        rng: np.random.Generator,
        index: int,
        source: int,
        paragraphs: list[Paragraph],
        recent: deque[tuple[int, int, list[Paragraph]]],
    ) -> None:
        for _ in range(8):
            other, other_source, other_paragraphs = recent[int(rng.integers(0, len(recent)))]
            if other_source != source:
                break
        else:
            return
        # A run of whole sentences of one paragraph, at least 20 words long.
        choices = [p for p in other_paragraphs if sum(len(s) for s in p) >= 20]
        if not choices:
            return
        chosen = choices[int(rng.integers(0, len(choices)))]
        suffix = np.cumsum([len(s) for s in chosen][::-1])[::-1]
        starts = [i for i, remaining in enumerate(suffix.tolist()) if remaining >= 20]
        first = starts[int(rng.integers(0, len(starts)))]
        passage: list[list[str]] = []
        total = 0
        for sentence in chosen[first:]:
            passage.append(list(sentence))
            total += len(sentence)
            if total >= 20:
                break
        # Small edits: one word substituted, one word dropped.
        sentence = passage[int(rng.integers(0, len(passage)))]
        sentence[int(rng.integers(0, len(sentence)))] = self._draw_words(rng, 1)[0]
        longer = [s for s in passage if len(s) > 12]
        if longer:
            sentence = longer[int(rng.integers(0, len(longer)))]
            del sentence[int(rng.integers(1, len(sentence)))]
            total -= 1
        if rng.random() < 0.5:
            paragraphs.insert(int(rng.integers(0, len(paragraphs) + 1)), passage)
            mode = "paragraph"
        else:
            host = paragraphs[int(rng.integers(0, len(paragraphs)))]
            at = int(rng.integers(1, len(host))) if len(host) >= 2 else int(rng.integers(0, 2))
            host[at:at] = passage
            mode = "spliced"
        self.plants.append(Plant(index, source, other, other_source, total, mode))


def location(index: int, source: int) -> str:
    return f"/bench/src{source:02d}/a{index:06d}.txt"


def _render_title(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:]


def _render(paragraph: Paragraph) -> str:
    out = []
    for sentence in paragraph:
        text = " ".join(sentence)
        out.append(text[0].upper() + text[1:] + ".")
    return " ".join(out)


class Timed(Iterator[RawDocument]):
    """Wraps the corpus stream and adds up the time spent generating it."""

    def __init__(self, inner: Iterator[RawDocument], progress_every: int = 0) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.count = 0
        self._every = progress_every
        self._started = time.perf_counter()

    def __iter__(self) -> Timed:
        return self

    def __next__(self) -> RawDocument:
        t = time.perf_counter()
        try:
            return next(self._inner)
        finally:
            self.seconds += time.perf_counter() - t
            self.count += 1
            if self._every and self.count % self._every == 0:
                elapsed = time.perf_counter() - self._started
                print(f"  ... {self.count} articles, {elapsed:.0f} s", file=sys.stderr, flush=True)
