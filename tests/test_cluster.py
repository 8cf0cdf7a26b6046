"""Story clusters: joining, merging with stable ids, the time window, boilerplate."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.cli.reports import list_clusters, resolve_cluster
from aggregator.config import Config
from aggregator.dedup.cluster import Linking, components, link_plan, rebuild_plan, retire_plan
from aggregator.model import RawDocument
from aggregator.storage.clusters import ClusterLinks, LiveCluster
from aggregator.storage.plans import ClusterMerge, ClusterPlan, Membership, NewCluster, Retirement
from aggregator.storage.store import Store
from tests.conftest import OpenStore, ingest_docs, text_doc

pytestmark = pytest.mark.both_stores

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


# -- the decisions alone: plans from memberships and links, no store ----------------------

NOW = "2026-11-20T12:00:00Z"


def test_an_article_without_partners_gets_an_empty_plan_and_keeps_its_story() -> None:
    assert link_plan(5, [5], {5: 3}, "earliest", NOW) == Linking(ClusterPlan(NOW), 3)
    assert link_plan(5, [], {}, "earliest", NOW) == Linking(ClusterPlan(NOW), None)


def test_partners_in_no_story_open_a_new_one() -> None:
    linking = link_plan(5, [2, 1, 2], {}, "longest", NOW)
    new = NewCluster(0)
    assert linking == Linking(
        ClusterPlan(
            NOW, "longest", created=1, joins=(Membership(new, (5, 1, 2)),), refreshed=(new,)
        ),
        new,
    )


def test_partners_in_several_stories_merge_them_into_the_oldest() -> None:
    linking = link_plan(5, [1, 2, 3], {1: 8, 2: 4, 3: 8, 7: 2}, "earliest", NOW)
    assert linking.cluster == 4
    assert linking.plan == ClusterPlan(
        NOW,
        merges=(ClusterMerge(into=4, merged=8),),
        joins=(Membership(4, (5, 1, 2, 3)),),
        refreshed=(4,),
    )


def test_a_story_still_connected_is_left_alone() -> None:
    whole = ClusterLinks(4, 1, (1, 2, 3), ((1, 2), (3, 2)))
    assert rebuild_plan([whole], "earliest", NOW) == ClusterPlan(NOW)


def test_a_split_story_keeps_its_id_for_the_part_with_its_canonical_article() -> None:
    # 1-2 and 3-4-5 apart; the canonical article 2 is in the smaller part.
    split = ClusterLinks(4, 2, (1, 2, 3, 4, 5), ((1, 2), (3, 4), (4, 5)))
    new = NewCluster(0)
    assert rebuild_plan([split], "earliest", NOW) == ClusterPlan(
        NOW,
        emptied=(4,),
        created=1,
        joins=(Membership(4, (1, 2)), Membership(new, (3, 4, 5))),
        refreshed=(4, new, 4),
    )


def test_a_story_whose_canonical_article_is_left_alone_gives_its_id_up() -> None:
    # The canonical article 1 has no link left: it leaves, its id keeps no members, and
    # the rest is a new story; 9's story, of one article, is emptied.
    lone = ClusterLinks(4, 1, (1, 2, 3), ((2, 3),))
    single = ClusterLinks(6, 9, (9,), ())
    new = NewCluster(0)
    assert rebuild_plan([lone, single], "earliest", NOW) == ClusterPlan(
        NOW,
        emptied=(4, 6),
        created=1,
        joins=(Membership(new, (2, 3)),),
        refreshed=(new, 4, 6),
    )


def test_after_a_rematch_old_stories_point_at_the_story_of_their_canonical_article() -> None:
    old = [LiveCluster(1, 10), LiveCluster(2, 20), LiveCluster(3, None)]
    assert retire_plan(old, {10: 7}, NOW) == ClusterPlan(
        NOW,
        retired=(Retirement(1, 7), Retirement(2, None), Retirement(3, None)),
    )


def test_components_join_through_nodes_outside_the_set() -> None:
    assert components([1, 2, 3, 4], [(1, 9), (9, 3), (2, 2)]) == [[1, 3], [2], [4]]
