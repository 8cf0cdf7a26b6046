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

Deciding apart from doing: `link_plan`, `rebuild_plan` and `retire_plan` decide
from the memberships and links the store hands them and touch no store; each
returns a `ClusterPlan` (storage/plans.py) that `store.clusters.apply` carries
out. `Clusterer` reads what they need and hands their plans back, writing
nothing. New clusters are named in a plan before they have ids, in the order
they are made, so ids stay in creation order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aggregator.config import ClusterConfig
from aggregator.storage.clusters import ClusterLinks, LiveCluster
from aggregator.storage.plans import (
    Canonical,
    ClusterMerge,
    ClusterPlan,
    ClusterRef,
    Membership,
    NewCluster,
    Retirement,
)
from aggregator.storage.protocol import Store


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


@dataclass(frozen=True, slots=True)
class Linking:
    """The plan that puts an article in one story with its partners, and that story
    (None: the article has no partner and is in no story)."""

    plan: ClusterPlan
    cluster: ClusterRef | None


def canonical_rule(config: ClusterConfig) -> Canonical:
    return "longest" if config.canonical == "longest" else "earliest"


def link_plan(
    article_id: int,
    partners: Iterable[int],
    memberships: Mapping[int, int],
    canonical: Canonical,
    now: str,
) -> Linking:
    """Put `article_id` in one cluster with all `partners` (`memberships`: the cluster
    of each of them that is in one): the oldest of their clusters, into which the
    others merge, or a new one."""
    partners = sorted(set(partners) - {article_id})
    if not partners:
        return Linking(ClusterPlan(now, canonical), memberships.get(article_id))
    members = (article_id, *partners)
    clusters = sorted({memberships[a] for a in members if a in memberships})
    if not clusters:
        new = NewCluster(0)
        joins = (Membership(new, members),)
        return Linking(ClusterPlan(now, canonical, created=1, joins=joins, refreshed=(new,)), new)
    target, *others = clusters
    plan = ClusterPlan(
        now,
        canonical,
        merges=tuple(ClusterMerge(into=target, merged=other) for other in others),
        joins=(Membership(target, members),),
        refreshed=(target,),
    )
    return Linking(plan, target)


def rebuild_plan(clusters: Sequence[ClusterLinks], canonical: Canonical, now: str) -> ClusterPlan:
    """Recompute each cluster's membership from the links among its members, after
    some were withdrawn. One that fell apart is split: the part holding its canonical
    article (else the largest) keeps its id, the others get new ones, and a part of
    one article is in no story (the id of such a canonical part is left empty)."""
    emptied: list[int] = []
    joins: list[Membership] = []
    refreshed: list[ClusterRef] = []
    created = 0
    for cluster in clusters:
        groups = components(cluster.members, cluster.links)
        if len(groups) == 1 and len(cluster.members) > 1:
            continue
        emptied.append(cluster.id)
        canonical_id = cluster.canonical_article_id
        parts = sorted(groups, key=lambda g: (canonical_id not in g, -len(g), min(g)))
        for index, part in enumerate(parts):
            if len(part) < 2:
                continue
            target: ClusterRef = cluster.id
            if index > 0:
                target = NewCluster(created)
                created += 1
            joins.append(Membership(target, tuple(part)))
            refreshed.append(target)
        refreshed.append(cluster.id)
    return ClusterPlan(
        now,
        canonical,
        emptied=tuple(emptied),
        created=created,
        joins=tuple(joins),
        refreshed=tuple(refreshed),
    )


def retire_plan(
    old: Iterable[LiveCluster], memberships: Mapping[int, int], now: str
) -> ClusterPlan:
    """After a rematch, point every story that was shown before at the story that now
    holds its canonical article (`memberships`: article -> its cluster now)."""
    retired = []
    for cluster in old:
        canonical = cluster.canonical_article_id
        found = memberships.get(canonical) if canonical is not None else None
        if found != cluster.id:
            retired.append(Retirement(cluster.id, found))
    return ClusterPlan(now, retired=tuple(retired))


class Clusterer:
    """Reads what the clustering rules decide from, and returns their plans."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config
        self.canonical = canonical_rule(config)

    def cluster_of(self, article_id: int) -> int | None:
        return self.store.clusters.cluster_of(article_id)

    def plan_link(self, article_id: int, partners: Iterable[int], now: str) -> Linking:
        """The plan that puts `article_id` in one cluster with all `partners`."""
        partners = set(partners)
        memberships = self.store.clusters.memberships(partners | {article_id})
        return link_plan(article_id, partners, memberships, self.canonical, now)

    def plan_rebuild(self, article_ids: Iterable[int], now: str) -> ClusterPlan:
        """The plan that rebuilds the clusters of these articles after some of their
        links were withdrawn."""
        return rebuild_plan(self.store.clusters.around(article_ids), self.canonical, now)

    def plan_retire(self, old: Sequence[LiveCluster], now: str) -> ClusterPlan:
        """The plan that points the stories `old` at those holding their canonical articles."""
        canonicals = [c.canonical_article_id for c in old if c.canonical_article_id is not None]
        return retire_plan(old, self.store.clusters.memberships(canonicals), now)
