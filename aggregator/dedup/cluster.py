"""Cluster: decide which story an article belongs to, incrementally.

Rules, and why:

* **A story is a connected set of articles** joined by passage matches that
  *link*. A new article joins the cluster of every article it links to; when it
  links several clusters they merge into the oldest (lowest id), and the others
  are kept as rows with `merged_into` set, so an id once shown keeps resolving.
  Ids never change as a cluster grows. Only articles with a partner are in a
  cluster; an article that shares nothing with anyone has none.
* **Which passages link** is decided where they are recorded (passages.py:
  the time window, boilerplate, background reused across stories). When a
  passage is found to be background after it linked, its links are withdrawn
  and the clusters they touched are rebuilt from the links that remain (a
  cluster split by this keeps its id for the part that holds its canonical
  article).
* **Canonical article**: the earliest published (ties: the first stored), or
  with `canonical = "longest"` the one with the longest text.
"""

from __future__ import annotations

from collections.abc import Iterable

from aggregator.config import ClusterConfig
from aggregator.model import utcnow
from aggregator.storage.store import Store


def components(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The connected parts of `nodes` when joined by `edges` (union-find), in node order.

    Edges may name nodes outside `nodes`: they connect through them, but only
    `nodes` are returned.
    """
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for a in nodes:
        groups.setdefault(find(a), []).append(a)
    return list(groups.values())


class Clusterer:
    """Applies the clustering rules to the store, inside the caller's transaction."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config

    def cluster_of(self, article_id: int) -> int | None:
        row = self.store.execute(
            "SELECT cluster_id FROM cluster_members WHERE article_id = ?", (article_id,)
        ).fetchone()
        return int(row[0]) if row else None

    def link(self, article_id: int, partners: Iterable[int]) -> int | None:
        """Put `article_id` in one cluster with all `partners`; return that cluster's id."""
        partners = sorted(set(partners) - {article_id})
        if not partners:
            return self.cluster_of(article_id)
        members = [article_id, *partners]
        clusters = sorted({c for a in members if (c := self.cluster_of(a)) is not None})
        now = utcnow()
        if clusters:
            target = clusters[0]
            for other in clusters[1:]:
                self.store.execute(
                    "UPDATE cluster_members SET cluster_id = ? WHERE cluster_id = ?",
                    (target, other),
                )
                self.store.execute(
                    "UPDATE clusters SET merged_into = ?, canonical_article_id = NULL, "
                    "updated_at = ? WHERE id = ?",
                    (target, now, other),
                )
                self.store.execute(
                    "UPDATE clusters SET merged_into = ? WHERE merged_into = ?", (target, other)
                )
        else:
            cursor = self.store.execute(
                "INSERT INTO clusters (created_at, updated_at) VALUES (?, ?)", (now, now)
            )
            target = int(cursor.lastrowid or 0)
        self.store.conn.executemany(
            "INSERT OR IGNORE INTO cluster_members (article_id, cluster_id, joined_at) "
            "VALUES (?, ?, ?)",
            [(a, target, now) for a in members],
        )
        self.refresh(target)
        return target

    def refresh(self, cluster_id: int) -> None:
        """Recompute the canonical article and touch `updated_at`."""
        order = (
            "length(a.body) DESC, a.published_at, a.id"
            if self.config.canonical == "longest"
            else "a.published_at, a.id"
        )
        row = self.store.execute(
            "SELECT a.id FROM cluster_members m JOIN articles a ON a.id = m.article_id "
            f"WHERE m.cluster_id = ? ORDER BY {order} LIMIT 1",
            (cluster_id,),
        ).fetchone()
        self.store.execute(
            "UPDATE clusters SET canonical_article_id = ?, updated_at = ? WHERE id = ?",
            (row[0] if row else None, utcnow(), cluster_id),
        )

    def rebuild_around(self, article_ids: Iterable[int]) -> None:
        """Rebuild the clusters of these articles after some of their links were withdrawn."""
        for cluster_id in sorted({c for a in article_ids if (c := self.cluster_of(a)) is not None}):
            self.rebuild(cluster_id)

    def rebuild(self, cluster_id: int) -> None:
        """Recompute a cluster's membership from its linking matches; split if needed."""
        members = [
            int(r[0])
            for r in self.store.execute(
                "SELECT article_id FROM cluster_members WHERE cluster_id = ?", (cluster_id,)
            )
        ]
        marks = ",".join("?" * len(members))
        edges = self.store.execute(
            "SELECT c.article_id, m.article_id FROM passage_carriers c "
            "JOIN passage_carriers m ON m.id = c.matched_id "
            f"WHERE c.linked = 1 AND c.article_id IN ({marks}) AND m.article_id IN ({marks})",
            (*members, *members),
        ).fetchall()
        groups = components(members, edges)
        if len(groups) == 1 and len(members) > 1:
            return
        self.store.execute("DELETE FROM cluster_members WHERE cluster_id = ?", (cluster_id,))
        canonical = self.store.execute(
            "SELECT canonical_article_id FROM clusters WHERE id = ?", (cluster_id,)
        ).fetchone()[0]
        # The part holding the canonical article keeps the id; if it fell apart,
        # the largest part does.
        parts = sorted(groups, key=lambda g: (canonical not in g, -len(g), min(g)))
        now = utcnow()
        for index, part in enumerate(parts):
            if len(part) < 2:
                continue
            if index == 0:
                target = cluster_id
            else:
                cursor = self.store.execute(
                    "INSERT INTO clusters (created_at, updated_at) VALUES (?, ?)", (now, now)
                )
                target = int(cursor.lastrowid or 0)
            self.store.conn.executemany(
                "INSERT INTO cluster_members (article_id, cluster_id, joined_at) VALUES (?, ?, ?)",
                [(a, target, now) for a in part],
            )
            self.refresh(target)
        self.refresh(cluster_id)
