"""Read models: what `clusters`, `cluster`, `duplicates` and `stats` show, as JSON and text.

The store answers with records (`store.reports`, see storage/reports.py); this
module only shapes them: plain dicts, JSON-ready, whose keys are the CLI's
documented output (the records' field names, through `asdict`, except a
cluster's article, whose id is `id`), and the text the commands print.
The same questions are answered by the views for sqlite-utils users
(`cluster_articles`, `duplicate_passages`), and the store reads those.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict
from typing import Any

import click

from aggregator.errors import AggregatorError
from aggregator.plural import counted
from aggregator.storage.protocol import Store


def list_clusters(store: Store, cluster_id: int | None = None) -> list[dict[str, Any]]:
    """Every live cluster (or just `cluster_id`) with its articles, largest first."""
    clusters: dict[int, dict[str, Any]] = {}
    for row in store.reports.cluster_articles(cluster_id):
        cluster = clusters.setdefault(row.cluster_id, {"id": row.cluster_id, "articles": []})
        cluster["articles"].append(
            {
                "id": row.article_id,
                "canonical": row.canonical,
                "source": row.source,
                "title": row.title,
                "published_at": row.published_at,
                "location": row.location,
            }
        )
    result = list(clusters.values())
    for cluster in result:
        articles = cluster["articles"]
        cluster["size"] = len(articles)
        cluster["sources"] = len({a["source"] for a in articles})
        cluster["latest"] = max(a["published_at"] for a in articles)
        canonical = next((a for a in articles if a["canonical"]), articles[0])
        cluster["title"] = canonical["title"]
    result.sort(key=lambda c: (-c["size"], c["id"]))
    return result


def resolve_cluster(store: Store, cluster_id: int) -> int:
    """Follow `merged_into` so an id that was merged away still finds its story."""
    live = store.reports.live_cluster(cluster_id)
    if live is None:
        raise AggregatorError(f"cluster {cluster_id}: no such cluster")
    return live


def show_cluster(store: Store, cluster_id: int) -> dict[str, Any]:
    """One cluster: its articles and the passage matches between them."""
    live = resolve_cluster(store, cluster_id)
    found = list_clusters(store, live)
    if not found:
        raise AggregatorError(f"cluster {cluster_id}: has no articles (dissolved)")
    cluster = found[0]
    ids = [a["id"] for a in cluster["articles"]]
    cluster["passages"] = duplicate_rows(store, unlinked=True, among=ids)
    if live != cluster_id:
        cluster["merged_from"] = cluster_id
    return cluster


def duplicate_rows(
    store: Store, unlinked: bool = False, among: list[int] | None = None
) -> list[dict[str, Any]]:
    """One row per passage match: an article's copy and the earlier copy it matched.

    Only matches that link two stories, unless `unlinked`; with `among`, only
    matches whose two articles are both in that list.
    """
    return [asdict(row) for row in store.reports.duplicate_rows(unlinked, among)]


def passage_groups(store: Store, unlinked: bool = False) -> list[dict[str, Any]]:
    """Each passage with every article that carries it, in the order they were found.

    Only passages with a linking match, unless `unlinked`.
    """
    return [
        {
            "passage_id": group.passage_id,
            "background": group.background,
            "carriers": [asdict(carrier) for carrier in group.carriers],
        }
        for group in store.reports.passage_groups(unlinked)
    ]


def match_counts(store: Store, after_id: int = 0) -> dict[str, Any]:
    """Passage matches recorded after carrier row `after_id`: found, linked, and why not."""
    return asdict(store.reports.match_counts(after_id))


def stats(store: Store) -> dict[str, Any]:
    counts = store.counts()
    clustered = counts["cluster_members"]
    return {
        "database": store.location,
        "database_bytes": store.size(),
        "tables": counts,
        "live_clusters": store.reports.live_clusters(),
        "clustered_articles": clustered,
        "unclustered_articles": counts["articles"] - clustered,
        "passage_matches": match_counts(store),
    }


# -- as text ----------------------------------------------------------------------------


def matches_line(found: dict[str, Any]) -> str:
    """'5 passage matches found, 3 linking stories (2 boilerplate)'."""
    text = f"{counted(found['matches'], 'passage match')} found, {found['linked']} linking stories"
    why = ", ".join(f"{n} {reason}" for reason, n in found["unlinked"].items() if n)
    return text + (f" ({why})" if why else "")


def _wrap() -> textwrap.TextWrapper:
    return textwrap.TextWrapper(width=88, initial_indent="    ", subsequent_indent="    ")


def print_passage(row: dict[str, Any]) -> None:
    """A `duplicate_rows` row: the similarity, then each copy with its article."""
    wrap = _wrap()
    flag = "" if row["linked"] else f" (not linked: {row['reason']})"
    click.echo(f"similarity {row['similarity']:.2f}{flag}")
    for side in ("", "other_"):
        click.echo(
            f"  [{row[side + 'article_id']}] {row[side + 'title']}  "
            f"({row[side + 'location']}, paragraph {row[side + 'paragraph']})"
        )
        click.echo(wrap.fill(row[side + "passage"]))
    click.echo()


def print_group(group: dict[str, Any]) -> None:
    """A `passage_groups` group: the passage, then each carrier and what it matched."""
    wrap = _wrap()
    flag = " (background: links no stories)" if group["background"] else ""
    carriers = group["carriers"]
    click.echo(f"passage {group['passage_id']}: {counted(len(carriers), 'article')}{flag}")
    for c in carriers:
        if c["matched_article_id"] is None:
            how = "first copy"
        else:
            how = f"matched [{c['matched_article_id']}] at {c['similarity']:.2f}"
            how += "" if c["linked"] else f", not linked: {c['reason']}"
        click.echo(
            f"  [{c['article_id']}] {c['title']}  ({c['location']}, paragraph "
            f"{c['paragraph']}; {how})"
        )
        click.echo(wrap.fill(c["passage"]))
    click.echo()
