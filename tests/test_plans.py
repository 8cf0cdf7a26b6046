"""Plans: storage applies what the deciders decided, and nothing else.

An empty plan changes no row; rows a plan adds are named before they have ids
and get them in the order named; the times stored are the decider's clock.
(That applying the plans of ingest and rematch stores what the release before
them stored is tests/test_decide.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aggregator.config import Config, Database
from aggregator.ingest.rematch import rematch
from aggregator.model import format_time
from aggregator.storage.plans import (
    Carrier,
    ClusterPlan,
    Membership,
    NewCarrier,
    NewCluster,
    NewPassage,
    PassagePlan,
    Placement,
    Withdrawal,
)
from tests.conftest import SEEDS, THIRD_OUTLET, OpenStore, ingest, raw_rows

pytestmark = pytest.mark.both_stores

TABLES = ("passages", "passage_carriers", "clusters", "cluster_members")
NOW = "2026-12-01T09:00:00Z"


def _everything(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {t: raw_rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}


def test_empty_plans_change_nothing(config: Config, open_store: OpenStore) -> None:
    ingest(config, SEEDS, THIRD_OUTLET)
    before = _everything(config.database)
    assert before["passage_carriers"] and before["cluster_members"]
    store = open_store()
    with store.write():
        assert store.passages.apply(PassagePlan(NOW)).passages == ()
        store.passages.withdraw(Withdrawal())
        assert store.clusters.apply(ClusterPlan(NOW)).created == ()
    assert _everything(config.database) == before


def test_rows_a_plan_adds_get_their_ids_in_the_order_it_names_them(
    config: Config, open_store: OpenStore
) -> None:
    ingest(config, SEEDS, THIRD_OUTLET)
    store = open_store()
    (first, first_paragraph), (second, second_paragraph) = store.execute(
        "SELECT a.id, min(p.id) FROM articles a JOIN paragraphs p ON p.article_id = a.id "
        "WHERE a.id NOT IN (SELECT article_id FROM cluster_members) "
        "GROUP BY a.id ORDER BY a.id LIMIT 2"
    ).fetchall()
    member, story = store.execute("SELECT article_id, cluster_id FROM cluster_members").fetchone()
    passage = NewPassage(0)
    origin = Carrier(passage, first, first_paragraph, 0, 10, 1, 1, False, None, None, "origin")
    copy = Carrier(
        passage, second, second_paragraph, 0, 10, 2, 2, False, NewCarrier(0), 0.9, "linked"
    )
    plan = PassagePlan(NOW, (Placement(passage, True, (), (), (origin, copy), NOW, NOW),))
    new = NewCluster(0), NewCluster(1)
    clusters = ClusterPlan(
        NOW,
        created=2,
        joins=(Membership(new[1], (first, second, member)),),
        refreshed=new,
    )
    with store.write():
        applied = store.passages.apply(plan)
        made = store.clusters.apply(clusters)
    [passage_id] = applied.passages
    origin_id, copy_id = applied.carriers
    assert copy_id == origin_id + 1
    assert store.execute(
        "SELECT passage_id, matched_id, reason, linked, found_at FROM passage_carriers "
        "WHERE id = ?",
        (copy_id,),
    ).fetchone() == (passage_id, origin_id, "linked", 1, NOW)
    assert store.execute(
        "SELECT carriers, first_published_at, created_at FROM passages WHERE id = ?",
        (passage_id,),
    ).fetchone() == (2, NOW, NOW)
    empty, joined = made.created
    assert joined == empty + 1 and made.resolve(new[1]) == joined and made.resolve(7) == 7
    assert store.clusters.memberships([first, second, member]) == {
        first: joined,
        second: joined,
        member: story,  # one already in a story stays there
    }
    assert store.execute(
        "SELECT canonical_article_id FROM clusters WHERE id = ?", (empty,)
    ).fetchone() == (None,)


def test_the_clock_stamps_what_a_rematch_stores(config: Config, open_store: OpenStore) -> None:
    ingest(config, SEEDS, THIRD_OUTLET)
    moment = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    store = open_store()
    rematch(store, config, now=moment)
    stamp = format_time(moment)
    stamps = {
        "found_at": "SELECT DISTINCT found_at FROM passage_carriers",
        "created_at": "SELECT DISTINCT created_at FROM passages",
        "joined_at": "SELECT DISTINCT joined_at FROM cluster_members",
        # The new story and the old one, which now points at it.
        "updated_at": "SELECT DISTINCT updated_at FROM clusters",
    }
    found = {k: store.execute(sql).fetchall() for k, sql in stamps.items()}
    assert found == {k: [(stamp,)] for k in stamps}
