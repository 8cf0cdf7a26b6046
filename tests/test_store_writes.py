"""How the store writes, on both engines: multi-row statements, the per-transaction
source cache, and PostgreSQL's pipelined transactions (an error in a statement
whose result nobody reads still undoes the whole transaction).

The oracle is each engine's own client (`raw_rows`) and a plain dict of what was
written, never the store reading itself back.
"""

from __future__ import annotations

import random

import pytest

from aggregator.errors import RefusedError, StoreError
from aggregator.storage.engine import MAX_VARIABLES
from aggregator.storage.store import Store
from tests.conftest import raw_rows

pytestmark = pytest.mark.both_stores


def test_a_multi_row_upsert_larger_than_one_statement_writes_every_row(store: Store) -> None:
    """More rows than one statement may bind (two values a row): split, and all land;
    a second upsert over part of them changes exactly those."""
    rng = random.Random(7)
    count = MAX_VARIABLES // 2 + 5_000  # two statements' worth
    expected = {term: rng.randrange(1, 1_000) for term in rng.sample(range(10**12), count)}
    conflict = "ON CONFLICT (term) DO UPDATE SET documents = excluded.documents"
    with store.write():
        store.insert_rows(
            "event_terms (term, documents)", list(expected.items()), conflict=conflict
        )
    changed = {term: n + 1 for term, n in list(expected.items())[::3]}
    with store.write():
        store.insert_rows("event_terms (term, documents)", list(changed.items()), conflict=conflict)
    expected.update(changed)
    assert dict(raw_rows(store.database, "SELECT term, documents FROM event_terms")) == expected


def test_insert_rows_returns_one_row_per_inserted_row(store: Store) -> None:
    locations = [f"https://example.org/feed/{n}" for n in range(MAX_VARIABLES // 4 + 10)]
    rows = [
        ("feed", location, f"feed {n}", "2026-12-03T00:00:00Z")
        for n, location in enumerate(locations)
    ]
    with store.write():
        returned = store.insert_rows(
            "sources (kind, location, name, created_at)", rows, returning="id, location"
        )
    stored = dict(raw_rows(store.database, "SELECT location, id FROM sources"))
    assert sorted((location, row_id) for row_id, location in returned) == sorted(stored.items())
    assert len(stored) == len(locations)


def test_a_source_made_in_a_rolled_back_transaction_is_made_again(store: Store) -> None:
    """The transaction's source cache does not outlive it: after a rollback the
    source's row is gone, and the next transaction must insert it again."""
    where = "https://example.org/rolled-back.xml"
    with pytest.raises(RuntimeError), store.write():
        store.articles.ensure_source("feed", where, "rolled back")
        assert store.articles.ensure_source("feed", where, "rolled back") > 0
        raise RuntimeError("the article after it failed")
    assert raw_rows(store.database, "SELECT id FROM sources") == []
    with store.write():
        source_id = store.articles.ensure_source("feed", where, "rolled back")
    assert raw_rows(store.database, "SELECT id, location FROM sources") == [(source_id, where)]


def test_an_error_in_a_statement_nobody_reads_undoes_the_whole_transaction(
    store: Store,
) -> None:
    """On PostgreSQL the failing INSERT's answer is not waited for (pipeline mode); its
    error must still leave the write as a RefusedError, with nothing of it kept."""
    created = "2026-12-03T00:00:00Z"
    with pytest.raises(RefusedError), store.write():
        store.execute(
            "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?)",
            ("feed", "https://example.org/a.xml", "a", created),
        )
        store.execute(  # the same location again: a unique constraint refuses it
            "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?)",
            ("feed", "https://example.org/a.xml", "a again", created),
        )
        store.execute(
            "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?)",
            ("feed", "https://example.org/b.xml", "b", created),
        )
    assert raw_rows(store.database, "SELECT location FROM sources") == []
    with store.write():  # the connection is usable, and the next write is whole
        store.execute(
            "INSERT INTO sources (kind, location, name, created_at) VALUES (?, ?, ?, ?)",
            ("feed", "https://example.org/b.xml", "b", created),
        )
    assert raw_rows(store.database, "SELECT location FROM sources") == [
        ("https://example.org/b.xml",)
    ]


def test_a_read_inside_a_pipelined_write_sees_the_writes_before_it(store: Store) -> None:
    """Statements sent without waiting still run in order: a SELECT after them reads
    every row they wrote, in the same transaction."""
    with store.write():
        for n in range(50):
            store.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", (f"test.pipeline.{n}", str(n))
            )
        seen = store.execute(
            "SELECT count(*) FROM meta WHERE key LIKE 'test.pipeline.%'"
        ).fetchone()[0]
    assert seen == 50
    with pytest.raises(StoreError), store.write():
        store.execute("INSERT INTO meta (key, value) VALUES ('test.x', '1')")
        store.execute("SELECT no_such_column FROM meta").fetchall()
    assert raw_rows(store.database, "SELECT value FROM meta WHERE key = 'test.x'") == []


def _article_row(store: Store, source_id: int, identity: str, content_hash: str) -> None:
    store.execute(
        "INSERT INTO articles (source_id, identity, first_seen_at, version, location, title, "
        "body, published_at, updated_at, content_hash) VALUES (?, ?, ?, 1, ?, ?, '', ?, ?, ?)",
        (
            source_id,
            identity,
            "2026-12-03T00:00:00Z",
            identity,
            identity,
            "2026-12-03T00:00:00Z",
            "2026-12-03T00:00:00Z",
            content_hash,
        ),
    )


def test_find_articles_answers_as_find_article_for_each_pair(store: Store) -> None:
    """The batch look-up against the one-entry look-up (the oracle): two sources,
    more identities than one IN list holds, identities asked twice, and misses."""
    rng = random.Random(3)
    with store.write():
        feeds = [
            store.articles.ensure_source("feed", f"https://example.org/{n}.xml", f"feed {n}")
            for n in range(2)
        ]
        for n in range(1_200):
            _article_row(store, feeds[n % 2], f"entry-{n}", f"hash-{n}")
    keys = [
        (f"https://example.org/{rng.randrange(3)}.xml", f"entry-{rng.randrange(1_500)}")
        for _ in range(1_500)
    ]
    found = store.articles.find_articles(keys)
    oracle = {key: store.articles.find_article(*key) for key in keys}
    assert found == {key: row for key, row in oracle.items() if row is not None}
    assert 300 < len(found) < len(set(keys))  # hits and misses both tested
