"""Story clusters: members, merges, splits, and what the clusterer decides them from.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses.

The clusterer (dedup/cluster.py) decides from what `memberships` and `around`
hand it and returns a `ClusterPlan` (plans.py); `apply` carries it out in a
fixed order: merges, emptied clusters, new clusters, memberships, canonical
articles, retirements.

The canonical article is chosen here, in SQL, by the rule the plan names: a
cluster's members can be many, and ordering them where they are stored reads
one index instead of handing every member's date and length across.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aggregator.storage.plans import AppliedClusters, Canonical, ClusterPlan

if TYPE_CHECKING:
    from aggregator.storage.store import Store

# The canonical article first, by each rule.
_ORDER: dict[Canonical, str] = {
    "earliest": "a.published_at, a.id",
    "longest": "length(a.body) DESC, a.published_at, a.id",
}
_CHUNK = 500  # ids per IN (...) list, far below SQLite's variable limit


@dataclass(frozen=True, slots=True)
class ClusterLinks:
    """A cluster as a rebuild sees it: its members, its canonical article, and the
    pairs of its members that a linking carrier joins."""

    id: int
    canonical_article_id: int | None
    members: tuple[int, ...]
    links: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class LiveCluster:
    """A cluster not merged into another, and its canonical article."""

    id: int
    canonical_article_id: int | None


class SQLClusters:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.clusters`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reads -------------------------------------------------------------------

    def cluster_of(self, article_id: int) -> int | None:
        row = self._store.execute(
            "SELECT cluster_id FROM cluster_members WHERE article_id = ?", (article_id,)
        ).fetchone()
        return int(row[0]) if row else None

    def memberships(self, article_ids: Iterable[int]) -> dict[int, int]:
        """The cluster of each of these articles that is in one (article -> cluster)."""
        ids = sorted(set(article_ids))
        found: dict[int, int] = {}
        for start in range(0, len(ids), _CHUNK):
            batch = ids[start : start + _CHUNK]
            found.update(
                (int(a), int(c))
                for a, c in self._store.execute(
                    "SELECT article_id, cluster_id FROM cluster_members "
                    f"WHERE article_id IN ({','.join('?' * len(batch))})",
                    batch,
                )
            )
        return found

    def around(self, article_ids: Iterable[int]) -> list[ClusterLinks]:
        """The clusters of these articles (by id), each with its members and links."""
        out = []
        for cluster_id in sorted(set(self.memberships(article_ids).values())):
            members = [
                int(r[0])
                for r in self._store.execute(
                    "SELECT article_id FROM cluster_members WHERE cluster_id = ? "
                    "ORDER BY article_id",
                    (cluster_id,),
                )
            ]
            marks = ",".join("?" * len(members))
            links = self._store.execute(
                "SELECT c.article_id, m.article_id FROM passage_carriers c "
                "JOIN passage_carriers m ON m.id = c.matched_id "
                f"WHERE c.linked = 1 AND c.article_id IN ({marks}) AND m.article_id IN ({marks})",
                (*members, *members),
            ).fetchall()
            canonical = self._store.execute(
                "SELECT canonical_article_id FROM clusters WHERE id = ?", (cluster_id,)
            ).fetchone()[0]
            out.append(
                ClusterLinks(
                    cluster_id,
                    canonical,
                    tuple(members),
                    tuple((int(a), int(b)) for a, b in links),
                )
            )
        return out

    def live(self) -> list[LiveCluster]:
        """Every cluster not merged into another, by id."""
        return [
            LiveCluster(int(cluster_id), canonical)
            for cluster_id, canonical in self._store.execute(
                "SELECT id, canonical_article_id FROM clusters WHERE merged_into IS NULL "
                "ORDER BY id"
            )
        ]

    # -- writes ------------------------------------------------------------------

    def clear_members(self) -> None:
        """Take every article out of its cluster (a rematch decides them all again)."""
        self._store.execute("DELETE FROM cluster_members")

    def apply(self, plan: ClusterPlan) -> AppliedClusters:
        """Carry out a plan in the caller's transaction; the ids of the clusters it made."""
        execute = self._store.execute
        now = plan.now
        for merge in plan.merges:
            execute(
                "UPDATE cluster_members SET cluster_id = ? WHERE cluster_id = ?",
                (merge.into, merge.merged),
            )
            execute(
                "UPDATE clusters SET merged_into = ?, canonical_article_id = NULL, "
                "updated_at = ? WHERE id = ?",
                (merge.into, now, merge.merged),
            )
            execute(
                "UPDATE clusters SET merged_into = ? WHERE merged_into = ?",
                (merge.into, merge.merged),
            )
        for cluster_id in plan.emptied:
            execute("DELETE FROM cluster_members WHERE cluster_id = ?", (cluster_id,))
        applied = AppliedClusters(tuple(self._store.ids.take("clusters", plan.created)))
        self._store.insert_rows(
            "clusters (id, created_at, updated_at)",
            [(cluster_id, now, now) for cluster_id in applied.created],
        )
        for join in plan.joins:
            cluster_id = applied.resolve(join.cluster)
            self._store.executemany(
                "INSERT INTO cluster_members (article_id, cluster_id, joined_at) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(a, cluster_id, now) for a in join.articles],
            )
        order = _ORDER[plan.canonical]
        for ref in _unique(applied.resolve(r) for r in plan.refreshed):
            execute(
                "UPDATE clusters SET canonical_article_id = (SELECT a.id FROM cluster_members m "
                "JOIN articles a ON a.id = m.article_id WHERE m.cluster_id = :ref "
                f"ORDER BY {order} LIMIT 1), updated_at = :now WHERE id = :ref",
                {"ref": ref, "now": now},
            )
        for retired in plan.retired:
            execute(
                "UPDATE clusters SET merged_into = ?, canonical_article_id = NULL, "
                "updated_at = ? WHERE id = ?",
                (retired.into, now, retired.cluster),
            )
        return applied


def _unique(ids: Iterable[int]) -> Sequence[int]:
    return list(dict.fromkeys(ids))
