"""Plain values passed between pipeline stages.

Every stage takes and returns these frozen dataclasses (and aware UTC datetimes,
made by `as_utc`, stored as text by `format_time`); none of them knows about
SQLite, HTTP or a third-party library's types, so each stage can be tested on
its own and a different store or source can be put behind the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

# File extensions the folder source understands, and the media type each means.
MEDIA_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
}


@dataclass(frozen=True, slots=True)
class RawDocument:
    """Bytes read from a source, before any parsing.

    `identity` names the document within its source across runs (a resolved file
    path, later a feed GUID); `location` is what a person uses to find it again.
    """

    source_kind: str
    source_location: str
    source_name: str
    identity: str
    location: str
    media_type: str
    content: bytes
    modified_at: datetime
    # What the source already knows (a feed entry's title and date); these win
    # over anything extraction finds in `content`.
    title: str | None = None
    published_at: datetime | None = None
    # The date as the source wrote it, when `published_at` is not that date
    # (it was in the future and clamped, or could not be read).
    published_raw: str | None = None
    # The paragraphs of `content` when they were read already: a feed entry's
    # HTML, read in a parse worker (entrytext.py) so that the thread extracting
    # documents never parses feed HTML; `extract` takes them as they are.
    paragraphs: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """An extracted article: a title, when it was published, and its paragraphs."""

    title: str
    published_at: datetime
    paragraphs: tuple[str, ...]
    # Who published it, as the article itself says (front matter, meta tags);
    # None: the source (feed or folder) it came from is all that is known.
    outlet: str | None = None
    # False: no date was found and `published_at` is the file's modification time
    # (the story layer then reads no "yesterday" or "on Tuesday" against it).
    dated: bool = True


@dataclass(frozen=True, slots=True)
class Unit:
    """A run of whole sentences inside one paragraph, the unit that is signed and matched.

    `start` and `end` are character offsets into the paragraph's original text,
    so a match can be shown exactly as the article printed it. Units of one
    paragraph may overlap (a merged run and a sentence inside it, segment.py);
    `position` orders them by start and is unique within the paragraph.
    """

    paragraph: int
    position: int
    start: int
    end: int
    tokens: tuple[str, ...]


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC, a naive one taken as UTC already.

    Every date handed between stages is aware and in UTC, so it can be stored as
    text and compared. A moment whose offset carries it past either end of the
    datetime range (0001-01-01T00:00+01:00) is clamped to that end: such dates
    come only from broken or hostile input, and raising there would cost the
    whole document.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def parse_iso_date(value: str) -> datetime | None:
    """An ISO 8601 date or time (a zone-less one is UTC), in UTC; None if unreadable."""
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


# Stored times: ISO 8601 UTC text to the second, which sorts and reads as text.


def utcnow() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """`moment` as stored: "2026-11-23T18:20:58Z"."""
    u = as_utc(moment)  # zero-padded by hand: strftime writes year 999 as '999'
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


@lru_cache(maxsize=8192)
def parse_time(text: str) -> datetime:
    """A stored time back as an aware UTC datetime.

    Memoised: the passage rules compare the same few publication times over and
    over (a host against each copy), and `strptime` costs about 17 µs a call.
    """
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedLink:
    """A feed an HTML page links to: absolute URL, kind (from its type) and title."""

    url: str
    kind: str
    title: str


# -- What a digest reads: storage.digests gives these, digest.select consumes them --------


@dataclass(frozen=True, slots=True)
class DigestArticle:
    """One article as a digest names it (stored times as stored: text, to the second)."""

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
class StoryMember:
    """An article that arrived in a period, and the story (cluster) it belongs to."""

    article_id: int
    cluster_id: int


@dataclass(frozen=True, slots=True)
class ParagraphText:
    """A paragraph of an article's current version: its row id and its text."""

    paragraph_id: int
    text: str


@dataclass(frozen=True, slots=True)
class SharedSpan:
    """Characters [start, end) of a paragraph that a passage shares with other articles."""

    paragraph_id: int
    start: int
    end: int


# -- Feed sources: storage.feeds gives and takes these; ingest.feeds decides them ------------


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A subscribed feed as stored: its settings and what its polls recorded.

    `location` is the URL it was subscribed with (its identity, never changed),
    `url` where it is fetched now; times are as stored (text, read by `parse_time`).
    """

    id: int
    name: str
    location: str
    url: str
    full_text: str  # "auto", "always" or "never"
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


FeedStatus = Literal["ok", "error", "gone"]


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """What one poll records on a feed: decided whole by the poller (`ingest.feeds`),
    written as it is by `store.feeds.apply`, which decides nothing.

    The fields are the feed's poll state after the poll, kept ones included (a 304
    keeps the stored validators). `status` says what else changes: "ok" stamps
    `last_success_at` with `checked_at` and enables the feed (a disabled feed
    polled on request that answers is back), "gone" disables it, "error" leaves
    both as they are. `moved_to`: a permanent redirect's target, fetched from now on.
    """

    status: FeedStatus
    checked_at: datetime
    next_check_at: datetime | None
    last_error: str | None
    error_count: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_warning: str | None
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class FeedChange:
    """What an edit (`sources set`) changes on a feed; a field left None stays as it is."""

    name: str | None = None
    full_text: str | None = None
    enabled: bool | None = None
    min_interval_minutes: float | None = None  # 0: none of its own (the configured one)
    next_check_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscribe's result: the feed, and whether it was added, enabled again (it was
    removed or gone), or left alone (already an enabled subscription)."""

    feed: FeedSource
    outcome: Literal["added", "enabled", "already"]


@dataclass(frozen=True, slots=True)
class FeedTally:
    """The enabled feeds: how many, how many are due, how many failing."""

    feeds: int
    due: int
    failing: int


@dataclass(frozen=True, slots=True)
class FailingFeed:
    """An enabled feed whose last poll failed: its one-line error, and since when
    it last succeeded."""

    id: int
    name: str
    location: str
    error_count: int
    last_error: str
    last_success_at: str | None
