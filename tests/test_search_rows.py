"""Full-text rows written once per transaction (storage/search.py), against a brute force.

The oracle: a word matches an article exactly when it is one of the words of
its title or body (the words here are lower-case ASCII, which FTS5's default
tokenizer keeps as they are). A search row missing, left over from an old
text, or taken out with the wrong values shows up as a difference.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from aggregator.config import Config
from aggregator.model import RawDocument
from aggregator.storage.articles import ArticleRecord, StoredArticle
from aggregator.storage.store import Store
from tests.conftest import OpenStore, ingest_docs

pytestmark = pytest.mark.sqlite_only

VOCABULARY = [f"w{n:03d}" for n in range(300)]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words))


class _Done(Exception):
    pass


def _assert_search_matches_brute_force(store: Store) -> None:
    """Every word finds exactly the articles that hold it, ranked (bm25: document counts
    and lengths) as by an index FTS5 rebuilds from the articles themselves."""
    held: dict[int, set[str]] = {}
    for article_id, title, body in store.execute("SELECT id, title, body FROM articles"):
        held[int(article_id)] = set(re.findall(r"\w+", f"{title} {body}"))
    ranked = "SELECT rowid, round(bm25({0}), 6) FROM {0} WHERE {0} MATCH ? ORDER BY rowid"
    with pytest.raises(_Done), store.write():  # the oracle table leaves with the rollback
        store.execute("CREATE VIRTUAL TABLE oracle USING FTS5 (title, body, content=[articles])")
        store.execute("INSERT INTO oracle (oracle) VALUES ('rebuild')")
        for word in VOCABULARY:
            found = store.execute(ranked.format("articles_fts"), (word,)).fetchall()
            assert {r[0] for r in found} == {a for a, words in held.items() if word in words}
            assert found == store.execute(ranked.format("oracle"), (word,)).fetchall(), word
        raise _Done


def _record(rng: random.Random, source_id: int, identity: str) -> ArticleRecord:
    return ArticleRecord(
        source_id=source_id,
        identity=identity,
        location=f"/news/{identity}",
        title=_text(rng, 4),
        paragraphs=(_text(rng, 30), _text(rng, 30)),
        published_at="2026-12-01T00:00:00Z",
        content_hash=f"{rng.random()}",
    )


def _save_some(
    store: Store,
    rng: random.Random,
    source: int,
    stored: dict[str, StoredArticle],
    tag: str,
) -> tuple[dict[str, StoredArticle], int]:
    """Save 1-6 articles: new ones, new versions of stored ones and of ones saved here
    (the case the search rows must get right); (what was saved, how many of the last)."""
    changed: dict[str, StoredArticle] = {}
    fresh_updated = 0
    for n in range(rng.randint(1, 6)):
        fresh = sorted(set(changed) - set(stored))
        pick = rng.random()
        if fresh and pick < 0.3:
            identity = rng.choice(fresh)
            fresh_updated += 1
        elif stored and pick < 0.5:
            identity = rng.choice(sorted(stored))
        else:
            identity = f"{tag}-{n}"
        existing = changed.get(identity, stored.get(identity))
        saved = store.articles.save_article(_record(rng, source, identity), existing)
        version = 1 if existing is None else existing.version + 1
        changed[identity] = StoredArticle(saved.id, version, "")
    return changed, fresh_updated


def test_inserts_and_updates_in_any_mix_of_transactions_keep_search_exact(
    open_store: OpenStore,
) -> None:
    """Random transactions of new articles and new versions (of articles stored earlier or
    in the same transaction), some rolled back, some outside any transaction: after
    each, search answers exactly what the articles say."""
    rng = random.Random(15)
    store = open_store()
    source = store.articles.ensure_source("folder", "/news", "news")
    stored: dict[str, StoredArticle] = {}
    fresh_updated = 0
    for round_ in range(40):
        roll_back = rng.random() < 0.2
        if not roll_back and rng.random() < 0.15:  # autocommit, one statement at a time
            changed, fresh = _save_some(store, rng, source, stored, f"a{round_}")
        else:
            try:
                with store.write():
                    changed, fresh = _save_some(store, rng, source, stored, f"a{round_}")
                    if roll_back:
                        raise RuntimeError("roll back")
            except RuntimeError:
                changed, fresh = {}, 0
        stored.update(changed)
        fresh_updated += fresh
        _assert_search_matches_brute_force(store)
    assert len(stored) > 40 and fresh_updated > 5


def test_a_group_of_feed_entries_is_searchable_once_committed(
    config: Config, open_store: OpenStore
) -> None:
    """Through the pipeline's group commit (64 documents a transaction), one of them a
    second version of an entry of the same batch: every article is found by its words,
    the replaced text no longer."""
    rng = random.Random(9)
    docs = [
        RawDocument(
            source_kind="folder",
            source_location="/news",
            source_name="news",
            identity=f"{n}.txt",
            location=f"/news/{n}.txt",
            media_type="text/plain",
            content=(_text(rng, 40) + "\n\n" + _text(rng, 40)).encode(),
            modified_at=datetime(2026, 12, 1, tzinfo=UTC),
        )
        for n in range(150)
    ]
    docs.insert(90, replace(docs[70], content=b"w299 w298 w297 zzfresh"))
    outcomes = ingest_docs(config, docs)
    assert [o.status for o in outcomes].count("updated") == 1
    store = open_store()
    _assert_search_matches_brute_force(store)
    assert store.execute(
        "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'zzfresh'"
    ).fetchone() == (1,)
