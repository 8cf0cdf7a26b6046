"""Frequencies: how many articles of the stream used each term, learnt as they arrive.

IDF from the stream itself, not from a corpus shipped with the product: what
is common this week (the name of the war, the season's sport) must weigh
less, and no shipped list knows that. IDF is ln((1 + N) / (1 + df)) + 1, the
smoothed form, so a term no article has used yet weighs most, not infinitely.

**Bounded.** Terms are 63-bit keys (terms.py). Past `capacity` distinct
terms, the rarest half (those seen in fewest articles, most of them seen
once: names misspelt, numbers) is dropped; a dropped term counts as unseen
again, which is what it nearly was. So memory stays under about `capacity`
entries however long the daemon runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

DEFAULT_CAPACITY = 500_000


class Frequencies:
    """Document frequencies of hashed terms, and the number of documents."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.counts: Counter[int] = Counter()
        self.documents = 0
        # Since the store last saved them: keys counted, and keys pruned away.
        self.changed: set[int] = set()
        self.dropped: set[int] = set()

    def add(self, keys: Iterable[int]) -> None:
        """Count one document using each of `keys` (each key once)."""
        keys = list(keys)
        self.counts.update(keys)  # Counter.update counts in C
        self.changed.update(keys)
        self.documents += 1
        if len(self.counts) > self.capacity:
            self._prune()

    def remove(self, keys: Iterable[int]) -> None:
        """Take back one document `add` counted (a rolled-back or updated article)."""
        keys = list(keys)
        self.counts.subtract(keys)
        for key in keys:
            if self.counts[key] <= 0:
                del self.counts[key]
        self.changed.update(keys)
        self.documents -= 1

    def idf(self, key: int) -> float:
        return math.log((1 + self.documents) / (1 + self.counts.get(key, 0))) + 1.0

    def _prune(self) -> None:
        """Keep the `capacity // 2` most used terms."""
        ranked = sorted(self.counts.values(), reverse=True)
        floor = ranked[self.capacity // 2]
        kept = Counter({k: c for k, c in self.counts.items() if c > floor})
        gone = self.counts.keys() - kept.keys()
        self.dropped |= gone
        self.changed -= gone
        self.counts = kept
