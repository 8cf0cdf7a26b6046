"""Feed sources: subscribe, list, remove, OPML in and out, and when to check next.

This module decides; `store.feeds` (storage/feeds.py) reads and writes what it
decided. Pure decisions take the feed as stored and `now` and return a record:
`change_for` (what an edit changes), `update_after_answer`, `update_after_error`
and `update_after_gone` (what a poll records, `FeedUpdate`), each table-tested.

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
an already scheduled check that would come sooner (`change_for`); lowering it
takes effect from the next check.

**What a poll records** is the feed's whole poll state after it (`FeedUpdate`),
the kept parts read from the feed as it was when the poll began: a 304 keeps
the stored validators, a poll that parsed nothing keeps the last warning, an
error keeps the body hash (so the body is parsed again once the feed answers).
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
from typing import Literal

from aggregator.config import Config
from aggregator.errors import ParseError, SourceConfigError
from aggregator.model import FeedChange, FeedSource, FeedUpdate, as_utc, format_time, parse_time
from aggregator.sources.parse import refuse_entities
from aggregator.storage.protocol import Store
from aggregator.urls import normalise_url

FULL_TEXT_MODES = ("auto", "always", "never")
GONE = "gone (HTTP 410)"


def _checked_url(url: str) -> str:
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise SourceConfigError(f"feed {url!r}: only http and https URLs can be subscribed")
    return normalise_url(url)


def add_feed(
    store: Store,
    url: str,
    name: str | None = None,
    full_text: str = "auto",
    now: datetime | None = None,
) -> FeedSource:
    """Subscribe to a feed. An active subscription is an error naming it; a disabled
    one (removed, or gone with HTTP 410) is enabled again and checked at once."""
    if full_text not in FULL_TEXT_MODES:
        raise SourceConfigError(f"full text mode {full_text!r}: use one of {FULL_TEXT_MODES}")
    location = _checked_url(url)
    subscribed = store.feeds.subscribe(location, name or location, full_text, now)
    if subscribed.outcome == "already":
        raise _already_subscribed(subscribed.feed.id, location)
    return subscribed.feed


def refuse_subscribed(store: Store, url: str) -> None:
    """SourceConfigError if `url` is not http(s) or is an enabled subscription
    already: `sources add` says so before it fetches anything."""
    location = _checked_url(url)
    feed = store.feeds.by_location(location)
    if feed is not None and feed.enabled:
        raise _already_subscribed(feed.id, location)


def _already_subscribed(source_id: int, location: str) -> SourceConfigError:
    return SourceConfigError(
        f"feed {location}: already subscribed as source {source_id}; "
        f"change it with `aggregator sources set {source_id}`"
    )


def find_feed(store: Store, key: str) -> FeedSource:
    """A feed by id or by URL."""
    if key.isdigit():
        feed = store.feeds.get(int(key))
    else:
        feed = store.feeds.by_location(normalise_url(key))
    if feed is None:
        raise SourceConfigError(f"feed {key}: no such feed source")
    return feed


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
    store.feeds.edit(before.id, change_for(before, edit, config, now or datetime.now(UTC)))
    return before, find_feed(store, str(before.id))


def _to_second(moment: datetime) -> datetime:
    """`moment` as it is stored: in UTC, to the second."""
    return parse_time(format_time(moment))


def change_for(before: FeedSource, edit: FeedEdit, config: Config, now: datetime) -> FeedChange:
    """What `edit` changes on the feed `before` (a pure decision; `edit_feed` writes it):
    only the fields that differ, and the next check that enabling or a minimum moves."""
    name = full_text = None
    if edit.name is not None and edit.name.strip() != before.name:
        name = edit.name.strip()
    if edit.full_text is not None and edit.full_text != before.full_text:
        full_text = edit.full_text
    enabled = next_check = None
    if edit.enabled is not None and edit.enabled != before.enabled:
        enabled = edit.enabled
        if edit.enabled:
            stamp = _to_second(now)
            scheduled = parse_time(before.next_check_at) if before.next_check_at else stamp
            next_check = min(scheduled, stamp)
    minimum = edit.min_interval_minutes
    if minimum is None or (minimum or None) == before.min_interval_minutes:
        minimum = None
    elif minimum and before.last_checked_at and next_check is None:
        seconds = min_interval_seconds(config, minimum)
        floor = _to_second(parse_time(before.last_checked_at) + timedelta(seconds=seconds))
        if before.next_check_at is None or before.next_check_at < format_time(floor):
            next_check = floor
    return FeedChange(
        name=name,
        full_text=full_text,
        enabled=enabled,
        min_interval_minutes=minimum,
        next_check_at=next_check,
    )


def list_feeds(store: Store) -> list[FeedSource]:
    """Every feed source, enabled or not, by id."""
    return store.feeds.all()


def remove_feed(store: Store, key: str) -> str:
    """Unsubscribe; returns what was done, for the CLI to print."""
    feed = find_feed(store, key)
    kept = store.feeds.remove(feed.id)
    if kept:
        return f"feed {feed.id} disabled; its {kept} articles are kept"
    return f"feed {feed.id} removed"


def import_opml(store: Store, path: Path, now: datetime | None = None) -> tuple[int, int]:
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
            add_feed(store, url, name, now=now)
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


def sync_config_feeds(store: Store, urls: tuple[str, ...], now: datetime | None = None) -> int:
    """Subscribe to the feeds listed in the configuration that are not yet sources.

    Listing a feed in the configuration is the same as `sources add`; taking it
    out of the file does not unsubscribe (use `sources remove`), so an edit to
    the file can never drop stored state. Returns how many were added.
    """
    added = 0
    for url in urls:
        if store.feeds.by_location(_checked_url(url)) is not None:
            continue
        add_feed(store, url, now=now)
        added += 1
    return added


_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


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


def update_after_answer(
    feed: FeedSource,
    status: Literal["ingested", "not-modified", "unchanged"],
    now: datetime,
    headers: dict[str, str],
    config: Config,
    ttl_minutes: int | None = None,
    body_hash: str | None = None,
    warning: str | None = None,
) -> FeedUpdate:
    """What a poll records when the feed answered: a 200 it `ingested` (with the body's
    hash and the poll's warning, or None), one whose body was `unchanged`, or a 304."""

    def validator(header: str, stored: str | None) -> str | None:
        # A 200 replaces the validators (a body without an ETag clears the old
        # one, or a later 304 would keep us on stale content); a 304 may omit them.
        value = headers.get(header)
        return value if value or status != "not-modified" else stored

    interval = success_interval(headers, ttl_minutes, config, now, feed.min_interval_minutes)
    return FeedUpdate(
        status="ok",
        checked_at=now,
        next_check_at=now + timedelta(seconds=interval),
        last_error=None,
        error_count=0,
        etag=validator("etag", feed.etag),
        last_modified=validator("last-modified", feed.last_modified),
        body_hash=body_hash or feed.body_hash,
        last_warning=warning if status == "ingested" else feed.last_warning,
    )


def update_after_error(
    feed: FeedSource,
    now: datetime,
    reason: str,
    config: Config,
    rng: random.Random,
    wait: float | None = None,
) -> FeedUpdate:
    """What a poll records when it failed: one more error, and the next try after `wait`
    seconds (a Retry-After) or the back-off; the rest of the feed's state stays."""
    errors = feed.error_count + 1
    if wait is None:
        wait = error_interval(errors, config, rng, feed.min_interval_minutes)
    return FeedUpdate(
        status="error",
        checked_at=now,
        next_check_at=now + timedelta(seconds=wait),
        last_error=reason,
        error_count=errors,
        etag=feed.etag,
        last_modified=feed.last_modified,
        body_hash=feed.body_hash,
        last_warning=feed.last_warning,
    )


def update_after_gone(feed: FeedSource, now: datetime) -> FeedUpdate:
    """What a poll records when the feed is gone (HTTP 410): disabled, saying why; its
    schedule and the rest stay (enabling it again makes it due at once)."""
    return FeedUpdate(
        status="gone",
        checked_at=now,
        next_check_at=parse_time(feed.next_check_at) if feed.next_check_at else None,
        last_error=GONE,
        error_count=feed.error_count,
        etag=feed.etag,
        last_modified=feed.last_modified,
        body_hash=feed.body_hash,
        last_warning=feed.last_warning,
    )
