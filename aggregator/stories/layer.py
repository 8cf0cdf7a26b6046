"""Layer: the story index kept in step with the store, one article at a time.

Every new article is handed over by the ingest recorder as it is stored
(`place`), and placed when all the articles of its transaction are stored
and their passages and passage clusters decided (`settle`), still inside
that transaction, so an article is never stored without its story, nor the
other way round:

* **What it reads of the article**: its title and paragraphs (terms.py), its
  publication time, and the days its text states (dates.py), read against
  that time when the article is dated; an undated file (its time is only the
  file's) gives only the calendar dates it names.
* **Passage links win**: an article whose passage cluster already has a
  member in a story joins that story (the must-link); passage clusters and
  their ids are not touched.
* **Restart and other processes**: the open stories (a member inside
  `window_days` of the latest member of any story: the stream's clock, as
  in assign.py, not the wall's, so an archive of dated files restarts as it
  ran) are loaded at start; before each transaction's first
  article, stories another process changed since are loaded again
  (`begin`, by the stories' `seq`). Document frequencies are saved every
  `SAVE_EVERY` articles and when ingest ends.
* **A group's arrival order does not matter**: the pipeline hands the
  layer the articles of each transaction (`learn`) before it stores the
  first, so every article of a folder scan's group or a feed's poll is
  weighed by the same document frequencies; and `settle` places them in
  the order they were published (their location breaks ties), so a folder's
  files give the same stories whatever order the disk lists them in.
* **Rollback**: the pipeline rolls a group back when one article of it is
  refused; the index then holds joins that never happened. `rolled_back`
  takes the transaction's articles out of the document frequencies again
  (the layer keeps their terms from `learn` on) and loads the stories back
  from the store.

An updated article (a new version) keeps the story it joined first, and its
terms are not counted again (`skip`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from aggregator.config import StoriesConfig
from aggregator.model import Article, as_utc, format_time, parse_time
from aggregator.storage.events import StoredStory, StoryWrite
from aggregator.storage.protocol import Store
from aggregator.stories.assign import Decision, StoryIndex, StoryParams
from aggregator.stories.dates import event_day, stated_days
from aggregator.stories.frequencies import Frequencies
from aggregator.stories.terms import Terms, TermWeights, article_terms

log = logging.getLogger(__name__)

SAVE_EVERY = 2000  # articles between two saves of the document frequencies
_ORDER = itemgetter(0, 1)  # a pending article's (publication time, location)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the story layer reads of an article: its weighted terms, the day it
    reports on (a date ordinal, if known), and its time (seconds since the epoch)."""

    terms: Terms
    day: int | None
    when: float


def read_article(article: Article, weights: TermWeights) -> Reading:
    """A pure function of the article, so the preparing pool does it (prepare.py)."""
    terms = article_terms(article.title, list(article.paragraphs), weights)
    text = "\n".join([article.title, *article.paragraphs])
    published = as_utc(article.published_at)
    stated = stated_days(text, published.date(), relative=article.dated)
    day = event_day(stated, published.date() if article.dated else None)
    return Reading(terms, day, published.timestamp())


class StoryLayer:
    """The event-story index of one ingesting process."""

    def __init__(self, store: Store, config: StoriesConfig) -> None:
        self.store = store
        self.params = StoryParams.from_config(config)
        documents, counts = self.store.events.frequencies()
        frequencies = Frequencies()
        frequencies.counts, frequencies.documents = Counter(counts), documents
        self.unsaved = 0
        self._new_transaction()
        self.index = StoryIndex(self.params, frequencies)
        latest = self.store.events.latest_at()
        if latest is not None:  # the open stories, as stored
            since = parse_time(latest) - timedelta(days=self.params.window_days)
            for story in self.store.events.open_stories(format_time(since)):
                self._load(story)
        self.seq = self.store.events.last_seq()
        self.begun_seq = self.seq  # `seq` when the current transaction began

    def _new_transaction(self) -> None:
        """Forget what the layer kept of the last transaction's articles."""
        # This transaction's articles counted in the frequencies: id(reading) -> reading.
        self.journal: dict[int, Reading] = {}
        self.placed = 0  # ...of which placed
        self.pending: list[tuple[float, str, int, Reading]] = []  # (when, location, id, reading)
        self.clustered = False  # a pending article is in a passage cluster
        self.touched: set[int] = set()  # stories this transaction's articles joined or started

    def begin(self) -> None:
        """A write transaction starts: catch up the stories other processes changed."""
        self._new_transaction()
        for story in self.store.events.changed_since(self.seq):
            self._load(story)
            self.seq = max(self.seq, story.seq)
        # Writers are serialised and this runs inside the transaction, so no one
        # else changes a story until it ends: its changes are numbered from here.
        self.begun_seq = self.seq

    def rolled_back(self) -> None:
        """Undo in memory what the rolled-back transaction's articles did: their
        terms leave the frequencies, and the stories they joined or started are
        put back as stored (gone, if they started them)."""
        self.seq = self.begun_seq  # the numbers it used were never stored
        for reading in self.journal.values():
            self.index.frequencies.remove(reading.terms.weights)
        self.index.arrivals -= self.placed
        for story_id in self.touched:
            self.index.forget(story_id)
        for story in self.store.events.stories(self.touched):
            self._load(story)
        self._new_transaction()

    def learn(self, readings: list[Reading]) -> None:
        """Count the terms of the transaction's articles before any is placed."""
        for reading in readings:
            if id(reading) not in self.journal:
                self.index.learn(reading.terms)
                self.journal[id(reading)] = reading

    def skip(self, reading: Reading) -> None:
        """An article learnt but not placed (a new version of a stored one): uncount it."""
        if self.journal.pop(id(reading), None) is not None:
            self.index.frequencies.remove(reading.terms.weights)

    def place(self, article_id: int, reading: Reading, location: str, clustered: bool) -> None:
        """A newly stored article, to be placed by `settle` (`clustered`: it is in a
        passage cluster)."""
        self.learn([reading])
        self.pending.append((reading.when, location, article_id, reading))
        self.clustered = self.clustered or clustered

    def settle(self) -> None:
        """Place the transaction's new articles, in publication order, and store their
        stories (the caller's transaction)."""
        pending, self.pending = sorted(self.pending, key=_ORDER), []
        # A passage cluster's story is looked up only in a transaction that has one
        # (an earlier article may have joined a cluster that a later one made).
        clustered, self.clustered = self.clustered, False
        for _, _, article_id, reading in pending:
            self._place(article_id, reading, clustered)

    def _place(self, article_id: int, reading: Reading, clustered: bool) -> Decision:
        terms, day = reading.terms, reading.day
        linked = self.store.events.story_of_article_cluster(article_id) if clustered else None
        now = format_time(datetime.now(UTC))
        decision = self.index.add(
            terms,
            reading.when,
            day,
            linked,
            new_id=lambda: self.store.events.new_story(now),
            learned=True,
        )
        self.placed += 1
        self.touched.add(decision.story_id)
        story = self.index.stories[decision.story_id]
        self.seq += 1
        self.store.events.save(
            StoryWrite(
                story_id=story.id,
                article_id=article_id,
                seq=self.seq,
                now=now,
                first_at=format_time(datetime.fromtimestamp(story.first, UTC)),
                last_at=format_time(datetime.fromtimestamp(story.last, UTC)),
                articles=story.size,
                event_days=tuple(sorted(story.days)),
                centroid=tuple(
                    (key, weight, story.labels.get(key, "?"))
                    for key, weight in story.centroid.items()
                ),
                reason=decision.reason,
                score=decision.score,
                shared=decision.shared,
                event_day=None if day is None else date.fromordinal(day).isoformat(),
                days_apart=decision.days_apart,
            )
        )
        self.unsaved += 1
        if self.unsaved >= SAVE_EVERY:
            self.save_frequencies()
        return decision

    def save_frequencies(self) -> None:
        """Write the document frequencies changed since the last save."""
        frequencies = self.index.frequencies
        changed = {k: frequencies.counts[k] for k in frequencies.changed}
        self.store.events.save_frequencies(frequencies.documents, changed)
        if frequencies.dropped:
            self.store.events.forget_terms(sorted(frequencies.dropped))
        frequencies.changed, frequencies.dropped = set(), set()
        self.unsaved = 0

    def _load(self, story: StoredStory) -> None:
        self.index.load(
            story.id,
            {key: weight for key, weight, _ in story.centroid},
            {key: term for key, _, term in story.centroid},
            story.articles,
            parse_time(story.first_at).timestamp(),
            parse_time(story.last_at).timestamp(),
            set(story.event_days),
        )
