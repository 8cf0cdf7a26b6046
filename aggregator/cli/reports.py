"""Read models: what `clusters`, `cluster`, `duplicates` and `stats` show.

Plain dicts (JSON-ready) built from the store's tables and views; the CLI only
formats them. The same questions are answered by the views for sqlite-utils
users (`cluster_articles`, `duplicate_passages`), and these queries use them.
"""

from __future__ import annotations

from typing import Any

from aggregator.errors import AggregatorError
from aggregator.storage.store import Store


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
    conditions: list[str] = [] if unlinked else ["linked = 1"]
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


def passage_groups(store: Store, unlinked: bool = False) -> list[dict[str, Any]]:
    """Each passage with every article that carries it, in the order they were found.

    Only passages with a linking match, unless `unlinked`.
    """
    having = (
        ""
        if unlinked
        else "WHERE EXISTS (SELECT 1 FROM passage_carriers l WHERE l.passage_id = g.id "
        "AND l.linked = 1)"
    )
    cursor = store.execute(
        "SELECT g.id, g.background, c.id, c.article_id, s.name, a.title, a.location, "
        "p.position + 1, substr(p.text, c.char_start + 1, c.char_end - c.char_start), "
        "m.article_id, round(c.similarity, 3), c.linked, c.reason "
        f"FROM (SELECT * FROM passages g {having}) g "
        "JOIN passage_carriers c ON c.passage_id = g.id "
        "JOIN articles a ON a.id = c.article_id JOIN sources s ON s.id = a.source_id "
        "JOIN paragraphs p ON p.id = c.paragraph_id "
        "LEFT JOIN passage_carriers m ON m.id = c.matched_id ORDER BY g.id, c.id"
    )
    groups: dict[int, dict[str, Any]] = {}
    for row in cursor:
        group = groups.setdefault(
            row[0], {"passage_id": row[0], "background": bool(row[1]), "carriers": []}
        )
        group["carriers"].append(
            dict(
                zip(
                    (
                        "match_id",
                        "article_id",
                        "source",
                        "title",
                        "location",
                        "paragraph",
                        "passage",
                        "matched_article_id",
                        "similarity",
                        "linked",
                        "reason",
                    ),
                    row[2:],
                    strict=True,
                )
            )
        )
    return list(groups.values())


def match_counts(store: Store, after_id: int = 0) -> dict[str, Any]:
    """Passage matches recorded after carrier row `after_id`: found, linked, and why not."""
    reasons = dict(
        store.execute(
            "SELECT reason, count(*) FROM passage_carriers "
            "WHERE id > ? AND matched_id IS NOT NULL GROUP BY reason",
            (after_id,),
        ).fetchall()
    )
    found = sum(reasons.values())
    linked = reasons.pop("linked", 0)
    return {
        "passages": store.execute(
            "SELECT count(DISTINCT passage_id) FROM passage_carriers WHERE id > ?", (after_id,)
        ).fetchone()[0],
        "matches": found,
        "linked": linked,
        "unlinked": {r: reasons.get(r, 0) for r in ("boilerplate", "window", "background")},
    }


def last_carrier_id(store: Store) -> int:
    """The newest carrier row's id: where `match_counts` of a run starts."""
    return int(store.execute("SELECT coalesce(max(id), 0) FROM passage_carriers").fetchone()[0])


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
        "passage_matches": match_counts(store),
    }
