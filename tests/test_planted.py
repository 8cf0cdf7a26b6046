"""Recall and precision on planted passages built from real sentences.

Every passage is a run of whole sentences (>= 20 words) from the seed corpus.
An "original" article carries it untouched as its own paragraph; a "copy"
carries it edited (US->USA, Russia->Russian Federation, one word dropped, quotes
turned curly) either as its own paragraph or spliced between two sentences of
another paragraph. Filler text is random seed vocabulary, so any match between
two articles that are not an (original, copy) pair is a false positive.
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

from aggregator.config import Config
from aggregator.model import RawDocument
from aggregator.segment import split_sentences
from tests.conftest import SEEDS, OpenStore, ingest_docs, text_doc

WORD = re.compile(r"[\w'’-]+")


def _bigrams(text: str) -> set[tuple[str, str]]:
    words = [w.lower() for w in WORD.findall(text)]
    return set(itertools.pairwise(words))


def _passages() -> list[str]:
    """One run of >= 20 words per seed paragraph, none resembling another."""
    chosen: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        for paragraph in path.read_text(encoding="utf-8").splitlines()[1:]:
            spans = split_sentences(paragraph)
            run: list[str] = []
            for start, end in spans:
                run.append(paragraph[start:end])
                if len(" ".join(run).split()) >= 20:
                    break
            text = " ".join(run)
            if len(text.split()) < 20:
                continue
            grams = _bigrams(text)
            if all(len(grams & _bigrams(o)) / len(grams | _bigrams(o)) < 0.2 for o in chosen):
                chosen.append(text)
    return chosen


def _edit(text: str, rng: random.Random) -> str:
    text = re.sub(r"\bUS\b", "USA", text)
    text = re.sub(r"\bRussia\b", "Russian Federation", text)
    text = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", text).replace("'", "\u2019")
    words = text.split(" ")
    del words[rng.randrange(1, len(words) - 1)]
    return " ".join(words)


def _filler(rng: random.Random, vocabulary: list[str], sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = rng.sample(vocabulary, rng.randint(15, 25))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


@pytest.mark.parametrize("placement", ["paragraph", "spliced"])
def test_planted_passages_recall_and_precision(
    config: Config, placement: str, open_store: OpenStore
) -> None:
    rng = random.Random(20261123)
    passages = _passages()
    assert len(passages) >= 40, "the seed corpus should give enough passages"
    vocabulary = sorted({w for p in SEEDS.glob("*.txt") for w in WORD.findall(p.read_text())})
    docs: list[RawDocument] = []
    for i, passage in enumerate(passages):
        original = [_filler(rng, vocabulary, 2), passage, _filler(rng, vocabulary, 2)]
        edited = _edit(passage, rng)
        if placement == "paragraph":
            copy = [_filler(rng, vocabulary, 2), edited, _filler(rng, vocabulary, 1)]
        else:
            host = f"{_filler(rng, vocabulary, 1)} {edited} {_filler(rng, vocabulary, 1)}"
            copy = [_filler(rng, vocabulary, 2), host, _filler(rng, vocabulary, 1)]
        docs.append(text_doc("/planted/wire", f"o{i}", f"Original {i} headline", original))
        docs.append(text_doc("/planted/paper", f"c{i}", f"Copy {i} headline", copy))
    outcomes = ingest_docs(config, docs)
    assert all(o.status == "new" for o in outcomes)
    store = open_store()
    pairs = {
        frozenset((Path(a).stem, Path(b).stem))
        for a, b in store.execute(
            "SELECT location, other_location FROM duplicate_passages WHERE boilerplate = 0"
        )
    }
    expected = {frozenset((f"o{i}", f"c{i}")) for i in range(len(passages))}
    found = pairs & expected
    recall = len(found) / len(expected)
    print(f"{placement}: {len(passages)} passages, recall {recall:.3f}")
    assert recall >= 0.95, f"recall {recall:.3f} for {placement}: missed {sorted(expected - found)}"
    assert pairs <= expected, f"pairs sharing no passage: {sorted(map(sorted, pairs - expected))}"
    # The reported passage is the planted text, not the filler around it.
    for location, passage in store.execute(
        "SELECT location, passage FROM duplicate_passages WHERE location LIKE '%/c%'"
    ):
        index = int(Path(location).stem[1:])
        words = set(WORD.findall(passage))
        assert len(words & set(WORD.findall(_edit(passages[index], random.Random(0))))) >= (
            0.6 * len(words)
        )
