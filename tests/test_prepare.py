"""Preparing batches in worker processes (ingest/prepare.py) stores exactly what
preparing them in the writer's thread stores, and a broken pool loses nothing."""

from __future__ import annotations

import logging
import os
import random
import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config
from aggregator.ingest import prepare
from aggregator.ingest.feeds import add_feed, list_feeds
from aggregator.ingest.pipeline import Ingester
from aggregator.ingest.poll import Poller
from aggregator.ingest.prepare import Preparer, prepare_batch
from aggregator.model import RawDocument
from aggregator.storage.store import Store
from tests.conftest import SEEDS, file_doc, raw_rows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TABLES = {
    "articles": "SELECT identity, title, body, content_hash FROM articles ORDER BY id",
    "units": "SELECT article_id, paragraph_id, position, char_start, char_end, word_count "
    "FROM units ORDER BY id",
    "signatures": "SELECT unit_id, minhash, band_keys FROM unit_signatures ORDER BY unit_id",
    "carriers": "SELECT passage_id, article_id, paragraph_id, char_start, char_end, "
    "first_unit_id, last_unit_id, edge, matched_id, similarity, linked, reason "
    "FROM passage_carriers ORDER BY id",
    "clusters": "SELECT cluster_id, article_id FROM cluster_members ORDER BY article_id",
}


def _corpus(count: int) -> list[RawDocument]:
    """Seed texts carried by many articles, each with a paragraph of its own, and a few
    files that give no article (binary, empty) among them."""
    seeds = [p.read_bytes() for p in sorted(SEEDS.glob("*.txt"))]
    docs = []
    for i in range(count):
        if i % 37 == 5:
            content = b"\x00\x01binary"
        elif i % 41 == 7:
            content = b"   \n"
        else:
            own = f"Reported by desk {i}: the figures for week {i} arrive on day {i % 7}.".encode()
            content = seeds[i % len(seeds)] + b"\n\n" + own
        docs.append(file_doc(content, location=f"/news/{i:04}.txt"))
    return docs


def _ingest(config: Config, docs: list[RawDocument], workers: int) -> list[tuple[str, str]]:
    with Store(config.database, config.dedup.minhash) as store:
        ingester = Ingester(store, config, batch_size=16, workers=workers)
        try:
            outcomes = [(o.location, o.status) for o in ingester.ingest(docs)]
            assert (ingester.preparer._pool is not None) == (workers > 0 and len(docs) > 16)
            return outcomes
        finally:
            ingester.close()


@pytest.mark.sqlite_only
def test_a_pool_stores_what_the_writer_thread_stores(config: Config, tmp_path: Path) -> None:
    docs = _corpus(120)  # 8 batches of 16: seven of them prepared ahead, in the pool
    inline = replace(config, database=tmp_path / "inline.db")
    pooled = replace(config, database=tmp_path / "pooled.db")
    outcomes = _ingest(inline, docs, workers=0)
    assert _ingest(pooled, docs, workers=2) == outcomes  # same outcomes, same order
    assert sorted(o[0] for o in outcomes) == [d.location for d in docs]
    assert {s for _, s in outcomes} == {"new", "failed"}
    for name, sql in TABLES.items():
        assert raw_rows(pooled.database, sql) == raw_rows(inline.database, sql), name
    assert len(raw_rows(pooled.database, TABLES["carriers"])) > 100
    # Again: every document is unchanged, found before any preparing.
    assert {s for _, s in _ingest(pooled, docs, workers=2) if s != "failed"} == {"unchanged"}


def test_a_broken_pool_prepares_the_batch_in_the_writer_thread(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    docs = _corpus(200)
    preparer = Preparer(config, workers=1)
    try:
        future = preparer.submit(docs)
        pool = preparer._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # as the kernel's OOM killer would
            os.kill(process.pid, signal.SIGKILL)
        with caplog.at_level(logging.WARNING):
            got = preparer.result(docs, future)
    finally:
        preparer.close()
    assert "preparing 200 documents in a worker failed" in caplog.text
    want = prepare_batch(docs, config)
    assert [type(i) for i in got.items] == [type(i) for i in want.items]
    assert np.array_equal(got.signatures.minhash, want.signatures.minhash)
    assert np.array_equal(got.signatures.band_keys, want.signatures.band_keys)


def _feed(number: int, seeds: list[str]) -> bytes:
    """A feed whose entries carry a seed paragraph (shared across feeds) and one of
    their own (seeded random words)."""
    vocabulary = sorted({w for s in seeds for w in s.split() if w.isalpha()})

    def own(i: int) -> str:
        return " ".join(random.Random(number * 100 + i).sample(vocabulary, 16)) + "."

    items = "".join(
        f"<item><guid>f{number}-{i}</guid><title>Feed {number} item {i}</title>"
        f"<description>&lt;p&gt;{seeds[(number * 3 + i) % len(seeds)]}&lt;/p&gt;"
        f"&lt;p&gt;{own(i)}&lt;/p&gt;</description>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        for i in range(8)
    )
    return f'<rss version="2.0"><channel><title>F{number}</title>{items}</channel></rss>'.encode()


@pytest.mark.sqlite_only
def test_a_poll_of_many_feeds_prepared_in_the_pool_stores_what_one_by_one_stores(
    httpserver: HTTPServer, feeds_config: Config, tmp_path: Path
) -> None:
    """Feeds polled together have their entries prepared in the ingester's pool while
    other feeds are stored; the database ends as when every feed is prepared inline."""
    seeds = [
        line
        for path in sorted(SEEDS.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if len(line.split()) > 25
    ]
    for number in range(12):
        httpserver.expect_request(f"/f{number}").respond_with_data(
            _feed(number, seeds), content_type="application/rss+xml"
        )
    databases = {}
    for workers in (0, 2):
        config = replace(feeds_config, database=tmp_path / f"w{workers}.db")
        with Store(config.database, config.dedup.minhash) as store:
            for number in range(12):
                add_feed(store, httpserver.url_for(f"/f{number}"), f"F{number}", "never")
            ingester = Ingester(store, config, workers=workers)
            with Poller(store, config, ingester) as poller:
                outcomes = list(poller.poll(list_feeds(store), NOW))
                assert (ingester.preparer._pool is not None) == (workers > 0)
        assert sorted((o.url, o.status, o.entries, o.new) for o in outcomes) == sorted(
            (httpserver.url_for(f"/f{n}"), "ingested", 8, 8) for n in range(12)
        )
        databases[workers] = config.database
    # Feeds finish in any order, so ids and which copy came first differ between runs:
    # compare what does not depend on the order.
    by_identity = {
        "articles": "SELECT identity, title, body FROM articles",
        "units": "SELECT a.identity, u.position, u.char_start, u.char_end, u.word_count, "
        "s.minhash, s.band_keys FROM units u JOIN articles a ON a.id = u.article_id "
        "JOIN unit_signatures s ON s.unit_id = u.id",
        "stories": "SELECT m.cluster_id, a.identity FROM cluster_members m "
        "JOIN articles a ON a.id = m.article_id",
    }
    for name, sql in by_identity.items():
        inline, pooled = (raw_rows(databases[w], sql) for w in (0, 2))
        if name == "stories":
            inline, pooled = (_partition(rows) for rows in (inline, pooled))
        else:
            inline, pooled = sorted(inline), sorted(pooled)
        assert len(inline) > 1 and pooled == inline, name


def _partition(rows: list[tuple[int, str]]) -> set[frozenset[str]]:
    stories: dict[int, set[str]] = {}
    for story, identity in rows:
        stories.setdefault(story, set()).add(identity)
    return {frozenset(members) for members in stories.values()}


def test_a_pool_is_replaced_after_its_share_of_batches(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers do not live for ever (their token caches would grow): after
    BATCHES_PER_POOL batches the next one goes to a new pool, and every batch is
    still prepared exactly as in the writer's thread."""
    monkeypatch.setattr(prepare, "BATCHES_PER_POOL", 2)
    docs = _corpus(30)
    preparer = Preparer(config, workers=1)
    try:
        pools, results = [], []
        for start in range(0, 30, 6):
            future = preparer.submit(docs[start : start + 6])
            pools.append(preparer._pool)
            results.append(preparer.result(docs[start : start + 6], future))
    finally:
        preparer.close()
    assert [id(p) for p in pools[::2]] == [id(p) for p in pools[1::2]] + [id(pools[-1])]
    assert len({id(p) for p in pools}) == 3
    for start, got in zip(range(0, 30, 6), results, strict=True):
        want = prepare_batch(docs[start : start + 6], config)
        assert np.array_equal(got.signatures.minhash, want.signatures.minhash)
