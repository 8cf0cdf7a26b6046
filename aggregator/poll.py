"""Poll: fetch the feeds that are due, ingest their entries, schedule the next check.

What it decides:

* **Nothing parsed twice.** A 304 (conditional GET with the stored ETag and
  Last-Modified) or a 200 whose body hashes like the last one parses nothing
  and only moves the schedule.
* **Statuses.** 301/308 chains update the stored URL; 410 disables the source;
  429 and 503 wait for Retry-After (or the back-off); other 4xx/5xx, fetch
  and parse failures are errors recorded on the source (message and count),
  never raised: one bad feed never stops a poll.
* **Next check** after a success: the largest of the feed's TTL, Cache-Control
  max-age and Expires, else `default_interval_minutes`, clamped to
  [`min_interval_minutes`, `max_interval_hours`]. After an error: the minimum
  interval doubled per consecutive error, capped at the maximum, with +-20%
  jitter so that failing feeds do not retry in lock-step.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.config import Config
from aggregator.entries import entry_documents
from aggregator.errors import FetchError, ParseError
from aggregator.feeds import FeedSource, list_feeds
from aggregator.fetch import FetchPolicy, fetch
from aggregator.fulltext import FullTextFetcher, needs_full_text
from aggregator.parse import parse_feed
from aggregator.pipeline import Ingester
from aggregator.store import Store, format_time

log = logging.getLogger(__name__)

_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


@dataclass(frozen=True, slots=True)
class PollOutcome:
    source_id: int
    url: str
    status: str  # "ingested", "not-modified", "unchanged", "gone", "error"
    entries: int = 0
    new: int = 0
    error: str | None = None
    next_check_at: str | None = None


def due_feeds(store: Store, now: datetime) -> list[FeedSource]:
    """Enabled feeds whose next check is due, the most overdue first."""
    stamp = format_time(now)
    due = [
        f
        for f in list_feeds(store)
        if f.enabled and (f.next_check_at is None or f.next_check_at <= stamp)
    ]
    return sorted(due, key=lambda f: f.next_check_at or "")


def success_interval(
    headers: dict[str, str], ttl_minutes: int | None, config: Config, now: datetime
) -> float:
    """Seconds until the next check of a feed that answered."""
    feeds = config.feeds
    hints: list[float] = []
    if ttl_minutes:
        hints.append(ttl_minutes * 60.0)
    if match := _MAX_AGE.search(headers.get("cache-control", "")):
        hints.append(float(match.group(1)))
    if expires := headers.get("expires"):
        try:
            when = parsedate_to_datetime(expires)
            hints.append((when.astimezone(UTC) - now).total_seconds())
        except (TypeError, ValueError):
            pass
    interval = max(hints) if hints else feeds.default_interval_minutes * 60.0
    return min(max(interval, feeds.min_interval_minutes * 60.0), feeds.max_interval_hours * 3600.0)


def error_interval(errors: int, config: Config, rng: random.Random) -> float:
    """Seconds until the next try after `errors` consecutive errors (>= 1)."""
    feeds = config.feeds
    base = min(
        feeds.min_interval_minutes * 60.0 * float(2 ** (errors - 1)),
        feeds.max_interval_hours * 3600,
    )
    return base * rng.uniform(0.8, 1.2)


class Poller:
    """Polls feed sources once; the daemon calls `poll` on every tick."""

    def __init__(self, store: Store, config: Config, ingester: Ingester | None = None) -> None:
        self.store = store
        self.config = config
        self.ingester = ingester or Ingester(store, config)
        self.policy = FetchPolicy(
            max_bytes=config.feeds.max_bytes,
            deadline=config.feeds.deadline_seconds,
            allow=config.feeds.allow,
        )
        self.rng = random.Random()
        self.full_text = FullTextFetcher(self.policy)

    def poll(
        self, feeds: Sequence[FeedSource], now: datetime | None = None
    ) -> Iterator[PollOutcome]:
        for feed in feeds:
            yield self.poll_one(feed, now or datetime.now(UTC))

    def poll_one(self, feed: FeedSource, now: datetime) -> PollOutcome:
        try:
            result = fetch(
                feed.url,
                self.policy,
                etag=feed.etag,
                last_modified=feed.last_modified,
            )
        except FetchError as e:
            return self._failed(feed, now, e.reason)
        if result.permanent_redirect:
            self._update(feed.id, url=result.final_url)
        if result.status == 410:
            self._update(
                feed.id, enabled=0, last_checked_at=format_time(now), last_error="gone (HTTP 410)"
            )
            return PollOutcome(feed.id, feed.url, "gone", error="gone (HTTP 410)")
        if result.status in (429, 503) and result.retry_after is not None:
            wait = min(result.retry_after, self.config.feeds.max_interval_hours * 3600)
            return self._failed(feed, now, f"HTTP {result.status}", wait)
        if result.status >= 400 or (result.status >= 300 and not result.not_modified):
            return self._failed(feed, now, f"HTTP {result.status}")
        validators = {
            "etag": result.headers.get("etag"),
            "last_modified": result.headers.get("last-modified"),
        }
        if result.not_modified:
            return self._succeeded(feed, now, result.headers, None, "not-modified", validators)
        body_hash = hashlib.sha256(result.content).hexdigest()
        if body_hash == feed.body_hash:
            return self._succeeded(feed, now, result.headers, None, "unchanged", validators)
        try:
            parsed = parse_feed(result.content, result.headers, result.final_url)
        except ParseError as e:
            return self._failed(feed, now, e.reason)
        entries = parsed.entries[: self.config.feeds.max_entries_per_poll]
        entries = tuple(
            self.full_text.complete(e, result.final_url)
            if needs_full_text(e, feed.full_text)
            else e
            for e in entries
        )
        docs = entry_documents(
            entries,
            result.final_url,
            feed.name,
            now,
            limit=self.config.feeds.max_entries_per_poll,
            source_location=feed.location,
        )
        outcomes = list(self.ingester.ingest(docs))
        new = sum(o.status in ("new", "updated") for o in outcomes)
        if parsed.warning:
            log.warning(
                "feed parsed with problems source=%d url=%s: %s", feed.id, feed.url, parsed.warning
            )
        outcome = self._succeeded(
            feed, now, result.headers, parsed.ttl_minutes, "ingested", validators, body_hash
        )
        return PollOutcome(
            feed.id, feed.url, "ingested", len(outcomes), new, parsed.warning, outcome.next_check_at
        )

    def _update(self, source_id: int, **values: object) -> None:
        columns = ", ".join(f"{k} = ?" for k in values)
        with self.store.write():
            self.store.execute(
                f"UPDATE sources SET {columns} WHERE id = ?", (*values.values(), source_id)
            )

    def _succeeded(
        self,
        feed: FeedSource,
        now: datetime,
        headers: dict[str, str],
        ttl: int | None,
        status: str,
        validators: dict[str, str | None],
        body_hash: str | None = None,
    ) -> PollOutcome:
        next_check = format_time(
            now + timedelta(seconds=success_interval(headers, ttl, self.config, now))
        )
        values: dict[str, object] = {
            "last_checked_at": format_time(now),
            "last_success_at": format_time(now),
            "last_error": None,
            "error_count": 0,
            "next_check_at": next_check,
        }
        values.update({k: v for k, v in validators.items() if v})
        if body_hash:
            values["body_hash"] = body_hash
        self._update(feed.id, **values)
        return PollOutcome(feed.id, feed.url, status, next_check_at=next_check)

    def _failed(
        self, feed: FeedSource, now: datetime, reason: str, wait: float | None = None
    ) -> PollOutcome:
        errors = feed.error_count + 1
        delay = wait if wait is not None else error_interval(errors, self.config, self.rng)
        next_check = format_time(now + timedelta(seconds=delay))
        log.warning("feed error source=%d url=%s: %s", feed.id, feed.url, reason)
        self._update(
            feed.id,
            last_checked_at=format_time(now),
            last_error=reason,
            error_count=errors,
            next_check_at=next_check,
        )
        return PollOutcome(feed.id, feed.url, "error", error=reason, next_check_at=next_check)
