"""store.reports: what the CLI lists, answered from the database (storage/reports.py)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from aggregator.config import Config
from aggregator.storage.reports import UNLINKED_REASONS, DuplicateRow
from aggregator.storage.store import Store
from tests.conftest import SEEDS, THIRD_OUTLET, OpenStore, ingest

pytestmark = pytest.mark.both_stores


def test_a_duplicate_row_has_the_views_columns_in_order(store: Store) -> None:
    """The JSON of `duplicates` is the record's fields: they must stay the view's columns."""
    cursor = store.execute("SELECT * FROM duplicate_passages")
    assert [f.name for f in fields(DuplicateRow)] == [d[0] for d in cursor.description]


def test_an_empty_database_reports_nothing(store: Store) -> None:
    reports = store.reports
    assert reports.cluster_articles() == [] and reports.duplicate_rows(unlinked=True) == []
    assert reports.passage_groups(unlinked=True) == []
    counts = reports.match_counts()
    assert (counts.passages, counts.matches, counts.linked) == (0, 0, 0)
    assert counts.unlinked == dict.fromkeys(UNLINKED_REASONS, 0)
    assert (reports.last_carrier_id(), reports.live_clusters(), reports.article_count()) == (
        0,
        0,
        0,
    )


def test_a_cluster_id_leads_to_its_live_story(config: Config, open_store: OpenStore) -> None:
    ingest(config, SEEDS)
    store = open_store()
    [live] = {row.cluster_id for row in store.reports.cluster_articles()}
    assert store.reports.live_cluster(live) == live
    assert store.reports.live_cluster(live + 100) is None
    with store.write():  # two ids merged into each other: no writer does it; no endless walk
        for cluster_id in (live + 1, live + 2):
            store.execute(
                "INSERT INTO clusters (id, created_at, updated_at) VALUES (?, '', '')",
                (cluster_id,),
            )
        for cluster_id, into in ((live + 1, live + 2), (live + 2, live + 1)):
            store.execute("UPDATE clusters SET merged_into = ? WHERE id = ?", (into, cluster_id))
    assert store.reports.live_cluster(live + 1) in (live + 1, live + 2)


def test_passage_groups_name_each_carrier_and_what_it_matched(
    config: Config, open_store: OpenStore
) -> None:
    ingest(config, SEEDS, THIRD_OUTLET)
    store = open_store()
    groups = store.reports.passage_groups(unlinked=True)
    assert groups and all(len(g.carriers) >= 2 for g in groups)
    for group in groups:
        first, *later = group.carriers
        assert (first.matched_article_id, first.similarity) == (None, None)
        assert all(c.matched_article_id is not None and c.similarity for c in later)
        assert all(c.paragraph >= 1 for c in group.carriers), "numbered from 1"
    counts = store.reports.match_counts()
    assert counts.matches == sum(len(g.carriers) - 1 for g in groups)
    assert counts.matches == counts.linked + sum(counts.unlinked.values())
    assert len(store.reports.duplicate_rows(unlinked=True)) == counts.matches
    assert store.reports.match_counts(store.reports.last_carrier_id()).matches == 0
