"""store.digests: what a digest reads, answered from the database (storage/digests.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config import Config
from aggregator.model import DigestArticle, ParagraphText, format_time
from aggregator.storage.store import Store
from tests.conftest import SEEDS, OpenStore, ingest, ingest_docs, text_doc

pytestmark = pytest.mark.both_stores

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _arrive(store: Store, minutes: dict[int, int]) -> None:
    """Article id -> its arrival, in minutes after DAY."""
    with store.write():
        for article_id, minute in minutes.items():
            store.execute(
                "UPDATE articles SET first_seen_at = ? WHERE id = ?",
                (format_time(DAY + timedelta(minutes=minute)), article_id),
            )


def test_the_feed_id_is_made_once_and_kept(config: Config, open_store: OpenStore) -> None:
    made: list[str] = []

    def make() -> str:
        made.append(f"urn:uuid:{len(made)}")
        return made[-1]

    assert open_store().digests.feed_id(make) == "urn:uuid:0"
    assert open_store().digests.feed_id(make) == "urn:uuid:0"
    assert made == ["urn:uuid:0"], "made on first use only"


def test_arrivals_are_those_of_the_period_and_their_stories(
    config: Config, open_store: OpenStore
) -> None:
    ingest(config, SEEDS)
    store = open_store()
    _arrive(store, {n: 10 * n for n in range(1, 6)})  # ids 1-5: 10 minutes apart
    period = (DAY + timedelta(minutes=20), DAY + timedelta(minutes=50))  # ids 2, 3 and 4
    arrived = store.digests.arrivals(*period)
    assert sorted(a.article_id for a in arrived) == [2, 3, 4]
    assert all(isinstance(a, DigestArticle) and a.source == "seeds" for a in arrived)
    assert all(a.link is None for a in arrived), "a file path is no link"
    # 001 (id 2) and 004 (id 5) are the seeds' one story; only 001 arrived in the period.
    [member] = store.digests.arrived_members(*period)
    assert member.article_id == 2
    story = store.digests.story_articles(member.cluster_id, before=period[1])
    assert [a.article_id for a in story] == [2]
    later = store.digests.story_articles(member.cluster_id, before=DAY + timedelta(hours=1))
    assert sorted(a.article_id for a in later) == [2, 5]
    assert store.digests.canonical_article(member.cluster_id) in (2, 5)


def test_the_nth_newest_arrival_is_read_before_the_end(
    config: Config, open_store: OpenStore
) -> None:
    ingest(config, SEEDS)
    store = open_store()
    _arrive(store, {n: n for n in range(1, 6)})
    before = DAY + timedelta(minutes=4)  # ids 1-3 arrived before it
    assert store.digests.nth_newest_arrival(1, before) == DAY + timedelta(minutes=3)
    assert store.digests.nth_newest_arrival(3, before) == DAY + timedelta(minutes=1)
    assert store.digests.nth_newest_arrival(4, before) is None


def test_paragraphs_are_those_of_the_current_version(config: Config, open_store: OpenStore) -> None:
    first = text_doc("/news", "a", "Title", ["One.", "Two."])
    ingest_docs(config, [first])
    ingest_docs(config, [replace(first, content=b"Title\nOne.\nThree.\nFour.")])
    paragraphs = open_store().digests.paragraphs(1)
    assert [p.text for p in paragraphs] == ["One.", "Three.", "Four."]
    assert all(isinstance(p, ParagraphText) for p in paragraphs)
    assert len({p.paragraph_id for p in paragraphs}) == 3


def test_shared_spans_are_those_an_earlier_article_carries_too(
    config: Config, open_store: OpenStore
) -> None:
    ingest(config, SEEDS)
    store = open_store()
    assert store.digests.shared_spans(5, []) == []
    assert store.digests.shared_spans(5, [1, 3]) == [], "004 shares nothing with 000 or 002"
    spans = store.digests.shared_spans(5, [2])  # 004 repeats passages of 001
    texts = {p.paragraph_id: p.text for p in store.digests.paragraphs(5)}
    assert spans and all(0 <= s.start < s.end <= len(texts[s.paragraph_id]) for s in spans)
