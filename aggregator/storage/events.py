"""Event stories in the store: stories, their members and why each joined, and the
stream's document frequencies (schema version 10; the decisions: aggregator/stories/).

A story row holds what the in-memory index needs to go on after a restart (its
centroid as JSON, its event days, its first and latest member's time), so
nothing is recomputed from text; `seq` rises with every write, so a process
can catch up the stories another one changed (`changed_since`). Document
frequencies are saved in batches (`save_frequencies`), not per article: they
are statistics, and losing the last few minutes of them to a crash changes
no stored decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.storage.store import Store

_STORY_COLUMNS = "id, seq, first_at, last_at, articles, event_days, centroid"


@dataclass(frozen=True, slots=True)
class StoredStory:
    """A story as stored: enough to put it back in the index."""

    id: int
    seq: int
    first_at: str
    last_at: str
    articles: int
    event_days: tuple[int, ...]  # date ordinals
    centroid: tuple[tuple[int, float, str], ...]  # (term key, weight, term)


@dataclass(frozen=True, slots=True)
class StoryWrite:
    """A story's state after an article joined it, and why the article joined."""

    story_id: int
    article_id: int
    seq: int  # the writer's next change number (writers are serialised)
    now: str
    first_at: str
    last_at: str
    articles: int
    event_days: tuple[int, ...]
    centroid: tuple[tuple[int, float, str], ...]
    reason: str  # "new", "similar" or "passage"
    score: float
    shared: tuple[str, ...]
    event_day: str | None  # ISO date
    days_apart: int | None


@dataclass(frozen=True, slots=True)
class EventStoryRow:
    """A story for people: `aggregator stories`."""

    id: int
    first_at: str
    last_at: str
    articles: int
    terms: str
    event_days: str


@dataclass(frozen=True, slots=True)
class EventMemberRow:
    """A member for people: `aggregator story ID`."""

    article_id: int
    title: str
    source: str
    published_at: str
    reason: str
    score: float
    shared: str
    event_day: str | None
    days_apart: int | None
    cluster_id: int | None


def _days(text: str) -> tuple[int, ...]:
    """Stored ISO dates ("2015-10-07,2015-10-08") back as date ordinals."""
    return tuple(date.fromisoformat(d).toordinal() for d in text.split(",") if d)


def _story(row: tuple[Any, ...]) -> StoredStory:
    centroid = tuple((int(k), float(w), str(t)) for k, w, t in json.loads(row[6]))
    return StoredStory(
        int(row[0]), int(row[1]), row[2], row[3], int(row[4]), _days(row[5]), centroid
    )


class SQLEvents:
    """The implementation in SQL (both engines), reached as `store.events`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def new_story(self, now: str) -> int:
        """A new, empty story's id (its row is filled by `save`)."""
        story_id = self._store.ids.one("event_stories")
        self._store.execute(
            "INSERT INTO event_stories (id, seq, created_at, updated_at, first_at, last_at, "
            "articles, event_days, terms, centroid) VALUES (?, 0, ?, ?, ?, ?, 0, '', '', '[]')",
            (story_id, now, now, now, now),
        )
        return story_id

    def save(self, write: StoryWrite) -> None:
        """Store the story's new state and its new member.

        The caller numbers the change (`write.seq`): it has read the highest
        number inside its transaction, after the writers' lock, so nothing is
        read back here, and on PostgreSQL the statement needs no answer."""
        w = write
        strongest = sorted(w.centroid, key=lambda c: -c[1])[:8]
        self._store.execute(
            "UPDATE event_stories SET seq = ?, updated_at = ?, "
            "first_at = ?, last_at = ?, articles = ?, event_days = ?, terms = ?, "
            "centroid = ? WHERE id = ?",
            (
                w.seq,
                w.now,
                w.first_at,
                w.last_at,
                w.articles,
                ",".join(date.fromordinal(d).isoformat() for d in w.event_days),
                ", ".join(t for _, _, t in strongest),
                json.dumps([[k, round(v, 6), t] for k, v, t in w.centroid]),
                w.story_id,
            ),
        )
        self._store.execute(
            "INSERT INTO event_members (article_id, story_id, reason, score, shared, "
            "event_day, days_apart, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (article_id) DO NOTHING",
            (
                w.article_id,
                w.story_id,
                w.reason,
                round(w.score, 4),
                ", ".join(w.shared),
                w.event_day,
                w.days_apart,
                w.now,
            ),
        )

    def story_of_article_cluster(self, article_id: int) -> int | None:
        """The story of the earliest placed member of the article's passage cluster."""
        row = self._store.execute(
            "SELECT e.story_id FROM cluster_members own "
            "JOIN cluster_members m ON m.cluster_id = own.cluster_id "
            "JOIN event_members e ON e.article_id = m.article_id "
            "WHERE own.article_id = ? ORDER BY e.article_id LIMIT 1",
            (article_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def open_stories(self, since: str) -> list[StoredStory]:
        """Stories whose latest member is at `since` or later, oldest id first."""
        rows = self._store.execute(
            f"SELECT {_STORY_COLUMNS} FROM event_stories WHERE last_at >= ? AND articles > 0 "
            "ORDER BY id",
            (since,),
        ).fetchall()
        return [_story(r) for r in rows]

    def changed_since(self, seq: int) -> list[StoredStory]:
        rows = self._store.execute(
            f"SELECT {_STORY_COLUMNS} FROM event_stories WHERE seq > ? ORDER BY seq", (seq,)
        ).fetchall()
        return [_story(r) for r in rows]

    def stories(self, ids: Iterable[int]) -> list[StoredStory]:
        """These stories as stored (those that exist), by id."""
        wanted = sorted(set(ids))
        rows = (
            []
            if not wanted
            else self._store.execute(
                f"SELECT {_STORY_COLUMNS} FROM event_stories WHERE id IN "
                f"({', '.join('?' * len(wanted))}) AND articles > 0 ORDER BY id",
                tuple(wanted),
            ).fetchall()
        )
        return [_story(r) for r in rows]

    def latest_at(self) -> str | None:
        """The latest member's time over all stories: the stream's own clock."""
        row = self._store.execute("SELECT max(last_at) FROM event_stories").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def last_seq(self) -> int:
        row = self._store.execute("SELECT coalesce(max(seq), 0) FROM event_stories").fetchone()
        return int(row[0])

    def frequencies(self) -> tuple[int, dict[int, int]]:
        """(documents counted, term key -> documents using it)."""
        row = self._store.execute(
            "SELECT value FROM meta WHERE key = 'events.documents'"
        ).fetchone()
        counts = {
            int(k): int(n)
            for k, n in self._store.execute("SELECT term, documents FROM event_terms")
        }
        return (int(row[0]) if row else 0), counts

    def save_frequencies(self, documents: int, changed: Mapping[int, int]) -> None:
        """Write the counts of the terms changed since the last save, and the total."""
        self._store.insert_rows(  # a few statements, not one per term
            "event_terms (term, documents)",
            list(changed.items()),
            conflict="ON CONFLICT (term) DO UPDATE SET documents = excluded.documents",
        )
        self._store.execute(
            "INSERT INTO meta (key, value) VALUES ('events.documents', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(documents),),
        )

    def forget_terms(self, terms: Iterable[int]) -> None:
        """Drop terms the bounded frequencies pruned."""
        self._store.executemany("DELETE FROM event_terms WHERE term = ?", [(t,) for t in terms])

    def listing(self, limit: int) -> list[EventStoryRow]:
        """The most recently active stories of more than one article, newest first."""
        rows = self._store.execute(
            "SELECT id, first_at, last_at, articles, terms, event_days FROM event_stories "
            "WHERE articles > 1 ORDER BY last_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [EventStoryRow(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5]) for r in rows]

    def members(self, story_id: int) -> list[EventMemberRow]:
        rows = self._store.execute(
            "SELECT e.article_id, a.title, s.name, a.published_at, e.reason, e.score, "
            "e.shared, e.event_day, e.days_apart, m.cluster_id FROM event_members e "
            "JOIN articles a ON a.id = e.article_id JOIN sources s ON s.id = a.source_id "
            "LEFT JOIN cluster_members m ON m.article_id = e.article_id "
            "WHERE e.story_id = ? ORDER BY e.article_id",
            (story_id,),
        ).fetchall()
        return [
            EventMemberRow(
                int(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                float(r[5]),
                r[6],
                r[7],
                None if r[8] is None else int(r[8]),
                None if r[9] is None else int(r[9]),
            )
            for r in rows
        ]
