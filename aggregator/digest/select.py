"""Digest: which stories a period's digest shows, and which of their paragraphs.

The rules (also in the README):

* **A period** covers the articles that *arrived* in it (`first_seen_at`),
  not those dated in it: a late-arriving article is news when it arrives.
  Anything that arrived earlier counts as shown by an earlier digest, so
  digests of consecutive periods never repeat a paragraph and the same
  period always gives the same digest (nothing is recorded to make it so).
* **Stories** are the clusters with an article that arrived in the period,
  ranked by how many distinct sources carry them, then by their latest
  arrival. Articles with no cluster partner come after them, compactly.
* **Events** group them: the passage stories and single articles whose
  articles are in one event story (stories/assign.py: the same event told in
  other words) are shown together, the event ranked by the distinct sources
  of all its articles, then by its latest arrival; inside it, its passage
  stories first (ranked as above), then its single articles, newest first.
  A single article alone in its event is "also reported".
* **A story** shows its canonical article's title, source and time, every
  source that carried it, then the canonical article's opening paragraphs
  and every further paragraph of it that later articles repeat (so each
  shared passage is shown once, in the canonical copy), when the canonical
  article itself arrived in the period; otherwise the story is an update.
  Then, for each later article that arrived in the period, in order of
  publication, only its **new** paragraphs: a paragraph
  is repeated, and collapsed into a count, when duplicated passages found
  against earlier articles of the story cover at least half of it, or when
  an earlier article has the same paragraph word for word.

Every decision above is made here; the database is read through `store.digests`
(storage/digests.py), which answers with records (`model.DigestArticle`,
`ParagraphText`, `SharedSpan`) and knows nothing of ranking or coverage.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from aggregator.model import DigestArticle, ParagraphText, format_time
from aggregator.storage.protocol import Store

OPENING_PARAGRAPHS = 3
LEAD_WORDS = 60
REPEATED_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class Addition:
    """What one later article added to a story: its new paragraphs, and how many it repeated."""

    entry: DigestArticle
    paragraphs: tuple[str, ...]
    repeated: int


@dataclass(frozen=True, slots=True)
class Story:
    cluster_id: int
    canonical: DigestArticle
    articles: tuple[DigestArticle, ...]  # every article of the story, canonical first
    opening: tuple[str, ...]  # canonical paragraphs shown; empty for an update
    more: int  # canonical paragraphs not shown
    additions: tuple[Addition, ...]
    sources: int
    latest: str

    @property
    def collapsed(self) -> int:
        return sum(a.repeated for a in self.additions)

    @property
    def is_update(self) -> bool:
        return not self.opening


@dataclass(frozen=True, slots=True)
class Single:
    """An article with no cluster partner, shown compactly."""

    entry: DigestArticle
    lead: str


@dataclass(frozen=True, slots=True)
class Event:
    """The passage stories and single articles of one event story in a digest."""

    story_id: int | None  # the event story (None: an article the story layer never placed)
    stories: tuple[Story, ...]
    singles: tuple[Single, ...]
    sources: int
    latest: str

    @property
    def reports(self) -> int:
        return sum(len(s.articles) for s in self.stories) + len(self.singles)

    @property
    def lead(self) -> DigestArticle:
        """The article whose title names the event: its top story's canonical copy."""
        return self.stories[0].canonical if self.stories else self.singles[0].entry

    @property
    def grouped(self) -> bool:
        """More than one thing to show: a heading of its own groups them."""
        return len(self.stories) + len(self.singles) > 1


@dataclass(frozen=True, slots=True)
class Digest:
    start: str
    end: str
    stories: tuple[Story, ...]
    singles: tuple[Single, ...]
    events: tuple[Event, ...] = ()  # stories and singles grouped by event, ranked

    @property
    def also_reported(self) -> tuple[Single, ...]:
        """The single articles alone in their event, newest first."""
        return tuple(s for e in self.events if not e.stories and not e.grouped for s in e.singles)

    @property
    def empty(self) -> bool:
        return not self.stories and not self.singles


def build_digest(store: Store, start: datetime, end: datetime) -> Digest:
    """The digest of the articles that arrived in [start, end)."""
    arrived = {entry.article_id: entry for entry in store.digests.arrivals(start, end)}
    clusters: dict[int, list[int]] = defaultdict(list)
    for member in store.digests.arrived_members(start, end):
        clusters[member.cluster_id].append(member.article_id)
    stories = sorted(
        (_story(store, cluster_id, arrived, end) for cluster_id in sorted(clusters)),
        key=lambda s: s.latest,
        reverse=True,
    )
    stories.sort(key=lambda s: s.sources, reverse=True)  # stable: recency breaks ties
    clustered = {a for ids in clusters.values() for a in ids}
    singles = [
        Single(entry, _lead(store.digests.paragraphs(entry.article_id)))
        # Newest first; among articles published the same second, the later stored
        # first: an order of the articles themselves, not of how a store returned them.
        for entry in sorted(
            arrived.values(), key=lambda e: (e.published_at, e.article_id), reverse=True
        )
        if entry.article_id not in clustered
    ]
    events = _events(store.digests.arrived_events(start, end), clusters, stories, singles)
    return Digest(format_time(start), format_time(end), tuple(stories), tuple(singles), events)


def _events(
    event_of: dict[int, int],
    clusters: dict[int, list[int]],
    stories: list[Story],
    singles: list[Single],
) -> tuple[Event, ...]:
    """Stories and singles grouped by the event story of their articles (a passage
    story: of its first arrived member that has one), ranked (module docstring)."""
    groups: dict[object, tuple[list[Story], list[Single]]] = {}
    for story in stories:
        placed = [event_of[a] for a in sorted(clusters[story.cluster_id]) if a in event_of]
        key: object = placed[0] if placed else ("cluster", story.cluster_id)
        groups.setdefault(key, ([], []))[0].append(story)
    for single in singles:
        article_id = single.entry.article_id
        key = event_of.get(article_id, ("article", article_id))
        groups.setdefault(key, ([], []))[1].append(single)
    events = []
    for key, (in_stories, in_singles) in groups.items():
        entries = [e for s in in_stories for e in s.articles] + [s.entry for s in in_singles]
        latest = max([s.latest for s in in_stories] + [s.entry.first_seen_at for s in in_singles])
        story_id = key if isinstance(key, int) else None
        sources = len({e.source for e in entries})
        events.append(Event(story_id, tuple(in_stories), tuple(in_singles), sources, latest))
    events.sort(key=lambda e: e.latest, reverse=True)
    events.sort(key=lambda e: e.sources, reverse=True)  # stable: recency breaks ties
    return tuple(events)


def _story(
    store: Store, cluster_id: int, arrived: dict[int, DigestArticle], end: datetime
) -> Story:
    canonical_id = store.digests.canonical_article(cluster_id)
    members = store.digests.story_articles(cluster_id, before=end)
    canonical = next((e for e in members if e.article_id == canonical_id), members[0])
    ordered = [canonical] + [e for e in members if e is not canonical]
    paragraphs = {e.article_id: store.digests.paragraphs(e.article_id) for e in ordered}
    opening: tuple[str, ...] = ()
    more = 0
    if canonical.article_id in arrived:
        own = paragraphs[canonical.article_id]
        shared = _coverage(store, canonical.article_id, [e.article_id for e in ordered[1:]])
        opening = tuple(
            p.text
            for n, p in enumerate(own)
            if n < OPENING_PARAGRAPHS or shared.get(p.paragraph_id)
        )
        more = len(own) - len(opening)
    additions = []
    seen_text = {_normal(p.text) for p in paragraphs[canonical.article_id]}
    for position, entry in enumerate(ordered[1:], start=1):
        earlier = [e.article_id for e in ordered[:position]]
        own = paragraphs[entry.article_id]
        if entry.article_id in arrived:
            covered = _coverage(store, entry.article_id, earlier)
            new = [
                p.text
                for p in own
                if _normal(p.text) not in seen_text
                and covered.get(p.paragraph_id, 0) < REPEATED_COVERAGE * max(1, len(p.text))
            ]
            additions.append(Addition(entry, tuple(new), len(own) - len(new)))
        seen_text.update(_normal(p.text) for p in own)
    return Story(
        cluster_id=cluster_id,
        canonical=canonical,
        articles=tuple(ordered),
        opening=opening,
        more=more,
        additions=tuple(additions),
        sources=len({e.source for e in ordered}),
        latest=max(e.first_seen_at for e in ordered),
    )


def _coverage(store: Store, article_id: int, earlier: list[int]) -> dict[int, int]:
    """Characters of each paragraph of the article covered by passages of earlier articles."""
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for span in store.digests.shared_spans(article_id, earlier):
        spans[span.paragraph_id].append((span.start, span.end))
    return {paragraph: _union_length(ranges) for paragraph, ranges in spans.items()}


def _union_length(ranges: list[tuple[int, int]]) -> int:
    total, reach = 0, -1
    for start, end in sorted(ranges):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def _lead(paragraphs: list[ParagraphText]) -> str:
    """The opening words of an article's first paragraph."""
    words = paragraphs[0].text.split() if paragraphs else []
    return " ".join(words[:LEAD_WORDS]) + (" ..." if len(words) > LEAD_WORDS else "")


_SPACE = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()
