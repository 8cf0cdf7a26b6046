"""storage/feeds.py and storage/state.py: due feeds picked by SQLite against a brute-force
oracle, a poll's update written and read back whole, subscribing, the status tallies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import MinHashParams
from aggregator.model import FeedChange, FeedSource, FeedStatus, FeedUpdate, format_time
from aggregator.storage.store import Store

pytestmark = pytest.mark.both_stores

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def feeds_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for every example of the module's properties, emptied by each."""
    store = Store(tmp_path_factory.mktemp("feeds") / "t.db", MinHashParams())
    yield store
    store.close()


def _empty(store: Store) -> None:
    store.execute("DELETE FROM sources")


def _add(store: Store, number: int) -> FeedSource:
    url = f"https://feed{number}.example/rss"
    return store.feeds.subscribe(url, f"Feed {number}", "auto", NOW).feed


# Schedules: never checked (None), or minutes from NOW; few values, so ties are common.
schedules = st.lists(
    st.tuples(st.none() | st.integers(-30, 30), st.booleans()), min_size=0, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(
    feeds=schedules,
    limit=st.none() | st.integers(0, 30),
    excluded=st.sets(st.integers(0, 30), max_size=6),
    offset=st.integers(-40, 40),
)
def test_due_feeds_are_the_oracles_first_n(
    feeds_store: Store,
    feeds: list[tuple[int | None, bool]],
    limit: int | None,
    excluded: set[int],
    offset: int,
) -> None:
    store = feeds_store
    _empty(store)
    for number, (minutes, enabled) in enumerate(feeds):
        feed = _add(store, number)
        at = None if minutes is None else NOW + timedelta(minutes=minutes)
        store.execute(
            "UPDATE sources SET next_check_at = ?, enabled = ? WHERE id = ?",
            (None if at is None else format_time(at), int(enabled), feed.id),
        )
    ids = [f.id for f in store.feeds.all()]
    exclude = {ids[i] for i in excluded if i < len(ids)}
    now = NOW + timedelta(minutes=offset)

    # The oracle: every feed loaded, filtered and sorted in Python.
    stamp = format_time(now)
    oracle = sorted(
        (
            f
            for f in store.feeds.all()
            if f.enabled
            and f.id not in exclude
            and (f.next_check_at is None or f.next_check_at <= stamp)
        ),
        key=lambda f: (f.next_check_at is not None, f.next_check_at or "", f.id),
    )
    assert store.feeds.due(now, limit, exclude) == oracle[:limit]
    assert store.feeds.count_due(now, exclude) == len(oracle)
    if not exclude:
        assert store.feeds.tally(now).due == len(oracle)


def test_due_feeds_never_checked_come_first_then_the_most_overdue(store: Store) -> None:
    late, early, never, later = (_add(store, n) for n in range(4))
    for feed, minutes in ((late, -5), (early, -50), (later, 5)):
        at = format_time(NOW + timedelta(minutes=minutes))
        store.execute("UPDATE sources SET next_check_at = ? WHERE id = ?", (at, feed.id))
    store.execute("UPDATE sources SET next_check_at = NULL WHERE id = ?", (never.id,))
    assert [f.id for f in store.feeds.due(NOW)] == [never.id, early.id, late.id]
    assert [f.id for f in store.feeds.due(NOW, limit=2)] == [never.id, early.id]
    assert [f.id for f in store.feeds.due(NOW, exclude={early.id})] == [never.id, late.id]


updates = st.builds(
    FeedUpdate,
    status=st.sampled_from(["ok", "error", "gone"]),
    checked_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    next_check_at=st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    last_error=st.none() | st.text(max_size=20),
    error_count=st.integers(0, 10_000),
    etag=st.none() | st.text(max_size=20),
    last_modified=st.none() | st.text(max_size=20),
    body_hash=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    last_warning=st.none() | st.text(max_size=40),
    moved_to=st.none() | st.just("https://moved.example/feed"),
)


@settings(max_examples=80, deadline=None)
@given(update=updates, enabled=st.booleans())
def test_an_applied_update_reads_back_whole(
    feeds_store: Store, update: FeedUpdate, enabled: bool
) -> None:
    store = feeds_store
    _empty(store)
    feed = _add(store, 1)
    store.feeds.edit(feed.id, FeedChange(enabled=enabled))
    before = store.feeds.get(feed.id)
    assert before is not None
    store.feeds.apply(feed.id, update)
    after = store.feeds.get(feed.id)
    assert after is not None
    checked = format_time(update.checked_at)
    stamp = None if update.next_check_at is None else format_time(update.next_check_at)
    assert after == replace(
        before,
        url=update.moved_to or before.url,
        enabled={"ok": True, "gone": False}.get(update.status, enabled),
        last_checked_at=checked,
        last_success_at=checked if update.status == "ok" else before.last_success_at,
        last_error=update.last_error,
        error_count=update.error_count,
        next_check_at=stamp,
        etag=update.etag,
        last_modified=update.last_modified,
        body_hash=update.body_hash,
        last_warning=update.last_warning,
    )
    assert after.location == feed.location, "a redirect never changes the identity"


def _update(status: FeedStatus, **fields: Any) -> FeedUpdate:
    """An update at NOW, due again at NOW, with validators, hash and warning."""
    base = FeedUpdate(
        status=status,
        checked_at=NOW,
        next_check_at=NOW,
        last_error=None,
        error_count=0,
        etag='"e"',
        last_modified="Mon, 23 Nov 2026 10:00:00 GMT",
        body_hash="h",
        last_warning=None,
    )
    return replace(base, **fields)


def test_subscribing_adds_enables_again_or_leaves_alone(store: Store) -> None:
    url = "https://wire.example/rss"
    added = store.feeds.subscribe(url, "Wire", "never", NOW)
    assert added.outcome == "added"
    assert (added.feed.name, added.feed.full_text, added.feed.next_check_at) == (
        "Wire",
        "never",
        format_time(NOW),
    )
    assert store.feeds.subscribe(url, "Other", "auto", NOW).outcome == "already"
    store.feeds.apply(added.feed.id, _update("gone", last_error="gone", error_count=3))
    later = NOW + timedelta(hours=1)
    again = store.feeds.subscribe(url, "Other", "auto", later)
    assert again.outcome == "enabled"
    feed = again.feed
    assert (feed.id, feed.name, feed.enabled, feed.full_text) == (
        added.feed.id,
        "Wire",
        True,
        "auto",
    )
    assert (feed.error_count, feed.last_error, feed.etag, feed.last_modified) == (
        0,
        None,
        None,
        None,
    )
    assert feed.next_check_at == format_time(later)


def test_an_edit_writes_only_what_it_sets(store: Store) -> None:
    feed = _add(store, 1)
    store.feeds.edit(feed.id, FeedChange(name="Wire", min_interval_minutes=30))
    edited = store.feeds.get(feed.id)
    assert edited == replace(feed, name="Wire", min_interval_minutes=30)
    store.feeds.edit(feed.id, FeedChange(min_interval_minutes=0, next_check_at=NOW))
    assert store.feeds.get(feed.id) == replace(
        edited, min_interval_minutes=None, next_check_at=format_time(NOW)
    )


def test_tally_and_failing_feeds(store: Store) -> None:
    ok, failing, disabled = (_add(store, n) for n in range(3))
    soon = NOW + timedelta(minutes=5)
    store.feeds.apply(ok.id, _update("ok", next_check_at=soon))
    for feed in (failing, disabled):
        store.feeds.apply(feed.id, _update("error", last_error="HTTP 500", error_count=2))
    store.feeds.edit(disabled.id, FeedChange(enabled=False))
    tally = store.feeds.tally(NOW)
    assert (tally.feeds, tally.due, tally.failing) == (2, 1, 1)
    (shown,) = store.feeds.failing()
    assert (shown.id, shown.error_count, shown.last_error, shown.last_success_at) == (
        failing.id,
        2,
        "HTTP 500",
        None,
    )


def test_removing_a_feed_without_articles_deletes_it(store: Store) -> None:
    feed = _add(store, 1)
    assert store.feeds.remove(feed.id) == 0
    assert store.feeds.get(feed.id) is None


def test_service_state_keys_are_rewritten_in_place(store: Store) -> None:
    store.state.write({"started_at": "a", "last_tick": "one"}, NOW)
    store.state.write({"last_tick": "two"}, NOW + timedelta(minutes=1))
    assert store.state.read() == {"started_at": "a", "last_tick": "two"}
    stamps = dict(store.execute("SELECT key, updated_at FROM service_state").fetchall())
    assert stamps == {
        "started_at": format_time(NOW),
        "last_tick": format_time(NOW + timedelta(minutes=1)),
    }
