"""Plans: what the deciders of dedup/ hand storage to carry out.

Deciding apart from doing: the passage recorder (dedup/passages.py), the
background rule (dedup/background.py) and the clusterer (dedup/cluster.py)
decide from the rows storage hands them and return one of these; storage
applies it in the caller's transaction (`store.passages.apply`,
`store.passages.withdraw`, `store.clusters.apply`) and decides nothing but the
ids of what it adds. A plan names the rows it adds before they have ids
(`NewPassage`, `NewCarrier`, `NewCluster`: the n-th it adds), so one decision
can refer to another made in the same plan; applying returns the ids they got
(`AppliedPassages`, `AppliedClusters`). An empty plan changes nothing.

Times are stored text (`format_time`), stamped by the decider's clock (`now`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# -- passages ---------------------------------------------------------------------------

# Why a carrier row links its article's story to the copy it matched, or not
# (the rules are dedup/passages.py's); `origin` is a passage's first copy.
Reason = Literal["origin", "linked", "boilerplate", "window", "background"]


@dataclass(frozen=True, slots=True)
class NewPassage:
    """A passage a plan opens, before it has an id: the `index`-th it opens."""

    index: int


@dataclass(frozen=True, slots=True)
class NewCarrier:
    """A carrier row a plan adds, before it has an id: the `index`-th it adds."""

    index: int


# A stored row's id, or one the plan adds.
PassageRef = int | NewPassage
CarrierRef = int | NewCarrier


@dataclass(frozen=True, slots=True)
class Carrier:
    """A carrier row to add: one article's copy of a passage and the copy it was
    matched to (none for a passage's origin), with the decision on that match."""

    passage: PassageRef
    article_id: int
    paragraph_id: int
    char_start: int
    char_end: int
    first_unit_id: int
    last_unit_id: int
    edge: bool
    matched: CarrierRef | None
    similarity: float | None
    reason: Reason

    @property
    def linked(self) -> bool:
        return self.reason == "linked"


@dataclass(frozen=True, slots=True)
class Widening:
    """A carrier grown to the span a new match found of it: the characters given, and
    its unit ids widened to take in these."""

    carrier: CarrierRef
    char_start: int
    char_end: int
    first_unit_id: int
    last_unit_id: int


@dataclass(frozen=True, slots=True)
class Placement:
    """One carrier of the new article: the passage it is in, and what that changes.

    Applied as: the widenings; then either the passage is opened
    (`opened`, a `NewPassage`) or the `merged` passages are folded into it;
    then `carriers` are added (an opened passage's origin first), and the
    passage counts them and takes in their publication times.
    """

    passage: PassageRef
    opened: bool
    merged: tuple[PassageRef, ...]
    widened: tuple[Widening, ...]
    carriers: tuple[Carrier, ...]
    first_published_at: str
    last_published_at: str


@dataclass(frozen=True, slots=True)
class PassagePlan:
    """What recording one article's passages decided; `now` stamps what it adds."""

    now: str
    placements: tuple[Placement, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliedPassages:
    """The ids of the passages and carrier rows a plan added, in the order it named them."""

    passages: tuple[int, ...] = ()
    carriers: tuple[int, ...] = ()

    def passage(self, ref: PassageRef) -> int:
        return self.passages[ref.index] if isinstance(ref, NewPassage) else ref

    def carrier(self, ref: CarrierRef) -> int:
        return self.carriers[ref.index] if isinstance(ref, NewCarrier) else ref


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Passages found to be background: marked so, their linking carriers unlinked
    (reason `background`). `articles`: those the withdrawn links joined, whose
    stories the clusterer rebuilds."""

    passages: tuple[int, ...] = ()
    articles: frozenset[int] = frozenset()


# -- clusters ---------------------------------------------------------------------------

# Which member is a cluster's canonical article: the earliest published (ties: the
# first stored) or the longest.
Canonical = Literal["earliest", "longest"]


@dataclass(frozen=True, slots=True)
class NewCluster:
    """A cluster a plan creates, before it has an id: the `index`-th it creates."""

    index: int


# A stored cluster's id, or one the plan creates.
ClusterRef = int | NewCluster


@dataclass(frozen=True, slots=True)
class ClusterMerge:
    """Story `merged` folded into story `into`: its members move, and it (with every
    story merged into it before) points at `into`, so its id keeps resolving."""

    into: int
    merged: int


@dataclass(frozen=True, slots=True)
class Membership:
    """Articles put in a cluster; one already in a cluster stays where it is."""

    cluster: ClusterRef
    articles: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Retirement:
    """A story replaced by a rematch: it points at the story now holding its canonical
    article (`into`; None when no story does) and has no canonical article of its own."""

    cluster: int
    into: int | None


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """What the clusterer decided, applied in field order by `SQLClusters.apply`.

    `emptied`: clusters whose members are all dropped first (a rebuild split them);
    `joins` then give every part its members. `created`: how many new clusters
    (`NewCluster(0)` ...), made in that order. `refreshed`: clusters whose
    canonical article is chosen again, by the `canonical` rule, and whose
    `updated_at` is `now`.
    """

    now: str
    canonical: Canonical = "earliest"
    merges: tuple[ClusterMerge, ...] = ()
    emptied: tuple[int, ...] = ()
    created: int = 0
    joins: tuple[Membership, ...] = ()
    refreshed: tuple[ClusterRef, ...] = ()
    retired: tuple[Retirement, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliedClusters:
    """The ids of the clusters a plan created, in the order it named them."""

    created: tuple[int, ...] = ()

    def resolve(self, ref: ClusterRef) -> int:
        return self.created[ref.index] if isinstance(ref, NewCluster) else ref
