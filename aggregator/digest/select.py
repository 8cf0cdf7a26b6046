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
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from aggregator.model import format_time
from aggregator.storage.store import Store

OPENING_PARAGRAPHS = 3
LEAD_WORDS = 60
REPEATED_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class Entry:
    """One article as a digest names it."""

    article_id: int
    title: str
    source: str
    location: str
    published_at: str
    first_seen_at: str

    @property
    def link(self) -> str | None:
        """The article's address if it is a web link (only those become links)."""
        return self.location if self.location.startswith(("http://", "https://")) else None


@dataclass(frozen=True, slots=True)
class Addition:
    """What one later article added to a story: its new paragraphs, and how many it repeated."""

    entry: Entry
    paragraphs: tuple[str, ...]
    repeated: int


@dataclass(frozen=True, slots=True)
class Story:
    cluster_id: int
    canonical: Entry
    articles: tuple[Entry, ...]  # every article of the story, canonical first
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

    entry: Entry
    lead: str


@dataclass(frozen=True, slots=True)
class Digest:
    start: str
    end: str
    stories: tuple[Story, ...]
    singles: tuple[Single, ...]

    @property
    def empty(self) -> bool:
        return not self.stories and not self.singles


_ENTRY_SQL = (
    "SELECT a.id, a.title, s.name, a.location, a.published_at, a.first_seen_at "
    "FROM articles a JOIN sources s ON s.id = a.source_id"
)


# Articles that arrived in [since, until), and their clusters: searched through the
# articles_first_seen index (schema version 5).
ARRIVED_SQL = f"{_ENTRY_SQL} WHERE a.first_seen_at >= ? AND a.first_seen_at < ?"
ARRIVED_CLUSTERS_SQL = (
    "SELECT m.article_id, m.cluster_id FROM cluster_members m "
    "JOIN articles a ON a.id = m.article_id "
    "WHERE a.first_seen_at >= ? AND a.first_seen_at < ?"
)


def build_digest(store: Store, start: datetime, end: datetime) -> Digest:
    """The digest of the articles that arrived in [start, end)."""
    since, until = format_time(start), format_time(end)
    arrived = {row[0]: Entry(*row) for row in store.execute(ARRIVED_SQL, (since, until))}
    clusters: dict[int, list[int]] = defaultdict(list)
    for article_id, cluster_id in store.execute(ARRIVED_CLUSTERS_SQL, (since, until)):
        clusters[cluster_id].append(article_id)
    stories = sorted(
        (_story(store, cluster_id, arrived, until) for cluster_id in sorted(clusters)),
        key=lambda s: s.latest,
        reverse=True,
    )
    stories.sort(key=lambda s: s.sources, reverse=True)  # stable: recency breaks ties
    clustered = {a for ids in clusters.values() for a in ids}
    singles = [
        Single(entry, _lead(store, entry.article_id))
        for entry in sorted(arrived.values(), key=lambda e: e.published_at, reverse=True)
        if entry.article_id not in clustered
    ]
    return Digest(since, until, tuple(stories), tuple(singles))


def _story(store: Store, cluster_id: int, arrived: dict[int, Entry], until: str) -> Story:
    canonical_id = store.execute(
        "SELECT canonical_article_id FROM clusters WHERE id = ?", (cluster_id,)
    ).fetchone()[0]
    members = [
        Entry(*row)
        for row in store.execute(
            f"{_ENTRY_SQL} JOIN cluster_members m ON m.article_id = a.id "
            "WHERE m.cluster_id = ? AND a.first_seen_at < ? ORDER BY a.published_at, a.id",
            (cluster_id, until),
        )
    ]
    canonical = next((e for e in members if e.article_id == canonical_id), members[0])
    ordered = [canonical] + [e for e in members if e is not canonical]
    paragraphs = {e.article_id: _paragraphs(store, e.article_id) for e in ordered}
    opening: tuple[str, ...] = ()
    more = 0
    if canonical.article_id in arrived:
        own = paragraphs[canonical.article_id]
        shared = _coverage(store, canonical.article_id, [e.article_id for e in ordered[1:]])
        opening = tuple(
            text for n, (pid, text) in enumerate(own) if n < OPENING_PARAGRAPHS or shared.get(pid)
        )
        more = len(own) - len(opening)
    additions = []
    seen_text = {_normal(t) for _, t in paragraphs[canonical.article_id]}
    for position, entry in enumerate(ordered[1:], start=1):
        earlier = [e.article_id for e in ordered[:position]]
        own = paragraphs[entry.article_id]
        if entry.article_id in arrived:
            covered = _coverage(store, entry.article_id, earlier)
            new = [
                text
                for pid, text in own
                if _normal(text) not in seen_text
                and covered.get(pid, 0) < REPEATED_COVERAGE * max(1, len(text))
            ]
            additions.append(Addition(entry, tuple(new), len(own) - len(new)))
        seen_text.update(_normal(t) for _, t in own)
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


def _paragraphs(store: Store, article_id: int) -> list[tuple[int, str]]:
    """(paragraph id, text) of the article's current version, in order."""
    return [
        (row[0], row[1])
        for row in store.execute(
            "SELECT p.id, p.text FROM paragraphs p "
            "JOIN article_versions v ON v.id = p.version_id "
            "JOIN articles a ON a.id = v.article_id AND a.version = v.version "
            "WHERE a.id = ? ORDER BY p.position",
            (article_id,),
        )
    ]


def _coverage(store: Store, article_id: int, earlier: list[int]) -> dict[int, int]:
    """Characters of each paragraph of the article covered by passages of earlier articles."""
    if not earlier:
        return {}
    marks = ",".join("?" * len(earlier))
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for paragraph, start, end in store.execute(
        "SELECT c.paragraph_id, c.char_start, c.char_end FROM passage_carriers c "
        "WHERE c.article_id = ? AND EXISTS (SELECT 1 FROM passage_carriers o "
        f"WHERE o.passage_id = c.passage_id AND o.article_id IN ({marks}))",
        (article_id, *earlier),
    ):
        spans[paragraph].append((start, end))
    return {paragraph: _union_length(ranges) for paragraph, ranges in spans.items()}


def _union_length(ranges: list[tuple[int, int]]) -> int:
    total, reach = 0, -1
    for start, end in sorted(ranges):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def _lead(store: Store, article_id: int) -> str:
    paragraphs = _paragraphs(store, article_id)
    words = paragraphs[0][1].split() if paragraphs else []
    return " ".join(words[:LEAD_WORDS]) + (" ..." if len(words) > LEAD_WORDS else "")


_SPACE = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()
