"""Story clusters: joining, merging with stable ids, the time window, boilerplate."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from aggregator.cli.reports import list_clusters, resolve_cluster
from aggregator.config import Config
from aggregator.model import RawDocument
from aggregator.storage.store import Store
from tests.conftest import OpenStore, ingest_docs, text_doc

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
_VOCAB = [f"word{i}" for i in range(3000)]


def _text(seed: int, sentences: int = 2) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.sample(_VOCAB, 18)).capitalize() + "." for _ in range(sentences))


def _doc(source: str, name: str, paragraphs: list[str], when: datetime = T0) -> RawDocument:
    return text_doc(f"/t/{source}", name, "Headline " + name, paragraphs, when)


def _members(config: Config) -> dict[int, set[str]]:
    with Store(config.database, config.dedup.minhash) as store:
        return {
            c["id"]: {a["location"].rsplit("/", 1)[1][:-4] for a in c["articles"]}
            for c in list_clusters(store)
        }


def test_an_article_linking_two_stories_merges_them_into_the_older_id(
    config: Config, open_store: OpenStore
) -> None:
    p1, p2 = _text(1), _text(2)
    ingest_docs(
        config,
        [
            _doc("a", "a1", [p1, _text(10)]),
            _doc("b", "b1", [p1, _text(11)]),
            _doc("a", "a2", [p2, _text(12)]),
            _doc("b", "b2", [p2, _text(13)]),
        ],
    )
    before = _members(config)
    assert sorted(map(sorted, before.values())) == [["a1", "b1"], ["a2", "b2"]]
    first, second = sorted(before)
    [outcome] = ingest_docs(config, [_doc("c", "c1", [p1, p2])])
    after = _members(config)
    assert outcome.cluster_id == first
    assert after == {first: {"a1", "b1", "a2", "b2", "c1"}}
    store = open_store()
    assert resolve_cluster(store, second) == first


def test_canonical_is_the_earliest_article(config: Config, open_store: OpenStore) -> None:
    shared = _text(3)
    ingest_docs(
        config,
        [
            _doc("a", "late", [shared, _text(20)], T0 + timedelta(hours=5)),
            _doc("b", "early", [shared, _text(21)], T0),
        ],
    )
    store = open_store()
    [cluster] = list_clusters(store)
    canonical = [a["location"] for a in cluster["articles"] if a["canonical"]]
    assert canonical == ["/t/b/early.txt"]


def test_matches_outside_the_window_are_stored_but_do_not_link(
    config: Config, open_store: OpenStore
) -> None:
    shared = _text(4)
    outcomes = ingest_docs(
        config,
        [
            _doc("a", "old", [shared, _text(30)], T0),
            _doc("b", "new", [shared, _text(31)], T0 + timedelta(days=10)),
        ],
    )
    assert outcomes[1].passages == 1
    assert outcomes[1].cluster_id is None
    assert _members(config) == {}
    store = open_store()
    pairs = "SELECT linked, reason FROM passage_carriers WHERE matched_id IS NOT NULL"
    assert store.execute(pairs).fetchall() == [(0, "window")]


def test_boilerplate_footer_never_links_a_source_s_articles(
    config: Config, open_store: OpenStore
) -> None:
    footer = (
        "Reporting by the wire desk staff in the capital city newsroom, editing by the night "
        "shift editors; contact the desk for corrections and further information."
    )
    docs = [_doc("paper", f"p{i}", [_text(100 + i), _text(200 + i), footer]) for i in range(5)]
    ingest_docs(config, docs)
    assert _members(config) == {}, "articles sharing only a footer are no story"
    store = open_store()
    pairs = "SELECT reason FROM passage_carriers WHERE matched_id IS NOT NULL"
    assert {row[0] for row in store.execute(pairs)} == {"boilerplate"}
    # A real shared passage between two of them still links them.
    story = _text(5)
    ingest_docs(
        config,
        [
            # In the body: text in the first or last paragraph of both is the frame.
            _doc("paper", "s1", [_text(300), story, _text(302), footer]),
            _doc("paper", "s2", [_text(301), story, _text(303), footer]),
        ],
    )
    assert list(_members(config).values()) == [{"s1", "s2"}]
