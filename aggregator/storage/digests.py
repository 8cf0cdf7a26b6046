"""What digests and the stories feed read: arrivals of a period, their stories and paragraphs.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses
(`aggregator.model`: `DigestArticle`, `StoryMember`, `ParagraphText`,
`SharedSpan`) and aware datetimes, never stored text or rows. Which stories and
paragraphs a digest shows is decided in `digest/select.py`; this module only
answers its questions:

* **Arrivals** are found by `first_seen_at` through the `articles_first_seen`
  index (schema version 5): digests and the stories feed are rebuilt after
  every job that stored something, and must not scan a table that only grows
  (`ARRIVED_SQL` and `ARRIVED_CLUSTERS_SQL` are module constants so that a
  test can ask SQLite for their plans).
* **A story's articles** are those that arrived before the end of the period,
  in order of publication (then id): an article that arrived later belongs to
  a later digest, even if it is in the story now.
* **Paragraphs** are those of an article's current version; the spans shared
  with earlier articles come from `passage_carriers` (a passage that both the
  article and one of the earlier ones carry).
* **Event stories** (`event_members`) of the period's arrivals group the
  digest's passage stories and single articles by event.
* **An article's source** is its outlet where the article names one (a
  folder of saved pages from many outlets), else its source's name.
* **The stories feed's id** is kept in `meta` (`digest.feed_id`); the caller
  says how to make one, this module only makes sure the first one stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.model import (
    DigestArticle,
    ParagraphText,
    SharedSpan,
    StoryMember,
    format_time,
    parse_time,
)

if TYPE_CHECKING:
    from aggregator.storage.store import Store

_ARTICLE_SQL = (
    "SELECT a.id, a.title, coalesce(a.outlet, s.name), a.location, a.published_at, "
    "a.first_seen_at "
    "FROM articles a JOIN sources s ON s.id = a.source_id"
)

# Articles that arrived in [since, until), and their clusters.
ARRIVED_SQL = f"{_ARTICLE_SQL} WHERE a.first_seen_at >= ? AND a.first_seen_at < ?"
ARRIVED_CLUSTERS_SQL = (
    "SELECT m.article_id, m.cluster_id FROM cluster_members m "
    "JOIN articles a ON a.id = m.article_id "
    "WHERE a.first_seen_at >= ? AND a.first_seen_at < ?"
)

# The event story of each article that arrived in [since, until).
ARRIVED_EVENTS_SQL = (
    "SELECT e.article_id, e.story_id FROM event_members e "
    "JOIN articles a ON a.id = e.article_id "
    "WHERE a.first_seen_at >= ? AND a.first_seen_at < ?"
)

_FEED_ID_SQL = "SELECT value FROM meta WHERE key = 'digest.feed_id'"


class SQLDigests:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.digests`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def arrivals(self, start: datetime, end: datetime) -> list[DigestArticle]:
        """The articles that arrived in [start, end), in no promised order."""
        rows = self._store.execute(ARRIVED_SQL, (format_time(start), format_time(end)))
        return [DigestArticle(*row) for row in rows]

    def arrived_members(self, start: datetime, end: datetime) -> list[StoryMember]:
        """The story of each article that arrived in [start, end) and has one."""
        rows = self._store.execute(ARRIVED_CLUSTERS_SQL, (format_time(start), format_time(end)))
        return [StoryMember(article_id, cluster_id) for article_id, cluster_id in rows]

    def arrived_events(self, start: datetime, end: datetime) -> dict[int, int]:
        """The event story of each article that arrived in [start, end) and has one."""
        rows = self._store.execute(ARRIVED_EVENTS_SQL, (format_time(start), format_time(end)))
        return {int(article_id): int(story_id) for article_id, story_id in rows}

    def canonical_article(self, cluster_id: int) -> int:
        """The id of the article a story is told by (its canonical article)."""
        row = self._store.execute(
            "SELECT canonical_article_id FROM clusters WHERE id = ?", (cluster_id,)
        ).fetchone()
        return int(row[0])

    def story_articles(self, cluster_id: int, before: datetime) -> list[DigestArticle]:
        """The story's articles that arrived before `before`, by publication (then id)."""
        rows = self._store.execute(
            f"{_ARTICLE_SQL} JOIN cluster_members m ON m.article_id = a.id "
            "WHERE m.cluster_id = ? AND a.first_seen_at < ? ORDER BY a.published_at, a.id",
            (cluster_id, format_time(before)),
        )
        return [DigestArticle(*row) for row in rows]

    def paragraphs(self, article_id: int) -> list[ParagraphText]:
        """The paragraphs of the article's current version, in order."""
        rows = self._store.execute(
            "SELECT p.id, p.text FROM paragraphs p "
            "JOIN article_versions v ON v.id = p.version_id "
            "JOIN articles a ON a.id = v.article_id AND a.version = v.version "
            "WHERE a.id = ? ORDER BY p.position",
            (article_id,),
        )
        return [ParagraphText(paragraph_id, text) for paragraph_id, text in rows]

    def shared_spans(self, article_id: int, earlier: Sequence[int]) -> list[SharedSpan]:
        """The spans of the article's paragraphs that carry a passage one of the
        `earlier` articles carries too (overlapping spans are not merged)."""
        if not earlier:
            return []
        marks = ",".join("?" * len(earlier))
        rows = self._store.execute(
            "SELECT c.paragraph_id, c.char_start, c.char_end FROM passage_carriers c "
            "WHERE c.article_id = ? AND EXISTS (SELECT 1 FROM passage_carriers o "
            f"WHERE o.passage_id = c.passage_id AND o.article_id IN ({marks}))",
            (article_id, *earlier),
        )
        return [SharedSpan(paragraph, start, end) for paragraph, start, end in rows]

    def nth_newest_arrival(self, n: int, before: datetime) -> datetime | None:
        """When the `n`th newest article arrived, of those that arrived before `before`;
        None when fewer did. Article ids follow arrival, so this reads the newest
        ids, without a scan."""
        row = self._store.execute(
            "SELECT first_seen_at FROM articles WHERE first_seen_at < ? "
            "ORDER BY id DESC LIMIT 1 OFFSET ?",
            (format_time(before), n - 1),
        ).fetchone()
        return None if row is None else parse_time(row[0])

    def feed_id(self, make: Callable[[], str]) -> str:
        """This database's stories-feed id; on first use `make()` makes it and it is kept.

        Two writers making one at once keep the first stored (ON CONFLICT DO
        NOTHING), and both return that one.
        """
        row = self._store.execute(_FEED_ID_SQL).fetchone()
        if row:
            return str(row[0])
        made = make()
        with self._store.write():
            self._store.execute(
                "INSERT INTO meta (key, value) VALUES ('digest.feed_id', ?) ON CONFLICT DO NOTHING",
                (made,),
            )
        return str(self._store.execute(_FEED_ID_SQL).fetchone()[0])
