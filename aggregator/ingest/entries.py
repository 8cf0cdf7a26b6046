"""Entries to documents: what identifies a feed entry, and when it was published.

* **Identity**, in order: the entry's GUID; else its link, normalised (see
  `urls.py`); else a hash of its title and text. The same entry seen again with
  other text keeps its identity and becomes a new version in the store.
* **Colliding identities.** Feeds that give one GUID (and link) to different
  entries exist (podcasts reusing an episode's GUID, CMSs writing the site URL
  as every item's GUID). Within one document, entries sharing an identity are
  told apart by their link when the links differ; entries that still share it
  are told apart when they are different items: two entries are the same item
  (edited, or listed twice) when they have the same title or the same
  publication date, so an entry listed twice, or with a corrected headline,
  stays one article with versions. Each distinct item's identity gets a suffix hashed
  from its publication date (its title when it has none; not the `updated`
  date, which every edit moves): a function of the entry, so the next poll,
  with items added or dropped, maps each item to the same article, and a
  headline corrected later still keeps it. No collision is silent:
  `entry_documents` reports what it did as a one-line warning. What a document
  alone cannot show is not caught: an entry that reuses the identity of one no
  longer in the feed becomes a version of it, and an entry first seen alone
  keeps the bare identity, so when a second item with its identity appears it
  is stored once more under a suffixed one (the duplicate detection clusters
  the two copies).
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
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime

from aggregator.dedup.cluster import components
from aggregator.ingest.record import Outcome
from aggregator.model import RawDocument
from aggregator.sources.entrytext import entry_paragraphs, html_warning
from aggregator.sources.extract import FRAGMENT
from aggregator.sources.parse import FeedEntry, ParsedFeed
from aggregator.urls import normalise_url

log = logging.getLogger(__name__)


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


def _title_key(entry: FeedEntry) -> str | None:
    """The title an entry is recognised by: whitespace and case do not count."""
    return " ".join(entry.title.split()).casefold() or None


def _date_key(entry: FeedEntry) -> str | None:
    """The date an entry is recognised by: when it was published (parsed if it
    could be, else as written). Not its `updated` date, which every edit moves."""
    if not entry.published.strip():
        return None
    if entry.published_at is not None:
        return entry.published_at.isoformat()
    return " ".join(entry.published.split())


def _items(group: Sequence[int], entries: Sequence[FeedEntry]) -> list[list[int]]:
    """Entries (by index) that share an identity, grouped into distinct items.

    Two entries are one item when they have the same title or the same date,
    and so on transitively: an edit changes one of the two, a different item
    with a reused GUID both.
    """
    first: dict[tuple[str, str], int] = {}
    edges = [
        (i, first.setdefault((kind, key), i))
        for i in group
        for kind, key in (("title", _title_key(entries[i])), ("date", _date_key(entries[i])))
        if key is not None
    ]
    return components(group, edges)


def _item_suffix(item: Sequence[FeedEntry]) -> str:
    """What tells an item apart from others with its identity: its date, else its title.

    The date, because a corrected headline is the commonest edit and must not
    make a new article; the earliest one when the item was listed with two.
    An item with neither has no suffix (it cannot be told apart).
    """
    dates = [d for d in map(_date_key, item) if d is not None]
    titles = [t for t in map(_title_key, item) if t is not None]
    anchor = f"date {min(dates)}" if dates else f"title {min(titles)}" if titles else ""
    return " #" + hashlib.sha256(anchor.encode()).hexdigest()[:16] if anchor else ""


def entry_identities(entries: Sequence[FeedEntry], feed_url: str) -> tuple[list[str], str | None]:
    """The identity of each entry of one document, and a warning if any collided.

    See the module docstring for the rules. The warning is one line: how many
    entries were told apart by link, by date or title, or kept as versions of
    another entry in the same document, and the first identity concerned.
    """
    links = [normalise_url(e.link, feed_url) if e.link else "" for e in entries]
    by_base: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        by_base.setdefault(entry_identity(entry, feed_url), []).append(i)
    identities = [""] * len(entries)
    by_link = by_item = merged = 0
    example = ""
    for base, group in by_base.items():
        if len(group) == 1:
            identities[group[0]] = base
            continue
        before = by_link + by_item + merged
        split_by_link = len({links[i] for i in group}) > 1
        by_link += len(group) if split_by_link else 0
        by_identity: dict[str, list[int]] = {}
        for i in group:
            identity = f"{base} {links[i]}" if split_by_link else base
            by_identity.setdefault(identity, []).append(i)
        for identity, same in by_identity.items():
            items = _items(same, entries) if len(same) > 1 else [same]
            if len(items) > 1:
                by_item += len(same)
            for item in items:
                suffix = _item_suffix([entries[i] for i in item]) if len(items) > 1 else ""
                for i in item:
                    identities[i] = identity + suffix
        distinct = {(identities[i], entries[i]) for i in group}  # not the same entry twice
        merged += len(distinct) - len({identities[i] for i in group})
        if by_link + by_item + merged > before and not example:
            example = base
    parts = [
        f"{count} {what}"
        for count, what in (
            (by_link, "told apart by link"),
            (by_item, "told apart by date or title"),
            (merged, "kept as versions of another entry"),
        )
        if count
    ]
    if not parts:
        return identities, None
    shown = example if len(example) <= 80 else example[:80] + "..."
    return identities, f"entries sharing a GUID or link: {', '.join(parts)} (first: {shown!r})"


def entry_documents(
    entries: Sequence[FeedEntry],
    feed_url: str,
    source_name: str,
    fetched_at: datetime,
    limit: int | None = None,
    source_location: str | None = None,
    warnings: list[str] | None = None,
) -> Iterator[RawDocument]:
    """Documents for the pipeline, one per entry, at most `limit` (in feed order).

    Links resolve against `feed_url` (where the feed was fetched);
    `source_location` (default: the same) is the subscription they belong to.
    Identities are decided over all entries, not only the first `limit`, so
    they do not depend on the limit. A collision of identities, and entries
    whose HTML was over the limits (`entrytext.html_warning`), are logged and,
    when `warnings` is given, appended to it (before the first document is
    yielded) for the caller to record on the source. Entries read in the parse
    worker (`entrytext.ReadEntry`) hand their paragraphs on with the document.
    """
    identities, collided = entry_identities(entries, feed_url)
    if collided is not None:
        log.warning("feed %s: %s", source_location or feed_url, collided)
        if warnings is not None:
            warnings.append(collided)
    taken = entries[:limit] if limit is not None else entries
    if (over := html_warning(taken)) is not None:  # entrytext.py: read in the parse worker
        log.warning("feed %s: %s", source_location or feed_url, over)
        if warnings is not None:
            warnings.append(over)
    for entry, identity in zip(taken, identities, strict=False):
        link = normalise_url(entry.link, feed_url) if entry.link else ""
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
            paragraphs=entry_paragraphs(entry),
        )


def poll_warnings(
    parsed: ParsedFeed,
    collisions: list[str],
    cap: int,
    outcomes: Sequence[Outcome],
    failures: list[str],
) -> list[str]:
    """What a poll of one feed records as its warning, part by part: the parser's
    problems, identity collisions, entries past the cap, cut, skipped, and
    summaries kept where the full text could not be had."""
    warnings = [parsed.warning] if parsed.warning else []
    warnings += collisions
    if len(parsed.entries) > cap:
        # Decided (issue 12): the cut is recorded, not carried over. A feed lists its
        # newest entries first, and one longer than the cap is an archive (a podcast's
        # 730 episodes): the rest would arrive as old news, and carrying them over
        # would need the body re-parsed at every poll until they all were taken.
        warnings.append(
            f"{len(parsed.entries) - cap} of {len(parsed.entries)} entries not taken: "
            f"only the first {cap} in feed order are (feeds.max_entries_per_poll)"
        )
    if cut := [o for o in outcomes if o.warning]:
        warnings.append(
            f"{len(cut)} of {len(outcomes)} entries cut to the article caps, "
            f"last: {cut[-1].warning}"
        )
    if skipped := [o for o in outcomes if o.status == "failed" and not o.refused]:
        warnings.append(
            f"{len(skipped)} of {len(outcomes)} entries skipped, last: {skipped[-1].error}"
        )
    if failures:
        warnings.append(
            f"full text unavailable for {len(failures)} of {len(outcomes)} entries, "
            f"summaries kept; last: {failures[-1]}"
        )
    return warnings
