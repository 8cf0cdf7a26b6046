"""Background: a passage reused across unrelated stories links none of them.

Outlets reuse standard background paragraphs ("Russia began its air campaign
in Syria on 30 September ...") in stories that have nothing else in common.
Linked like any shared passage, one such paragraph chains every story that
quotes it into one: measured for issue 11 on 200 loopback feeds, where about
11% of paragraphs came from a pool of 100 background paragraphs, the first
poll made all 3,698 articles one story.

The rule: a passage is background once its carriers fall into at least
`background_min_stories` different stories *by everything else they share*
(the links of their other passages) and were published at least
`background_min_hours` apart. Then it links nothing, and the links it made
before are withdrawn (the caller rebuilds the stories they touched).

Why this separates background from wire copy:

* a wire story of several paragraphs stays one story however widely it is
  carried, because its carriers also share its other paragraphs, so they are
  one story by other evidence;
* a single wire paragraph carried in a burst stays linked, because its copies
  are hours apart, not days;
* background is reused over days by stories that share nothing else.

Until a background passage reaches its third story it may have joined two:
the decision is made as soon as the evidence exists, and undone then.
The test looks at the newest `SAMPLE` carriers only, so its cost per new
carrier is bounded however widely a passage is carried.
"""

from __future__ import annotations

from datetime import timedelta

from aggregator.config import ClusterConfig
from aggregator.dedup.cluster import components
from aggregator.model import parse_time
from aggregator.storage.store import Store

# Carriers of a passage looked at when deciding whether it is background.
SAMPLE = 64


class Background:
    """Finds background passages and withdraws their links, in the caller's transaction."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config

    def spread(self, passage: int) -> bool:
        """Has this passage just been found spread over unrelated stories?"""
        background, carriers, first, last = self.store.execute(
            "SELECT background, carriers, first_published_at, last_published_at "
            "FROM passages WHERE id = ?",
            (passage,),
        ).fetchone()
        wanted = self.config.background_min_stories
        if background or carriers < wanted:
            return False
        spread = parse_time(last) - parse_time(first)
        if spread < timedelta(hours=self.config.background_min_hours):
            return False
        sample = [
            int(r[0])
            for r in self.store.execute(
                "SELECT article_id FROM passage_carriers WHERE passage_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (passage, SAMPLE),
            )
        ]
        return len(components(set(sample), self._other_links(passage, sample))) >= wanted

    def _other_links(self, passage: int, articles: list[int]) -> list[tuple[int, int]]:
        """Linking pairs that touch `articles` through passages other than `passage`."""
        marks = ",".join("?" * len(articles))
        return [
            (int(a), int(b))
            for a, b in self.store.execute(
                "SELECT c.article_id, m.article_id FROM passage_carriers c "
                "JOIN passage_carriers m ON m.id = c.matched_id "
                f"WHERE c.linked = 1 AND c.passage_id != ? AND c.article_id IN ({marks}) "
                "UNION SELECT c.article_id, m.article_id FROM passage_carriers m "
                "JOIN passage_carriers c ON c.matched_id = m.id "
                f"WHERE c.linked = 1 AND c.passage_id != ? AND m.article_id IN ({marks})",
                (passage, *articles, passage, *articles),
            )
        ]

    def withdraw(self, passage: int) -> set[int]:
        """Mark a passage background and unlink its carriers; the articles they joined."""
        self.store.execute("UPDATE passages SET background = 1 WHERE id = ?", (passage,))
        joined: set[int] = set()
        for a, b in self.store.execute(
            "SELECT c.article_id, m.article_id FROM passage_carriers c "
            "JOIN passage_carriers m ON m.id = c.matched_id "
            "WHERE c.passage_id = ? AND c.linked = 1",
            (passage,),
        ):
            joined.update((int(a), int(b)))
        self.store.execute(
            "UPDATE passage_carriers SET linked = 0, reason = 'background' "
            "WHERE passage_id = ? AND linked = 1",
            (passage,),
        )
        return joined
