"""Read models: what `clusters`, `cluster`, `duplicates` and `stats` show.

Plain dicts (JSON-ready) built from the store's tables and views; the CLI only
formats them. The same questions are answered by the views for sqlite-utils
users (`cluster_articles`, `duplicate_passages`), and these queries use them.
"""

from __future__ import annotations

from typing import Any

from aggregator.errors import AggregatorError
from aggregator.store import Store


def list_clusters(store: Store, cluster_id: int | None = None) -> list[dict[str, Any]]:
    """Every live cluster (or just `cluster_id`) with its articles, largest first."""
    clusters: dict[int, dict[str, Any]] = {}
    sql = (
        "SELECT cluster_id, article_id, canonical, source, title, published_at, location "
        "FROM cluster_articles"
    )
    args: tuple[int, ...] = ()
    if cluster_id is not None:
        sql, args = sql + " WHERE cluster_id = ?", (cluster_id,)
    for row in store.execute(sql, args):
        cluster = clusters.setdefault(row[0], {"id": row[0], "articles": []})
        cluster["articles"].append(
            {
                "id": row[1],
                "canonical": bool(row[2]),
                "source": row[3],
                "title": row[4],
                "published_at": row[5],
                "location": row[6],
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
    seen = set()
    current = cluster_id
    while True:
        row = store.execute("SELECT merged_into FROM clusters WHERE id = ?", (current,)).fetchone()
        if row is None:
            raise AggregatorError(f"cluster {cluster_id}: no such cluster")
        if row[0] is None or current in seen:
            return current
        seen.add(current)
        current = int(row[0])


def show_cluster(store: Store, cluster_id: int) -> dict[str, Any]:
    """One cluster: its articles and the passages they share."""
    live = resolve_cluster(store, cluster_id)
    found = list_clusters(store, live)
    if not found:
        raise AggregatorError(f"cluster {cluster_id}: has no articles (dissolved)")
    cluster = found[0]
    ids = [a["id"] for a in cluster["articles"]]
    cluster["passages"] = duplicate_rows(store, include_boilerplate=True, among=ids)
    if live != cluster_id:
        cluster["merged_from"] = cluster_id
    return cluster


def duplicate_rows(
    store: Store, include_boilerplate: bool = False, among: list[int] | None = None
) -> list[dict[str, Any]]:
    """One row per matched passage pair, both sides with id, title, location and text.

    With `among`, only pairs whose two articles are both in that list.
    """
    conditions: list[str] = [] if include_boilerplate else ["boilerplate = 0"]
    args: list[int] = []
    if among is not None:
        marks = ",".join("?" * len(among))
        conditions.append(f"article_id IN ({marks}) AND other_article_id IN ({marks})")
        args = [*among, *among]
    sql = "SELECT * FROM duplicate_passages"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    cursor = store.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def stats(store: Store) -> dict[str, Any]:
    counts = store.counts()
    live = store.execute(
        "SELECT count(*) FROM clusters c WHERE merged_into IS NULL AND EXISTS "
        "(SELECT 1 FROM cluster_members m WHERE m.cluster_id = c.id)"
    ).fetchone()[0]
    clustered = counts["cluster_members"]
    size = store.path.stat().st_size if store.path.exists() else 0
    return {
        "database": str(store.path),
        "database_bytes": size,
        "tables": counts,
        "live_clusters": live,
        "clustered_articles": clustered,
        "unclustered_articles": counts["articles"] - clustered,
        "boilerplate_matches": store.execute(
            "SELECT count(*) FROM passage_matches WHERE boilerplate = 1"
        ).fetchone()[0],
    }
