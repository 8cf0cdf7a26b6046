"""What each entry point must give back: the checks the fuzz tests and the
reproductions share.

Each check calls its entry point through `harness.call` (a result, or one of our errors
with a one-line message, in bounded time) and then checks that the result is usable
downstream: dates the store can write and read back, non-empty one-line paragraphs,
URLs that normalise to themselves, intervals within the configured bounds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config import Config
from aggregator.configfile import load_config
from aggregator.errors import ConfigError, ExtractError, ParseError, SourceError
from aggregator.ingest.entries import entry_documents
from aggregator.ingest.feeds import error_interval, success_interval
from aggregator.model import Article, RawDocument, format_time, parse_time
from aggregator.sources.extract import extract
from aggregator.sources.fetch import parse_retry_after
from aggregator.sources.parse import ParsedFeed, parse_feed
from aggregator.urls import normalise_url

from .harness import call, invariant

FETCHED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------
# Feeds and documents.


def check_storable(moment: datetime, tolerate: bool = True) -> None:
    """The store writes dates as text and reads them back; both must work."""
    assert moment.tzinfo is not None, f"naive datetime {moment!r}"
    try:
        back = parse_time(format_time(moment))
    except (OverflowError, ValueError) as e:
        invariant(False, "date-storable", f"{moment!r} cannot be stored: {e}", tolerate)
        return
    invariant(
        back == moment.astimezone(UTC).replace(microsecond=0),
        "date-storable",
        f"{moment!r} is read back as {back!r}",
        tolerate,
    )


def check_article(article: Article, tolerate: bool = True) -> None:
    assert isinstance(article, Article)
    assert isinstance(article.title, str) and article.title.strip(), article
    assert "\n" not in article.title, article.title
    assert article.paragraphs, article
    for paragraph in article.paragraphs:
        assert isinstance(paragraph, str) and paragraph.strip(), article.paragraphs
        assert "\n" not in paragraph, paragraph
    check_storable(article.published_at, tolerate)


def is_text(value: str) -> bool:
    """Valid Unicode: no lone surrogates (which UTF-8 and SQLite refuse)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def documents(parsed: ParsedFeed, url: str) -> list[RawDocument]:
    return list(entry_documents(parsed.entries, url, "fuzz", FETCHED_AT))


def check_feed(content: bytes, headers: dict[str, str], url: str, tolerate: bool = True) -> None:
    """parse_feed, then every entry through entry_documents and extract."""
    parsed = call(parse_feed, content, headers, url, allowed=(ParseError,), tolerate=tolerate)
    if parsed is None:
        return
    assert isinstance(parsed, ParsedFeed)
    assert parsed.entries
    assert isinstance(parsed.title, str) and isinstance(parsed.link, str)
    assert parsed.ttl_minutes is None or parsed.ttl_minutes >= 0
    if parsed.warning is not None:
        assert "\n" not in parsed.warning, f"multi-line warning {parsed.warning!r}"
    for entry in parsed.entries:
        for name in ("guid", "link", "title", "summary", "content", "published", "updated"):
            value = getattr(entry, name)
            assert isinstance(value, str), (name, entry)
            invariant(
                is_text(value),
                "json-surrogates",
                f"entry {name} {value!r} is not valid Unicode (SQLite refuses it)",
                tolerate,
            )
    docs = call(documents, parsed, url, allowed=(), tolerate=tolerate)
    if docs is None:  # a known bug, tolerated
        return
    assert len(docs) == len(parsed.entries)
    for doc in docs:
        assert doc.published_at is not None
        check_storable(doc.published_at, tolerate)
        article = call(extract, doc, allowed=(ExtractError, SourceError), tolerate=tolerate)
        if article is not None:
            check_article(article, tolerate)


def check_document(doc: RawDocument, tolerate: bool = True) -> None:
    article = call(extract, doc, allowed=(ExtractError, SourceError), tolerate=tolerate)
    if article is not None:
        check_article(article, tolerate)


# ---------------------------------------------------------------------------------------
# Configuration files, URLs, Retry-After and next-check intervals.


def check_config(path: Path, tolerate: bool = True) -> None:
    config = call(
        load_config,
        path,
        allowed=(ConfigError,),
        tolerate=tolerate,
        starts=("config key ", "config file "),
    )
    assert config is None or isinstance(config, Config)


def check_url(url: str, base: str | None, tolerate: bool = True) -> None:
    once = normalise_url(url, base)
    assert isinstance(once, str)
    if base is None or base.startswith("http"):
        invariant(
            normalise_url(once) == once,
            "url-idempotent",
            f"normalise_url({url!r}, {base!r}) = {once!r} but normalising it again gives "
            f"{normalise_url(once)!r}",
            tolerate,
        )


def check_retry_after(value: str | None, now: datetime | None, tolerate: bool = True) -> None:
    seconds = call(parse_retry_after, value, now, allowed=(), tolerate=tolerate)
    assert seconds is None or (isinstance(seconds, float) and seconds >= 0), seconds


def check_intervals(headers: dict[str, str], ttl: int | None, errors: int) -> None:
    config = Config()
    low, high = config.feeds.min_interval_minutes * 60, config.feeds.max_interval_hours * 3600
    seconds = call(success_interval, headers, ttl, config, FETCHED_AT, allowed=())
    assert seconds is not None and low <= seconds <= high, seconds
    backoff = call(error_interval, errors, config, random.Random(errors), allowed=())
    assert backoff is not None and 0.8 * low <= backoff <= 1.2 * high, backoff
