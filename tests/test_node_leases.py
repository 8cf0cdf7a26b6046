"""storage/nodes.py on a real PostgreSQL server: feed leases, fencing, the staged queue.

What is tested, and why: fetch nodes on many machines share one feeds table
as their queue, so two nodes claiming at once must never take the same feed,
a lease that ran out must go to another node with a newer token, and a poll
written under a lost lease must write nothing (else a feed's ETag and body
hash could go back to an older poll's, or its entries be staged twice). The
dedup writer then reads the staged batches in order, sets aside the ones it
cannot read, and deletes the rest: `queue()` is what `status` shows of that.
Every test gets a fresh database; two Stores are two connections, as two
nodes would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config import Config, MinHashParams, PostgresURL
from aggregator.ingest.handoff import encode
from aggregator.ingest.pipeline import Ingester
from aggregator.model import FeedChange, FeedSource, FeedUpdate, RawDocument, format_time
from aggregator.service.roles import DedupNode
from aggregator.storage.nodes import LeaseLost, Nodes
from aggregator.storage.postgres import PostgresRoleLock
from aggregator.storage.store import Store
from tests.conftest import SEEDS, needs_tool, raw_rows, read_all
from tests.postgres import INITDB, PostgresServer
from tests.test_handoff import _ready

pytestmark = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")

LONG = 600.0  # seconds: a lease that cannot run out during a test


@pytest.fixture
def url(postgres: PostgresServer) -> PostgresURL:
    return PostgresURL(postgres.database())


@pytest.fixture
def stores(url: PostgresURL) -> Iterator[tuple[Store, Store]]:
    """Two connections to the test's database, as two fetch nodes would hold."""
    first = Store(url, MinHashParams())
    try:
        second = Store(url, MinHashParams())
    except BaseException:
        first.close()
        raise
    yield first, second
    second.close()
    first.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _subscribe(store: Store, count: int) -> list[FeedSource]:
    """`count` feeds, never checked (next_check_at NULL): all due."""
    feeds = [
        store.feeds.subscribe(f"https://feed{n}.example/rss", f"Feed {n}", "auto").feed
        for n in range(count)
    ]
    with store.write():
        store.execute("UPDATE sources SET next_check_at = NULL WHERE kind = 'feed'")
    return feeds


def _update(etag: str, next_check: datetime) -> FeedUpdate:
    return FeedUpdate("ok", _now(), next_check, None, 0, etag, None, f"hash-{etag}", None)


def _wait_until_expired(url: PostgresURL, feed_id: int, deadline: float = 20.0) -> None:
    """Until the server's clock is past the feed's lease (polled, never a long sleep)."""
    ends = time.monotonic() + deadline
    query = f"SELECT until < now() FROM feed_leases WHERE source_id = {int(feed_id)}"
    while raw_rows(url, query) != [(True,)]:
        assert time.monotonic() < ends, "the lease never ran out"
        time.sleep(0.05)


def test_two_nodes_claiming_at_once_take_disjoint_feeds(stores: tuple[Store, Store]) -> None:
    one, two = Nodes(stores[0]), Nodes(stores[1])
    a, b = one.register("fetch"), two.register("fetch")
    assert a != b
    ids = {f.id for f in _subscribe(stores[0], 30)}
    barrier = threading.Barrier(2)
    claimed: dict[int, list[tuple[FeedSource, int]]] = {}
    errors: list[BaseException] = []

    def claim(nodes: Nodes, node: int, limit: int) -> None:
        try:
            barrier.wait(30)
            claimed[node] = nodes.claim(node, _now(), limit, LONG)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=claim, args=(one, a, 10)),
        threading.Thread(target=claim, args=(two, b, 30)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and set(claimed) == {a, b}
    got_a = [f.id for f, _ in claimed[a]]
    got_b = [f.id for f, _ in claimed[b]]
    assert len(got_a) <= 10 and len(set(got_a)) == len(got_a)
    assert len(set(got_b)) == len(got_b)
    assert not set(got_a) & set(got_b)
    assert set(got_a) | set(got_b) == ids  # 30 at most, and none lost between them
    tokens = [t for _, t in claimed[a] + claimed[b]]
    assert len(set(tokens)) == len(tokens) == 30
    holders = dict(raw_rows(stores[0].database, "SELECT source_id, node_id FROM feed_leases"))
    assert holders == dict.fromkeys(got_a, a) | dict.fromkeys(got_b, b)
    assert one.claim(a, _now(), 30, LONG) == [] and two.claim(b, _now(), 30, LONG) == []


def test_a_lease_that_ran_out_is_claimed_again_and_its_old_holder_writes_nothing(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    one, two = Nodes(stores[0]), Nodes(stores[1])
    a, b = one.register("fetch"), two.register("fetch")
    [feed] = _subscribe(stores[0], 1)
    [(first, old)] = one.claim(a, _now(), 5, 0.5)
    assert first.id == feed.id
    _wait_until_expired(url, feed.id)
    [(again, new)] = two.claim(b, _now(), 5, LONG)
    assert again.id == feed.id and new > old
    before = stores[0].feeds.get(feed.id)
    assert before is not None

    late = _update("from-a", _now() + timedelta(hours=1))
    with pytest.raises(LeaseLost):
        one.finish(feed.id, old, late, [(3, b"stale batch")])
    after = stores[1].feeds.get(feed.id)
    assert after is not None
    assert (after.etag, after.body_hash, after.next_check_at) == (
        before.etag,
        before.body_hash,
        before.next_check_at,
    )
    assert after.etag is None and after.next_check_at is None
    assert raw_rows(url, "SELECT count(*) FROM staged") == [(0,)]
    assert raw_rows(url, "SELECT node_id, token FROM feed_leases") == [(b, new)]

    next_check = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    two.finish(feed.id, new, _update("from-b", next_check), [(2, b"first"), (5, b"\x00second")])
    rows = raw_rows(url, "SELECT source_id, node_id, articles, payload FROM staged ORDER BY id")
    assert [(s, n, k, bytes(p)) for s, n, k, p in rows] == [
        (feed.id, b, 2, b"first"),
        (feed.id, b, 5, b"\x00second"),
    ]
    written = stores[0].feeds.get(feed.id)
    assert written is not None
    assert (written.etag, written.body_hash) == ("from-b", "hash-from-b")
    assert written.next_check_at == format_time(next_check)
    assert written.last_success_at is not None
    assert raw_rows(url, "SELECT count(*) FROM feed_leases") == [(0,)]
    with pytest.raises(LeaseLost):  # given back: finishing twice writes nothing more
        two.finish(feed.id, new, _update("twice", next_check), [(1, b"again")])
    assert raw_rows(url, "SELECT count(*) FROM staged") == [(2,)]


def test_heartbeats_move_leases_on_and_a_stopped_node_gives_them_back(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    one, two = Nodes(stores[0]), Nodes(stores[1])
    a, b = one.register("fetch"), two.register("fetch")
    _subscribe(stores[0], 5)
    held = one.claim(a, _now(), 3, 60)
    assert len(held) == 3
    until = "SELECT source_id, extract(epoch FROM until - now()) FROM feed_leases"
    before = dict(raw_rows(url, until))
    one.heartbeat(a, "polling", 3600)
    after = dict(raw_rows(url, until))
    assert set(after) == set(before) == {f.id for f, _ in held}
    assert all(before[i] <= 60 and after[i] > 3000 for i in after)

    live = {n.id: n for n in two.live(60)}
    assert set(live) == {a, b}
    assert (live[a].role, live[a].state, live[a].feeds_in_flight) == ("fetch", "polling", 3)
    assert live[b].feeds_in_flight == 0 and live[b].state == "starting"
    assert 0 <= live[a].heartbeat_age < 60

    one.stopped(a)
    taken = two.claim(b, _now(), 10, LONG)
    assert {f.id for f, _ in held} <= {f.id for f, _ in taken} and len(taken) == 5
    assert [n.id for n in two.live(60)] == [b]
    assert two.live(60)[0].feeds_in_flight == 5
    assert raw_rows(url, f"SELECT state, stopped_at IS NOT NULL FROM nodes WHERE id = {a}") == [
        ("stopped", True)
    ]


def test_the_staged_queue_in_order_set_aside_and_done(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    fetch, writer = Nodes(stores[0]), Nodes(stores[1])
    node = fetch.register("fetch")
    _subscribe(stores[0], 3)
    batches = {0: [(4, b"a0"), (1, b"a1")], 1: [(2, b"b0")], 2: [(7, b"c0")]}
    for index, (feed, token) in enumerate(fetch.claim(node, _now(), 3, LONG)):
        fetch.finish(feed.id, token, _update(f"e{index}", _now()), batches[index])
    staged = [p for i in range(3) for _, p in batches[i]]

    waiting = writer.waiting(10)
    ids = [i for i, _ in waiting]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [p for _, p in waiting] == staged
    assert writer.waiting(2) == waiting[:2]
    queue = writer.queue()
    assert (queue.batches, queue.articles, queue.set_aside) == (4, 14, 0)
    assert queue.oldest_age is not None and 0 <= queue.oldest_age < 60

    with stores[1].write():  # the first batch waited an hour
        stores[1].execute(
            "UPDATE staged SET staged_at = now() - interval '1 hour' WHERE id = ?", (ids[0],)
        )
    oldest = writer.queue().oldest_age
    assert oldest is not None and 3600 <= oldest < 3660

    writer.set_aside(ids[0], "damaged handoff payload")
    assert writer.waiting(10) == waiting[1:]
    queue = writer.queue()
    assert (queue.batches, queue.articles, queue.set_aside) == (3, 10, 1)
    assert queue.oldest_age is not None and queue.oldest_age < 60  # the set-aside one is out

    writer.done(ids[1:3])
    assert writer.waiting(10) == waiting[3:]
    assert (writer.queue().batches, writer.queue().articles) == (1, 7)
    writer.done([ids[3]])
    assert writer.waiting(10) == []
    assert writer.queue() == type(queue)(0, 0, None, 1)
    assert raw_rows(url, "SELECT id, set_aside FROM staged") == [
        (ids[0], "damaged handoff payload")
    ]


def test_disabled_feeds_and_feeds_not_yet_due_are_never_claimed(
    stores: tuple[Store, Store],
) -> None:
    nodes = Nodes(stores[0])
    node = nodes.register("fetch")
    due, disabled, later = _subscribe(stores[0], 3)
    at = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    stores[0].feeds.edit(disabled.id, FeedChange(enabled=False))
    stores[0].feeds.edit(later.id, FeedChange(next_check_at=at))
    stores[0].articles.ensure_source("folder", "/saved", "saved")

    [(feed, token)] = nodes.claim(node, _now(), 10, LONG)
    assert feed.id == due.id
    nodes.release(feed.id, token)
    assert [f.id for f, _ in nodes.claim(node, at - timedelta(seconds=1), 10, LONG)] == [due.id]
    assert [f.id for f, _ in nodes.claim(node, at, 10, LONG)] == [later.id]
    assert nodes.claim(node, at + timedelta(days=3650), 10, LONG) == []


def test_a_heartbeat_moves_only_the_leases_of_polls_still_in_flight(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    """A poll cut short by an error keeps no lease alive: the heartbeat moves the
    leases it is told are in flight, and the others run out."""
    nodes = Nodes(stores[0])
    node = nodes.register("fetch")
    _subscribe(stores[0], 3)
    held = nodes.claim(node, _now(), 3, 60)
    working = held[0][1]
    nodes.heartbeat(node, "polling", 3600, [working])
    left = dict(
        raw_rows(url, "SELECT token, extract(epoch FROM until - now()) > 600 FROM feed_leases")
    )
    assert left == {token: token == working for _, token in held}
    nodes.heartbeat(node, "idle", 3600, [])  # nothing in flight: nothing moved
    assert (
        dict(raw_rows(url, "SELECT token, until > now() + interval '10 minutes' FROM feed_leases"))
        == left
    )


def test_due_is_read_on_the_servers_clock(stores: tuple[Store, Store], url: PostgresURL) -> None:
    """`claim(now=None)`: a feed due a minute ago by the server's clock is claimed, one
    due in a minute is not, whatever the node's own clock says."""
    nodes = Nodes(stores[0])
    node = nodes.register("fetch")
    early, late = _subscribe(stores[0], 2)
    with stores[0].write():
        for feed, shift in ((early, "- interval '1 minute'"), (late, "+ interval '1 minute'")):
            stores[0].execute(
                "UPDATE sources SET next_check_at = to_char((now() "
                f"{shift}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') WHERE id = ?",
                (feed.id,),
            )
    assert [f.id for f, _ in nodes.claim(node, None, 10, LONG)] == [early.id]


def test_a_refused_entry_makes_its_feed_fetch_everything_again(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    nodes = Nodes(stores[0])
    node = nodes.register("fetch")
    [feed] = _subscribe(stores[0], 1)
    [(claimed, token)] = nodes.claim(node, _now(), 1, LONG)
    nodes.finish(claimed.id, token, _update("v1", _now()), [(1, b"x")])
    assert raw_rows(url, f"SELECT etag IS NOT NULL, body_hash FROM sources WHERE id = {feed.id}")[
        0
    ][0]
    nodes.refused(feed.id, "1 of 1 entries refused by the database, last: too big")
    assert raw_rows(
        url, f"SELECT etag, last_modified, body_hash, last_error FROM sources WHERE id = {feed.id}"
    ) == [(None, None, None, "1 of 1 entries refused by the database, last: too big")]
    assert [(i, p) for i, p in Nodes(stores[1]).waiting(5)] == [
        (i, b"x") for i, _, _ in Nodes(stores[1]).waiting_from(5)
    ]


def test_the_writer_stores_readable_batches_and_sets_aside_a_damaged_one_between(
    stores: tuple[Store, Store], url: PostgresURL
) -> None:
    """The dedup node reads its batches ahead in a thread (roles.py `_store_some`): a
    damaged payload staged between two good ones is set aside with its reason, and
    the good ones' five seed articles are stored, each once."""
    config = replace(Config(), database=url)
    docs = [d for d in read_all([SEEDS], config) if isinstance(d, RawDocument)]
    first, second = _ready(docs[:2], config), _ready(docs[2:], config)
    fetch = Nodes(stores[0])
    node_id = fetch.register("fetch")
    _subscribe(stores[0], 3)
    payloads = [(2, encode(*first)), (1, b"AGH1 not what encode writes"), (3, encode(*second))]
    for index, (feed, token) in enumerate(fetch.claim(node_id, _now(), 3, LONG)):
        fetch.finish(feed.id, token, _update(f"e{index}", _now()), [payloads[index]])
    damaged = [i for i, p in Nodes(stores[1]).waiting(10) if p == payloads[1][1]]

    writer = DedupNode(config)
    lock = PostgresRoleLock(url, "dedup")
    try:
        assert lock.try_acquire()
        assert writer._store_some(Ingester(writer.store, config), lock)
    finally:
        lock.release()
        writer.store.close()
    stored = raw_rows(url, "SELECT identity FROM articles ORDER BY identity")
    assert sorted(d.identity for d in docs) == [r[0] for r in stored]
    (row,) = raw_rows(url, "SELECT id, set_aside FROM staged")
    assert [row[0]] == damaged and "damaged handoff payload" in row[1]
