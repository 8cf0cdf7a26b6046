"""Ids the writer gives its new rows itself (storage/ids.py), on both engines.

What the rest of the store counts on: an id is given once, ever (two writers,
rolled-back transactions, a deleted newest row); ids follow commit order, which
the persistent index's catch-up reads (`units_since`); a transaction that needs
more than it said still gets fresh ascending ids. The oracle is each engine's
own client (`raw_rows`) and the order the test committed in.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from aggregator.storage.store import Store
from tests.conftest import OpenStore, raw_rows

pytestmark = pytest.mark.both_stores

NOW = "2026-12-03T00:00:00Z"


def _add_clusters(store: Store, count: int) -> list[int]:
    """`count` new clusters with drawn ids, in the caller's transaction."""
    ids = store.ids.take("clusters", count)
    store.insert_rows("clusters (id, created_at, updated_at)", [(i, NOW, NOW) for i in ids])
    return ids


def test_two_writers_never_share_an_id_and_ids_follow_commit_order(
    open_store: OpenStore,
) -> None:
    """Two stores on one database take turns, each asking for more than it uses and
    sometimes rolling back: the committed ids are all distinct, and every
    transaction's ids are above those of every transaction committed before it."""
    rng = random.Random(3)
    first = open_store()
    second = open_store()
    committed: list[list[int]] = []
    for turn in range(30):
        store = first if turn % 2 == 0 else second
        roll_back = rng.random() < 0.25
        try:
            with store.write():
                store.ids.expect({"clusters": rng.randrange(1, 20)})
                ids = [
                    i
                    for _ in range(rng.randrange(1, 4))
                    for i in _add_clusters(store, rng.randrange(1, 30))
                ]
                if roll_back:
                    raise RuntimeError("roll back")
        except RuntimeError:
            continue
        committed.append(ids)
    every = [i for ids in committed for i in ids]
    assert len(every) == len(set(every))
    for earlier, later in pairwise(committed):
        assert max(earlier) < min(later)
    stored = sorted(int(r[0]) for r in raw_rows(first.database, "SELECT id FROM clusters"))
    assert stored == sorted(every)


def test_the_newest_row_deleted_its_id_is_not_given_again(store: Store) -> None:
    """SQLite's AUTOINCREMENT promise (units, clusters) kept with ids given by the
    writer: the largest id, deleted, is still never given to a new row."""
    with store.write():
        ids = _add_clusters(store, 5)
    with store.write():
        store.execute("DELETE FROM clusters WHERE id = ?", (ids[-1],))
    with store.write():
        (again,) = _add_clusters(store, 1)
    assert again > ids[-1]


def test_a_transaction_that_needs_more_than_it_said_gets_fresh_ascending_ids(
    store: Store,
) -> None:
    """`expect` for a few, then takes past it, in several sizes: each take ascends,
    none repeats, and all of them insert."""
    with store.write():
        store.ids.expect({"clusters": 3})
        takes = [_add_clusters(store, n) for n in (2, 1, 70, 5, 200)]
    for ids in takes:
        assert ids == sorted(ids)
    every = [i for ids in takes for i in ids]
    assert len(set(every)) == len(every) == 278
    stored = {int(r[0]) for r in raw_rows(store.database, "SELECT id FROM clusters")}
    assert stored == set(every)


def test_ids_taken_outside_a_transaction_insert_at_once(store: Store) -> None:
    """A statement at a time (a tool, a test): ids are drawn as asked, none kept, and a
    later transaction's ids are above them."""
    outside = [_add_clusters(store, 2) for _ in range(3)]
    with store.write():
        inside = _add_clusters(store, 4)
    every = [i for ids in outside for i in ids] + inside
    assert len(set(every)) == len(every)
    assert min(inside) > max(i for ids in outside for i in ids)
