"""Assign: each new article joins the event story it is most like, or starts one.

A single pass over the stream, as articles arrive (the decision is never
revisited, so a story's members do not move under a reader's feet):

1. **Learn the document frequencies first** (frequencies.py): IDF comes from
   the stream itself, so a word the week's news is full of ("missile",
   "ceasefire") weighs less than the names that tell its events apart.
2. **The article's vector**: its weighted terms (terms.py) times IDF,
   normalised to length 1.
3. **Candidate stories**: the active stories (a member within `window_days`
   of the article's time) whose centroids hold one of the article's
   `candidate_terms` strongest terms. Stories outside the window are
   forgotten here (they stay in the store). Where more than
   `candidate_stories` do, only those that score best on those strong terms
   alone (quiet decay included) are scored in full: a common strong term is
   held by a share of every story in the window, so without that bound the
   cost of placing an article grew with the window's stories (docs/benchmarks.md,
   "Event stories at 17,000 articles in one window").
4. **Score**: the cosine between the article and the story's centroid. When
   the article's event day (dates.py `event_day`: the latest day it states
   up to its publication) is more than `date_tolerance_days` from every
   member's, the score is multiplied by `date_penalty`: the same words about
   a different day are a sibling event. A story that
   has gone quiet while the stream went on loses half its score for every
   `quiet_articles` articles placed since its latest member: an event's
   coverage comes in a burst, and a day-later report of the same kind of
   thing (the next day's market close) is usually the next event. The clock
   is the stream's own, not the wall's, so a reader with few feeds keeps
   stories open for as long in articles as one with many.
5. **Join** the best story scoring at least `threshold`, or start a new one. A
   passage link (the article shares a passage with a member of an active
   story) is a must-link and wins over the score. Where there is no day to
   compare (an undated file that names no calendar date, or a story of such
   files), the words alone must score at least `undated_threshold`: nothing
   then tells a sibling event from the same one, and at the low dated
   threshold an undated round-up joins whichever story it met first (the
   seeds: README, "Event stories").

A centroid is the sum of its members' vectors, cut to its `centroid_terms`
strongest terms, so a story costs the same memory however large it grows.
The figures behind the defaults are in docs/benchmarks.md ("Event stories").
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Literal

from aggregator.config import StoriesConfig
from aggregator.stories.frequencies import Frequencies
from aggregator.stories.terms import Terms, TermWeights

DAY = 86_400.0
_DEFAULTS = StoriesConfig()


@dataclass(frozen=True, slots=True)
class StoryParams:
    """The story layer's thresholds and weights (`[stories]` in the config, whose
    defaults these are; the centroid and candidate sizes are not configurable)."""

    threshold: float = _DEFAULTS.threshold
    undated_threshold: float = _DEFAULTS.undated_threshold
    window_days: float = _DEFAULTS.window_days
    date_tolerance_days: int = _DEFAULTS.date_tolerance_days
    date_penalty: float = _DEFAULTS.date_penalty
    centroid_terms: int = 64
    candidate_terms: int = 12
    candidate_stories: int = 64  # the most scored in full per article (see step 3)
    # A story's score halves per this many articles since its latest member (0: off).
    quiet_articles: int = _DEFAULTS.quiet_articles
    weights: TermWeights = field(default_factory=TermWeights)
    use_dates: bool = True

    @classmethod
    def from_config(cls, config: StoriesConfig) -> StoryParams:
        weights = TermWeights(
            title_weight=config.title_weight,
            name_weight=config.name_weight,
            number_weight=config.number_weight,
            lead_words=config.lead_words,
        )
        return cls(
            threshold=config.threshold,
            undated_threshold=config.undated_threshold,
            window_days=config.window_days,
            date_tolerance_days=config.date_tolerance_days,
            date_penalty=config.date_penalty,
            quiet_articles=config.quiet_articles,
            weights=weights,
        )


@dataclass(slots=True)
class Story:
    """An event story as the index holds it while it is active."""

    id: int
    centroid: dict[int, float]
    norm: float
    size: int
    first: float  # seconds since the epoch: its earliest and latest member's time
    last: float
    days: set[int]
    labels: dict[int, str]  # key -> term, for the centroid's terms
    arrived: int = 0  # the index's arrival count when its latest member joined


Reason = Literal["passage", "similar", "new"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where an article went, and why."""

    story_id: int
    reason: Reason
    score: float = 0.0  # the cosine (after any date penalty) with the story joined
    shared: tuple[str, ...] = ()  # the terms that weighed most in the score
    days_apart: int | None = None  # days between the article's event day and the story's nearest


_MAX_DAYS = 64  # event days a story keeps (the most recent)


_WEIGHT = itemgetter(1)  # of a (term key, weight) pair


def _nearest(a: set[int], b: set[int]) -> int:
    return min(abs(x - y) for x in a for y in b)


class StoryIndex:
    """The active stories and the stream's document frequencies."""

    def __init__(self, params: StoryParams, frequencies: Frequencies | None = None) -> None:
        self.params = params
        self.frequencies = frequencies or Frequencies()
        self.stories: dict[int, Story] = {}
        self._by_term: dict[int, set[int]] = {}
        self._expiry: list[tuple[float, int]] = []  # (last member's time, story id)
        self.next_id = 1
        self.arrivals = 0  # articles placed so far: the stream's own clock

    def vector(self, terms: Terms) -> dict[int, float]:
        """The article's IDF-weighted unit vector (frequencies as they stand)."""
        counts, documents = self.frequencies.counts, self.frequencies.documents
        top = math.log(1 + documents) + 1.0
        vector = {
            key: weight * (top - math.log(1 + counts.get(key, 0)))
            for key, weight in terms.weights.items()
        }
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        return {key: w / norm for key, w in vector.items()}

    def add(
        self,
        terms: Terms,
        when: float,
        day: int | None,
        linked: int | None = None,
        new_id: Callable[[], int] | None = None,
        learned: bool = False,
    ) -> Decision:
        """Place one article (`when`: its time; `day`: the day it reports on, a date
        ordinal, if known; `linked`: a story it shares a passage with; `new_id`:
        gives a new story its id, by default the next of this index's own;
        `learned`: its terms are already in the frequencies, see `learn`)."""
        days = {day} if day is not None and self.params.use_dates else set()
        params = self.params
        self.arrivals += 1
        if not learned:
            self.learn(terms)
        vector = self.vector(terms)
        self._expire(when)
        if linked is not None and linked in self.stories:
            story = self.stories[linked]
            score, apart = self._score(vector, days, story)
            shared = self._shared(vector, story, terms)
            self._join(story, vector, terms, when, days)
            return Decision(story.id, "passage", score, shared, apart)
        best: tuple[float, Story, int | None] | None = None
        for story in self._candidates(vector):
            if story.first - when > params.window_days * DAY:
                continue  # an article far older than the story (a late arrival)
            score, apart = self._score(vector, days, story)
            if apart is None and params.use_dates and score < params.undated_threshold:
                continue  # no day to compare, and the words alone do not agree enough
            if params.quiet_articles:
                score *= 0.5 ** ((self.arrivals - story.arrived) / params.quiet_articles)
            if best is None or score > best[0]:
                best = (score, story, apart)
        if best is not None and best[0] >= params.threshold:
            score, story, apart = best
            shared = self._shared(vector, story, terms)
            self._join(story, vector, terms, when, days)
            return Decision(story.id, "similar", score, shared, apart)
        if new_id is None:
            story_id, self.next_id = self.next_id, self.next_id + 1
        else:
            story_id = new_id()
        story = Story(story_id, {}, 0.0, 0, when, when, set(), {})
        self.stories[story.id] = story
        self._join(story, vector, terms, when, days)
        return Decision(story.id, "new")

    def learn(self, terms: Terms) -> None:
        """Count an article's terms in the document frequencies. `add` does it, unless
        told the caller did first: articles that arrive together (a folder scan's
        group, a feed's entries) are all learnt before any is placed, so each is
        weighed by the same frequencies whatever their order."""
        self.frequencies.add(terms.weights.keys())

    def load(
        self,
        story_id: int,
        centroid: dict[int, float],
        labels: dict[int, str],
        size: int,
        first: float,
        last: float,
        days: set[int],
    ) -> None:
        """Put a stored story (back) into the index, replacing any copy of it."""
        self.forget(story_id)
        story = Story(story_id, {}, 0.0, size, first, last, set(days), labels)
        story.arrived = self.arrivals
        self._set_centroid(story, centroid)
        self.stories[story_id] = story
        self.next_id = max(self.next_id, story_id + 1)
        heapq.heappush(self._expiry, (story.last, story.id))

    def forget(self, story_id: int) -> None:
        """Drop a story from memory (it stays in the store)."""
        story = self.stories.pop(story_id, None)
        if story is None:
            return
        for key in story.centroid:
            holders = self._by_term.get(key)
            if holders is not None:
                holders.discard(story_id)
                if not holders:
                    del self._by_term[key]

    def _candidates(self, vector: dict[int, float]) -> list[Story]:
        """The stories worth a full score, in id order (step 3 of the module's rules)."""
        params, stories = self.params, self.stories
        strongest = sorted(vector.items(), key=_WEIGHT, reverse=True)[: params.candidate_terms]
        partial: dict[int, float] = {}  # story id -> its dot product on the strong terms
        for key, weight in strongest:
            for story_id in self._by_term.get(key, ()):
                gain = weight * stories[story_id].centroid[key]
                partial[story_id] = partial.get(story_id, 0.0) + gain
        if len(partial) <= params.candidate_stories:
            return [stories[i] for i in sorted(partial)]

        def rough(story_id: int) -> float:
            story = stories[story_id]
            score = partial[story_id] / story.norm if story.norm else 0.0
            if params.quiet_articles:
                score *= 0.5 ** ((self.arrivals - story.arrived) / params.quiet_articles)
            return score

        best = heapq.nlargest(params.candidate_stories, partial, key=rough)
        return [stories[i] for i in sorted(best)]

    def _score(
        self, vector: dict[int, float], days: set[int], story: Story
    ) -> tuple[float, int | None]:
        """(cosine with the story's centroid after any date penalty, days apart)."""
        centroid = story.centroid
        dot = sum([vector[k] * centroid[k] for k in centroid.keys() & vector.keys()])
        score = dot / story.norm if story.norm else 0.0
        apart = None
        if self.params.use_dates and days and story.days:
            apart = _nearest(days, story.days)
            if apart > self.params.date_tolerance_days:
                score *= self.params.date_penalty
        return score, apart

    def _shared(self, vector: dict[int, float], story: Story, terms: Terms) -> tuple[str, ...]:
        """The five terms that weighed most in the article's score with `story`."""
        products = [(vector[k] * w, k) for k, w in story.centroid.items() if k in vector]
        top = heapq.nlargest(5, products)
        return tuple(terms.names.get(k) or story.labels.get(k, "?") for _, k in top)

    def _join(
        self, story: Story, vector: dict[int, float], terms: Terms, when: float, days: set[int]
    ) -> None:
        centroid = dict(story.centroid)
        for key, weight in vector.items():
            centroid[key] = centroid.get(key, 0.0) + weight
        if len(centroid) > self.params.centroid_terms:
            kept = sorted(centroid.items(), key=_WEIGHT, reverse=True)
            centroid = dict(kept[: self.params.centroid_terms])
        story.labels = {k: terms.names.get(k) or story.labels.get(k, "?") for k in centroid}
        self._set_centroid(story, centroid)
        story.size += 1
        story.arrived = self.arrivals
        story.first, story.last = min(story.first, when), max(story.last, when)
        story.days |= days
        if len(story.days) > _MAX_DAYS:
            story.days = set(sorted(story.days)[-_MAX_DAYS:])
        heapq.heappush(self._expiry, (story.last, story.id))

    def _set_centroid(self, story: Story, centroid: dict[int, float]) -> None:
        """Give `story` this centroid, keeping the term -> stories map in step."""
        for key in story.centroid.keys() - centroid.keys():
            holders = self._by_term.get(key)
            if holders is not None:
                holders.discard(story.id)
                if not holders:
                    del self._by_term[key]
        for key in centroid.keys() - story.centroid.keys():
            self._by_term.setdefault(key, set()).add(story.id)
        story.centroid = centroid
        story.norm = math.sqrt(sum(w * w for w in centroid.values()))

    def _expire(self, now: float) -> None:
        """Forget the stories whose latest member is older than the window."""
        horizon = now - self.params.window_days * DAY
        while self._expiry and self._expiry[0][0] < horizon:
            last, story_id = heapq.heappop(self._expiry)
            story = self.stories.get(story_id)
            if story is not None and story.last == last:
                self.forget(story_id)  # else an older entry of a story that went on
