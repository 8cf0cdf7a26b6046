"""Feed sources: subscribe, list, remove, OPML in and out, and when to check next.

A feed source's `location` is the URL it was subscribed with (its identity,
never changed); `url` is where it is fetched now, moved by permanent
redirects. Removing a feed that already gave articles disables it instead of
deleting it, so the stories those articles belong to stay whole.

OPML is read with the standard library's expat-based parser, which expands no
external entities and limits entity amplification; documents declaring
entities are refused first, as for feeds.

**Next check** after a success: the largest of the feed's TTL, Cache-Control
max-age and Expires, else `default_interval_minutes`, clamped to
[`min_interval_minutes`, `max_interval_hours`]. After an error: the minimum
interval doubled per consecutive error, capped at the maximum, with +-20%
jitter so that failing feeds do not retry in lock-step.

**A feed's own minimum** (`sources set --min-interval`, the column
`min_interval_minutes`; NULL: none) *replaces* `feeds.min_interval_minutes`
for that feed, in both rules above. It may be higher than the configured one
(a site that asks to be checked hourly at most, whatever its headers say) or
lower (a live feed whose max-age of 2 minutes the configured 15 would
override); being a floor, it never makes a feed checked sooner than its own
hints or `default_interval_minutes` say. It never lifts a feed past
`max_interval_hours`: a per-feed minimum above that is capped there, so a
feed is always checked at least once per maximum interval. Raising it moves
an already scheduled check that would come sooner (`edit_feed`); lowering it
takes effect from the next check.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aggregator.config import Config
from aggregator.errors import ParseError, SourceConfigError
from aggregator.model import as_utc, format_time, parse_time, utcnow
from aggregator.sources.parse import refuse_entities
from aggregator.storage.store import Store
from aggregator.urls import normalise_url

FULL_TEXT_MODES = ("auto", "always", "never")


@dataclass(frozen=True, slots=True)
class FeedSource:
    id: int
    name: str
    location: str
    url: str
    full_text: str
    enabled: bool
    last_checked_at: str | None
    last_success_at: str | None
    last_error: str | None
    error_count: int
    next_check_at: str | None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_warning: str | None = None
    min_interval_minutes: float | None = None  # None: the configuration's minimum


_COLUMNS = (
    "id, name, location, coalesce(url, location), full_text, enabled, last_checked_at, "
    "last_success_at, last_error, error_count, next_check_at, etag, last_modified, body_hash, "
    "last_warning, min_interval_minutes"
)


def _feed(row: tuple[Any, ...]) -> FeedSource:
    return FeedSource(
        id=row[0],
        name=row[1],
        location=row[2],
        url=row[3],
        full_text=row[4],
        enabled=bool(row[5]),
        last_checked_at=row[6],
        last_success_at=row[7],
        last_error=row[8],
        error_count=row[9],
        next_check_at=row[10],
        etag=row[11],
        last_modified=row[12],
        body_hash=row[13],
        last_warning=row[14],
        min_interval_minutes=row[15],
    )


def _checked_url(url: str) -> str:
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise SourceConfigError(f"feed {url!r}: only http and https URLs can be subscribed")
    return normalise_url(url)


def add_feed(
    store: Store, url: str, name: str | None = None, full_text: str = "auto"
) -> FeedSource:
    """Subscribe to a feed. An active subscription is an error naming it; a disabled
    one (removed, or gone with HTTP 410) is enabled again and checked at once."""
    if full_text not in FULL_TEXT_MODES:
        raise SourceConfigError(f"full text mode {full_text!r}: use one of {FULL_TEXT_MODES}")
    location = _checked_url(url)
    with store.write():
        row = store.execute(
            "SELECT id, enabled FROM sources WHERE location = ?", (location,)
        ).fetchone()
        if row and row[1]:
            raise _already_subscribed(row[0], location)
        if row:
            store.execute(
                "UPDATE sources SET enabled = 1, error_count = 0, last_error = NULL, "
                "next_check_at = ?, full_text = ?, etag = NULL, last_modified = NULL "
                "WHERE id = ?",
                (utcnow(), full_text, row[0]),
            )
            return find_feed(store, location)
        store.execute(
            "INSERT INTO sources (kind, location, name, created_at, url, full_text, "
            "next_check_at) VALUES ('feed', ?, ?, ?, ?, ?, ?)",
            (location, name or location, utcnow(), location, full_text, utcnow()),
        )
    return find_feed(store, location)


def refuse_subscribed(store: Store, url: str) -> None:
    """SourceConfigError if `url` is not http(s) or is an enabled subscription
    already: `sources add` says so before it fetches anything."""
    location = _checked_url(url)
    row = store.execute(
        "SELECT id FROM sources WHERE kind = 'feed' AND enabled = 1 AND location = ?",
        (location,),
    ).fetchone()
    if row:
        raise _already_subscribed(row[0], location)


def _already_subscribed(source_id: int, location: str) -> SourceConfigError:
    return SourceConfigError(
        f"feed {location}: already subscribed as source {source_id}; "
        f"change it with `aggregator sources set {source_id}`"
    )


def find_feed(store: Store, key: str) -> FeedSource:
    """A feed by id or by URL."""
    where = "id = ?" if key.isdigit() else "location = ?"
    value: int | str = int(key) if key.isdigit() else normalise_url(key)
    row = store.execute(
        f"SELECT {_COLUMNS} FROM sources WHERE kind = 'feed' AND {where}", (value,)
    ).fetchone()
    if row is None:
        raise SourceConfigError(f"feed {key}: no such feed source")
    return _feed(row)


@dataclass(frozen=True, slots=True)
class FeedEdit:
    """What `sources set` changes; a field left None stays as it is."""

    name: str | None = None
    full_text: str | None = None
    enabled: bool | None = None
    min_interval_minutes: float | None = None  # 0: none of its own (the configured one)


def edit_feed(
    store: Store, key: str, edit: FeedEdit, config: Config, now: datetime | None = None
) -> tuple[FeedSource, FeedSource]:
    """Change a subscription (by id or URL) as `edit` says; the feed before and after.

    Enabling a feed makes it due at once (if it was not already): its schedule
    went stale while it was off, and a conditional GET costs the site little.
    Setting a minimum moves a next check that would come sooner than the last
    check plus that minimum (see the module docstring); nothing else here
    touches the schedule.
    """
    if edit.name is not None and not edit.name.strip():
        raise SourceConfigError("feed name: must not be empty")
    if edit.full_text is not None and edit.full_text not in FULL_TEXT_MODES:
        raise SourceConfigError(f"full text mode {edit.full_text!r}: use one of {FULL_TEXT_MODES}")
    minimum = edit.min_interval_minutes
    if minimum is not None and not (math.isfinite(minimum) and minimum >= 0):
        raise SourceConfigError(f"minimum interval {minimum!r}: must be a number of minutes >= 0")
    before = find_feed(store, key)
    values = edit_values(before, edit, config, now or datetime.now(UTC))
    if values:
        columns = ", ".join(f"{column} = ?" for column in values)
        with store.write():
            store.execute(
                f"UPDATE sources SET {columns} WHERE id = ?", (*values.values(), before.id)
            )
    return before, find_feed(store, str(before.id))


def edit_values(
    before: FeedSource, edit: FeedEdit, config: Config, now: datetime
) -> dict[str, object]:
    """The source columns `edit` changes on the feed `before`, with their new values
    (a pure decision; `edit_feed` writes it)."""
    values: dict[str, object] = {}
    if edit.name is not None and edit.name.strip() != before.name:
        values["name"] = edit.name.strip()
    if edit.full_text is not None and edit.full_text != before.full_text:
        values["full_text"] = edit.full_text
    if edit.enabled is not None and edit.enabled != before.enabled:
        values["enabled"] = int(edit.enabled)
        if edit.enabled:
            stamp = format_time(now)
            values["next_check_at"] = min(before.next_check_at or stamp, stamp)
    minimum = edit.min_interval_minutes
    if minimum is not None and (minimum or None) != before.min_interval_minutes:
        values["min_interval_minutes"] = minimum or None
        if minimum and before.last_checked_at and "next_check_at" not in values:
            seconds = min_interval_seconds(config, minimum)
            floor = format_time(parse_time(before.last_checked_at) + timedelta(seconds=seconds))
            if before.next_check_at is None or before.next_check_at < floor:
                values["next_check_at"] = floor
    return values


def list_feeds(store: Store) -> list[FeedSource]:
    rows = store.execute(f"SELECT {_COLUMNS} FROM sources WHERE kind = 'feed' ORDER BY id")
    return [_feed(r) for r in rows]


def remove_feed(store: Store, key: str) -> str:
    """Unsubscribe; returns what was done, for the CLI to print."""
    feed = find_feed(store, key)
    with store.write():
        count = store.execute(
            "SELECT count(*) FROM articles WHERE source_id = ?", (feed.id,)
        ).fetchone()[0]
        if count:
            store.execute("UPDATE sources SET enabled = 0 WHERE id = ?", (feed.id,))
            return f"feed {feed.id} disabled; its {count} articles are kept"
        store.execute("DELETE FROM sources WHERE id = ?", (feed.id,))
    return f"feed {feed.id} removed"


def import_opml(store: Store, path: Path) -> tuple[int, int]:
    """Subscribe to every feed in an OPML file; (added, already there)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceConfigError(f"OPML {path}: cannot read: {e.strerror}") from e
    try:
        refuse_entities(data, str(path))
        root = ET.fromstring(data)
    except ParseError as e:
        raise SourceConfigError(f"OPML {path}: {e.reason}") from e
    except ET.ParseError as e:
        raise SourceConfigError(f"OPML {path}: not well-formed XML: {e}") from e
    except (ValueError, LookupError) as e:  # expat reads UTF-8, UTF-16 and 8-bit codecs only
        reason = " ".join(str(e).split())
        raise SourceConfigError(
            f"OPML {path}: cannot read its declared encoding ({reason}); save it as UTF-8"
        ) from e
    added = skipped = 0
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if not url:
            continue
        name = outline.get("title") or outline.get("text") or None
        try:
            add_feed(store, url, name)
            added += 1
        except SourceConfigError:
            skipped += 1
    return added, skipped


def export_opml(store: Store) -> str:
    """Every enabled feed as an OPML 2.0 document."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = "aggregator subscriptions"
    body = ET.SubElement(opml, "body")
    for feed in list_feeds(store):
        if feed.enabled:
            ET.SubElement(
                body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
            )
    ET.indent(opml)
    return ET.tostring(opml, encoding="unicode", xml_declaration=True) + "\n"


def sync_config_feeds(store: Store, urls: tuple[str, ...]) -> int:
    """Subscribe to the feeds listed in the configuration that are not yet sources.

    Listing a feed in the configuration is the same as `sources add`; taking it
    out of the file does not unsubscribe (use `sources remove`), so an edit to
    the file can never drop stored state. Returns how many were added.
    """
    added = 0
    for url in urls:
        location = _checked_url(url)
        if store.execute("SELECT 1 FROM sources WHERE location = ?", (location,)).fetchone():
            continue
        add_feed(store, url)
        added += 1
    return added


_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


def due_feeds(store: Store, now: datetime) -> list[FeedSource]:
    """Enabled feeds whose next check is due, the most overdue first."""
    stamp = format_time(now)
    due = [
        f
        for f in list_feeds(store)
        if f.enabled and (f.next_check_at is None or f.next_check_at <= stamp)
    ]
    return sorted(due, key=lambda f: f.next_check_at or "")


def min_interval_seconds(config: Config, feed_minimum: float | None = None) -> float:
    """The least time between two checks of a feed, in seconds: its own minimum if it
    has one, else `feeds.min_interval_minutes`; never above the maximum interval."""
    feeds = config.feeds
    minutes = feed_minimum or feeds.min_interval_minutes
    return min(minutes * 60.0, feeds.max_interval_hours * 3600.0)


def success_interval(
    headers: dict[str, str],
    ttl_minutes: int | None,
    config: Config,
    now: datetime,
    feed_minimum: float | None = None,
) -> float:
    """Seconds until the next check of a feed that answered (`feed_minimum`: the
    feed's own minimum interval in minutes, if it has one)."""
    feeds = config.feeds
    hints: list[float] = []
    if ttl_minutes:
        hints.append(ttl_minutes * 60.0)
    if match := _MAX_AGE.search(headers.get("cache-control", "")):
        hints.append(float(match.group(1)))
    if expires := headers.get("expires"):
        with contextlib.suppress(TypeError, ValueError):  # unreadable: no hint
            hints.append((as_utc(parsedate_to_datetime(expires)) - now).total_seconds())
    interval = max(hints) if hints else feeds.default_interval_minutes * 60.0
    return min(
        max(interval, min_interval_seconds(config, feed_minimum)),
        feeds.max_interval_hours * 3600.0,
    )


def error_interval(
    errors: int, config: Config, rng: random.Random, feed_minimum: float | None = None
) -> float:
    """Seconds until the next try after `errors` consecutive errors (>= 1), backing
    off from the feed's own minimum interval if it has one."""
    feeds = config.feeds
    # 2**60 minimum intervals exceed any maximum; a larger power would not fit a float
    # (a feed failing every 14 s, as in the soak, reaches 1,025 errors in four hours).
    doublings = min(max(errors - 1, 0), 60)
    base = min(
        min_interval_seconds(config, feed_minimum) * float(2**doublings),
        feeds.max_interval_hours * 3600,
    )
    return base * rng.uniform(0.8, 1.2)
