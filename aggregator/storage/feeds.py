"""Feed sources: subscribing, finding, listing, editing, the due ones, and what a poll recorded.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses. What to
write is decided above (`ingest/feeds.py`: the schedule, an edit's effects, a
poll's update); these methods only read and write it, each write in one
transaction of its own.

Decisions that are storage's own:

* **Due feeds are picked by the database**, never by loading every feed: enabled
  feeds whose next check is unset or not after `now`, unset first, then the
  most overdue, ties by id, at most `limit`. The two halves (unset, and a
  range up to `now`) are two searches of the partial index `sources_due`
  merged in order, so a tick where nothing is due costs two index look-ups
  however many feeds there are, and a batch costs its own size.
* **Removing a feed that gave articles disables it** instead of deleting it
  (its articles reference it, and the stories they belong to stay whole).
* **A poll's update is written whole**, in one statement, as the poller
  decided it (`FeedUpdate`): `status` alone says whether the feed's last
  success and its enabled flag change with it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aggregator.model import (
    FailingFeed,
    FeedChange,
    FeedSource,
    FeedTally,
    FeedUpdate,
    Subscription,
    format_time,
)

if TYPE_CHECKING:
    from aggregator.storage.store import Store

# A FeedSource's fields in order, each with the expression that reads it.
_READ = {field.name: field.name for field in fields(FeedSource)} | {
    "url": "coalesce(url, location) AS url"
}
_SELECT = f"SELECT {', '.join(_READ.values())} FROM sources WHERE kind = 'feed'"
_ENABLED = "kind = 'feed' AND enabled = 1"


def feed_columns(alias: str) -> str:
    """A FeedSource's columns in order, read from the sources table as `alias`."""
    return ", ".join(
        f"coalesce({alias}.url, {alias}.location)" if name == "url" else f"{alias}.{name}"
        for name in _READ
    )


def feed_from_row(row: tuple[Any, ...]) -> FeedSource:
    """The FeedSource of a row read with `feed_columns`."""
    return _feed(row)


def _feed(row: tuple[Any, ...]) -> FeedSource:
    values = dict(zip(_READ, row, strict=True))
    values["enabled"] = bool(values["enabled"])
    return FeedSource(**values)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _due(select: str, exclude: Collection[int]) -> str:
    """`select` (over feed sources) narrowed to the due ones, as two index searches."""
    arms = [
        f"{select} AND enabled = 1 AND next_check_at IS NULL",
        f"{select} AND enabled = 1 AND next_check_at <= :now",
    ]
    if exclude:
        marks = ", ".join(f":x{i}" for i in range(len(exclude)))
        arms = [f"{arm} AND id NOT IN ({marks})" for arm in arms]
    return " UNION ALL ".join(arms)


def _due_args(now: datetime, exclude: Collection[int]) -> dict[str, object]:
    """The arguments of `_due`: `now`, and one `xN` per excluded id (a handful: the
    feeds in flight)."""
    args: dict[str, object] = {"now": format_time(now)}
    args.update({f"x{i}": feed_id for i, feed_id in enumerate(sorted(exclude))})
    return args


class SQLFeeds:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.feeds`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reading ---------------------------------------------------------------------

    def get(self, feed_id: int) -> FeedSource | None:
        """The feed with this id; None if there is none (or it is a folder)."""
        row = self._store.execute(f"{_SELECT} AND id = ?", (feed_id,)).fetchone()
        return None if row is None else _feed(row)

    def by_location(self, location: str) -> FeedSource | None:
        """The feed subscribed with this (normalised) URL, enabled or not."""
        row = self._store.execute(f"{_SELECT} AND location = ?", (location,)).fetchone()
        return None if row is None else _feed(row)

    def all(self) -> list[FeedSource]:
        """Every feed, enabled or not, by id."""
        return [_feed(r) for r in self._store.execute(f"{_SELECT} ORDER BY id")]

    def due(
        self, now: datetime, limit: int | None = None, exclude: Collection[int] = ()
    ) -> list[FeedSource]:
        """Enabled feeds due at `now`: never checked first, then the most overdue, by id
        among equals; at most `limit` (None: all), leaving out the ids in `exclude`."""
        bound = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self._store.execute(
            f"{_due(_SELECT, exclude)} ORDER BY next_check_at NULLS FIRST, id{bound}",
            _due_args(now, exclude),
        )
        return [_feed(r) for r in rows]

    def count_due(self, now: datetime, exclude: Collection[int] = ()) -> int:
        """How many feeds `due` would give without a limit."""
        select = "SELECT id, next_check_at FROM sources WHERE kind = 'feed'"
        query = f"SELECT count(*) FROM ({_due(select, exclude)}) AS due"
        return int(self._store.execute(query, _due_args(now, exclude)).fetchone()[0])

    def tally(self, now: datetime) -> FeedTally:
        """How many feeds are enabled, due at `now`, and failing."""
        feeds, due, failing = self._store.execute(
            "SELECT count(*), "
            "count(*) FILTER (WHERE next_check_at IS NULL OR next_check_at <= ?), "
            f"count(*) FILTER (WHERE error_count > 0) FROM sources WHERE {_ENABLED}",
            (format_time(now),),
        ).fetchone()
        return FeedTally(feeds=int(feeds), due=int(due), failing=int(failing))

    def failing(self) -> list[FailingFeed]:
        """Enabled feeds whose last poll failed, the most recently checked first."""
        rows = self._store.execute(
            "SELECT id, name, location, error_count, last_error, last_success_at "
            f"FROM sources WHERE {_ENABLED} AND error_count > 0 "
            "ORDER BY last_checked_at DESC NULLS LAST, id"
        )
        return [
            FailingFeed(
                id=int(i),
                name=name,
                location=location,
                error_count=int(count),
                last_error=error or "",
                last_success_at=success,
            )
            for i, name, location, count, error, success in rows
        ]

    # -- writing ---------------------------------------------------------------------

    def subscribe(
        self, location: str, name: str, full_text: str, now: datetime | None = None
    ) -> Subscription:
        """Subscribe to the feed at `location`, due at once: a new source, or a disabled
        one enabled again with its errors and validators cleared. An enabled one is
        left as it is (the outcome says which)."""
        stamp = format_time(now or datetime.now(UTC))
        outcome: Literal["added", "enabled", "already"]
        with self._store.write():
            row = self._store.execute(
                "SELECT id, enabled FROM sources WHERE location = ?", (location,)
            ).fetchone()
            if row and row[1]:
                outcome = "already"
            elif row:
                self._store.execute(
                    "UPDATE sources SET enabled = 1, error_count = 0, last_error = NULL, "
                    "next_check_at = ?, full_text = ?, etag = NULL, last_modified = NULL "
                    "WHERE id = ?",
                    (stamp, full_text, row[0]),
                )
                outcome = "enabled"
            else:
                self._store.execute(
                    "INSERT INTO sources (kind, location, name, created_at, url, full_text, "
                    "next_check_at) VALUES ('feed', ?, ?, ?, ?, ?, ?)",
                    (location, name, stamp, location, full_text, stamp),
                )
                outcome = "added"
            feed = self.by_location(location)
        assert feed is not None, "subscribed just now"
        return Subscription(feed=feed, outcome=outcome)

    def edit(self, feed_id: int, change: FeedChange) -> None:
        """Write the fields `change` sets (a minimum interval of 0 clears the feed's own)."""
        values: dict[str, object] = {}
        if change.name is not None:
            values["name"] = change.name
        if change.full_text is not None:
            values["full_text"] = change.full_text
        if change.enabled is not None:
            values["enabled"] = int(change.enabled)
        if change.min_interval_minutes is not None:
            values["min_interval_minutes"] = change.min_interval_minutes or None
        if change.next_check_at is not None:
            values["next_check_at"] = format_time(change.next_check_at)
        if not values:
            return
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._store.write():
            self._store.execute(
                f"UPDATE sources SET {assignments} WHERE id = ?", (*values.values(), feed_id)
            )

    def remove(self, feed_id: int) -> int:
        """Delete the feed, or disable it if articles came from it; how many it kept."""
        with self._store.write():
            count = int(
                self._store.execute(
                    "SELECT count(*) FROM articles WHERE source_id = ?", (feed_id,)
                ).fetchone()[0]
            )
            if count:
                self._store.execute("UPDATE sources SET enabled = 0 WHERE id = ?", (feed_id,))
            else:
                self._store.execute("DELETE FROM sources WHERE id = ?", (feed_id,))
        return count

    def apply(self, feed_id: int, update: FeedUpdate) -> None:
        """Record a poll's outcome on the feed, as decided (see `FeedUpdate`): in the
        caller's transaction if there is one (a fetch node's, storage/nodes.py)."""
        if self._store.writing:
            self._apply(feed_id, update)
            return
        with self._store.write():
            self._apply(feed_id, update)

    def _apply(self, feed_id: int, update: FeedUpdate) -> None:
        self._store.execute(
            "UPDATE sources SET last_checked_at = :checked, next_check_at = :next, "
            "last_error = :error, error_count = :errors, etag = :etag, "
            "last_modified = :last_modified, body_hash = :body_hash, "
            "last_warning = :warning, url = coalesce(:moved_to, url), "
            "last_success_at = CASE :status WHEN 'ok' THEN :checked "
            "ELSE last_success_at END, "
            "enabled = CASE :status WHEN 'ok' THEN 1 WHEN 'gone' THEN 0 ELSE enabled END "
            "WHERE id = :id",
            {
                "id": feed_id,
                "status": update.status,
                "checked": format_time(update.checked_at),
                "next": _stamp(update.next_check_at),
                "error": update.last_error,
                "errors": update.error_count,
                "etag": update.etag,
                "last_modified": update.last_modified,
                "body_hash": update.body_hash,
                "warning": update.last_warning,
                "moved_to": update.moved_to,
            },
        )
