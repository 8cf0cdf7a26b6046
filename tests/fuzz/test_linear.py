"""Bounded checks of pathological input: one construct repeated and left unclosed must
be processed in linear time (a quadratic parser takes hours on a 10 MiB file)."""

from __future__ import annotations

import time

import pytest

from aggregator.errors import ExtractError
from aggregator.model import RawDocument
from aggregator.sources.extract import FRAGMENT, extract

from .harness import HANG_SECONDS, call, xfail_if_known
from .strategies_documents import raw_document

# About 30 s in all: left out of `make test-fast`.
pytestmark = pytest.mark.slow

QUADRATIC = "markdown-quadratic"
SHAPES: list[tuple[str, str, bytes, str | None]] = [
    ("text/markdown", "comments", b"<!--", QUADRATIC),
    ("text/markdown", "links", b"[", QUADRATIC),
    ("text/markdown", "images", b"![", QUADRATIC),
    ("text/markdown", "link destinations", b"[a](", QUADRATIC),
    ("text/markdown", "reference links", b"[a][", QUADRATIC),
    ("text/markdown", "reference definitions", b"[\n", QUADRATIC),
    ("text/markdown", "emphasis", b"*a ", QUADRATIC),
    ("text/markdown", "underscores", b"_a ", QUADRATIC),
    ("text/markdown", "code spans", b"`a ", None),
    ("text/markdown", "raw tags", b"<a ", None),
    ("text/markdown", "entities", b"&#", None),
    ("text/markdown", "fences", b"```\n~~~x\n", None),
    ("text/markdown", "headings", b"# ", None),
    ("text/markdown", "heading spaces", b"# a" + b" " * 500 + b"b\n", None),
    ("text/markdown", "items", b"- ", None),
    ("text/markdown", "quotes", b">", None),
    ("text/markdown", "front matter", b"---\n", None),
    ("text/plain", "blank lines", b"\n \t", None),
    ("text/plain", "sentences", b"a. ", None),
    ("text/plain", "one line", b"word ", None),
    (FRAGMENT, "paragraphs", b"<p>", None),
    (FRAGMENT, "nesting", b"<div>", None),
    (FRAGMENT, "comments", b"<!--", None),
]


# A burst of load can stretch one round's timings; a quadratic parser fails every round.
ROUNDS = 3


def _seconds(doc: RawDocument) -> float:
    """CPU seconds of one extraction, on this thread's clock (`extract` runs in the
    calling thread)."""
    started = time.thread_time()
    call(extract, doc, allowed=(ExtractError,), limit=HANG_SECONDS, tolerate=False)
    return time.thread_time() - started


def _best_of_three(small: RawDocument, large: RawDocument) -> tuple[float, float]:
    """The fastest of three extractions of each document (the least disturbed by the
    machine), taken in turns so that a change in the machine's load falls on both."""
    pairs = [(_seconds(small), _seconds(large)) for _ in range(3)]
    return min(a for a, _ in pairs), min(b for _, b in pairs)


@pytest.mark.parametrize(
    ("media_type", "pattern"),
    [
        pytest.param(media, pattern, id=f"{media} {name}", marks=xfail_if_known(bug) if bug else [])
        for media, name, pattern, bug in SHAPES
    ],
)
def test_pathological_input_is_linear(media_type: str, pattern: bytes) -> None:
    """One construct repeated, unclosed: four times the input may take about four times
    as long (linear), not sixteen (quadratic: hours on a 10 MiB file). Timed in CPU time
    of the calling thread, not wall time: a loaded machine stretches the wall time (the
    process waits for a core), not the CPU time the work needs. A ratio within one
    round, both sizes timed in turns, so a slow machine does not change the verdict
    either; 50 ms of slack for timings too short to measure. Contention for caches can
    still stretch one round's CPU time, so the verdict has to fail in each of `ROUNDS`
    rounds: a quadratic parser does (16 times as long, every time)."""

    def doc(size: int) -> RawDocument:
        return raw_document(media_type, b"Opening words. " + pattern * (size // len(pattern)))

    small_doc, large_doc = doc(8_000), doc(32_000)
    rounds = []
    for _ in range(ROUNDS):
        small, large = _best_of_three(small_doc, large_doc)
        rounds.append(f"8 KB: {small:.3f} s, 32 KB: {large:.3f} s")
        if large < 8 * small + 0.05:
            break
    assert large < 8 * small + 0.05, "CPU time in every round: " + "; ".join(rounds)
