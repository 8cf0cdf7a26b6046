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

`Background.find` reads what the rule needs through the store (a passage's
counts; for the few that could be background, its newest carriers and the
links among them) and decides with `looks_spread` and `spread_apart`, which
touch no store; it returns a `Withdrawal` that `store.passages.withdraw` carries
out, and the clusterer then rebuilds the stories of the articles it names.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from aggregator.config import ClusterConfig
from aggregator.dedup.cluster import components
from aggregator.model import parse_time
from aggregator.storage.passages import PassageSummary, Spread
from aggregator.storage.plans import Withdrawal
from aggregator.storage.protocol import Store

# Carriers of a passage looked at when deciding whether it is background.
SAMPLE = 64


def looks_spread(summary: PassageSummary, config: ClusterConfig) -> bool:
    """Could this passage have just become background: not yet marked, carried by
    enough articles, published far enough apart?"""
    if summary.background or summary.carriers < config.background_min_stories:
        return False
    spread = parse_time(summary.last_published_at) - parse_time(summary.first_published_at)
    return spread >= timedelta(hours=config.background_min_hours)


def spread_apart(spread: Spread, config: ClusterConfig) -> bool:
    """Do the sampled carriers fall into enough different stories by everything else
    they share?"""
    stories = components(set(spread.sample), spread.other_links)
    return len(stories) >= config.background_min_stories


class Background:
    """Finds the passages that have just become background (it writes nothing)."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config

    def find(self, passages: Iterable[int]) -> Withdrawal:
        """The withdrawal of those of `passages` just found spread over unrelated stories."""
        ids = sorted(set(passages))
        if not ids:
            return Withdrawal()
        found = tuple(
            s.id
            for s in self.store.passages.summaries(ids)
            if looks_spread(s, self.config)
            and spread_apart(self.store.passages.spread(s.id, SAMPLE), self.config)
        )
        if not found:
            return Withdrawal()
        return Withdrawal(found, frozenset(self.store.passages.linked_articles(found)))
