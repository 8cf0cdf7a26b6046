"""Counts in words (issue 13, item 7): never "1 sources" or "1 repeated paragraphs"."""

from __future__ import annotations

import pytest

from aggregator.plural import counted


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [
        (0, "source", "0 sources"),
        (1, "source", "1 source"),
        (2, "repeated paragraph", "2 repeated paragraphs"),
        (1, "passage match", "1 passage match"),
        (3, "passage match", "3 passage matches"),
        (2, "new article", "2 new articles"),
        (1, "error", "1 error"),
        (1, "entry", "1 entry"),
        (20, "entry", "20 entries"),
        (2, "day", "2 days"),
    ],
)
def test_counted(n: int, noun: str, expected: str) -> None:
    assert counted(n, noun) == expected
