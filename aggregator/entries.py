"""Entries to documents: what identifies a feed entry, and when it was published.

* **Identity**, in order: the entry's GUID; else its link, normalised (see
  `urls.py`); else a hash of its title and text. Feeds that repeat one GUID for
  different entries exist: a GUID seen twice in one document with different
  links is told apart by its link. The same entry seen again with other text
  keeps its identity and becomes a new version in the store.
* **Date**: the entry's own date (published, else updated). Missing: the fetch
  time. In the future (clock skew, scheduled posts): clamped to the fetch time,
  so a story cannot sort ahead of everything for days. When the date used is
  not the one the feed wrote (clamped, or unreadable), the feed's text is kept
  beside it.
* **Text**: the entry's full content when present, else its summary, handed
  on as an HTML fragment; the title comes from the feed, not from the text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime

from aggregator.extract import FRAGMENT
from aggregator.model import RawDocument
from aggregator.parse import FeedEntry
from aggregator.urls import normalise_url


def entry_identity(entry: FeedEntry, feed_url: str) -> str:
    """The identity of one entry within its feed (before duplicate-GUID handling)."""
    if entry.guid.strip():
        return entry.guid.strip()
    if entry.link.strip():
        return normalise_url(entry.link, feed_url)
    digest = hashlib.sha256((entry.title + "\n" + (entry.content or entry.summary)).encode())
    return "sha256:" + digest.hexdigest()


def entry_time(entry: FeedEntry, fetched_at: datetime) -> datetime:
    """When the entry counts as published: its own date, clamped to the fetch time."""
    if entry.published_at is None or entry.published_at > fetched_at:
        return fetched_at
    return entry.published_at


def raw_date(entry: FeedEntry, fetched_at: datetime) -> str | None:
    """The feed's own date text, when `entry_time` does not use it as written."""
    written = (entry.published or entry.updated).strip()
    if not written or entry_time(entry, fetched_at) == entry.published_at:
        return None
    return written[:200]


def entry_documents(
    entries: Sequence[FeedEntry],
    feed_url: str,
    source_name: str,
    fetched_at: datetime,
    limit: int | None = None,
    source_location: str | None = None,
) -> Iterator[RawDocument]:
    """Documents for the pipeline, one per entry, at most `limit` (in feed order).

    Links resolve against `feed_url` (where the feed was fetched);
    `source_location` (default: the same) is the subscription they belong to.
    """
    links: dict[str, set[str]] = {}
    for entry in entries:
        links.setdefault(entry_identity(entry, feed_url), set()).add(
            normalise_url(entry.link, feed_url) if entry.link else ""
        )
    for entry in entries[:limit] if limit is not None else entries:
        identity = entry_identity(entry, feed_url)
        link = normalise_url(entry.link, feed_url) if entry.link else ""
        if len(links[identity]) > 1:
            identity = f"{identity} {link}"
        yield RawDocument(
            source_kind="feed",
            source_location=source_location or feed_url,
            source_name=source_name,
            identity=identity,
            location=link or feed_url,
            media_type=FRAGMENT,
            content=(entry.content or entry.summary or "").encode("utf-8"),
            modified_at=fetched_at,
            title=" ".join(entry.title.split()) or None,
            published_at=entry_time(entry, fetched_at),
            published_raw=raw_date(entry, fetched_at),
        )
