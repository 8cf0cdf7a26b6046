"""Decide: the serial decisions for one article, from LSH candidates to its story.

Verify the candidates against their stored signatures (match.py), merge the
verified unit pairs into passages, record them in passage groups with the
decision whether each links two stories (passages.py), and put the article in
its cluster (cluster.py), withdrawing the links of a passage just found to be
background (background.py). Each of those decides from rows the store hands
it and returns a plan; `Matcher` has the store apply each plan before the next
decision reads, because each reads what the one before wrote (the passages a
new carrier landed in, the clusters a link merged). Everything runs inside the
caller's transaction and must run one article at a time: cluster ids and
canonical copies depend on the order.

Shared by ingest (pipeline.py) and by `rematch`, which replays stored signatures.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from aggregator.config import Config
from aggregator.dedup.background import Background
from aggregator.dedup.cluster import Clusterer
from aggregator.dedup.match import Passage, merge_passages, relocate, verify
from aggregator.dedup.passages import (
    Host,
    Recording,
    outlet_key,
    plan_passages,
    unplaced_paragraphs,
)
from aggregator.dedup.signature import Signatures
from aggregator.model import format_time
from aggregator.storage.plans import PassagePlan
from aggregator.storage.protocol import Store

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]


class Matcher:
    """Verify candidates, record the passages, cluster the article."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.clusterer = Clusterer(store, config.clusters)
        self.background = Background(store, config.clusters)

    def decide(
        self,
        host: Host,
        paragraphs: I64,
        positions: I64,
        sig: Signatures,
        query_rows: I64,
        candidate_ids: I64,
        now: datetime | None = None,
    ) -> tuple[int, int, int | None]:
        """(passage matches, of which linked, cluster id) of the host article.

        `now` stamps what is stored (by default, the time of the call).
        """
        article_id = host.article_id
        if len(candidate_ids) == 0:
            return 0, 0, self.clusterer.cluster_of(article_id)
        signatures = self.store.articles.candidate_signatures(np.unique(candidate_ids).tolist())
        verified = verify(
            sig.minhash,
            sig.shingle_counts,
            query_rows,
            candidate_ids,
            signatures,
            article_id,
            self.config.dedup,
        )
        if not verified:
            return 0, 0, self.clusterer.cluster_of(article_id)
        matched = sorted({int(signatures.unit_ids[m.candidate]) for m in verified})
        rows = self.store.articles.candidate_rows(matched)
        matches = relocate(verified, signatures, rows)
        passages = merge_passages(
            matches,
            paragraphs,
            positions,
            rows,
            query_starts=np.asarray(host.unit_starts, dtype=np.int64),
            query_ends=np.asarray(host.unit_ends, dtype=np.int64),
        )
        outlets = {
            int(a): outlet_key(o, int(s))
            for a, o, s in zip(rows.article_ids, rows.outlets, rows.source_ids, strict=True)
        }
        stamp = format_time(now or datetime.now(UTC))
        store = self.store
        recording = self._plan_passages(host, passages, outlets, stamp)
        applied = store.passages.apply(recording.plan)
        withdrawal = self.background.find(applied.passage(p) for p in recording.touched)
        store.passages.withdraw(withdrawal)
        background = set(withdrawal.passages)
        linked = [
            pair.partner
            for pair in recording.pairs
            if pair.linked and applied.passage(pair.passage) not in background
        ]
        linking = self.clusterer.plan_link(article_id, linked, stamp)
        made = store.clusters.apply(linking.plan)
        cluster_id = None if linking.cluster is None else made.resolve(linking.cluster)
        if withdrawal.articles:
            log.info(
                "background passage article=%d: links of %d articles withdrawn",
                article_id,
                len(withdrawal.articles),
            )
            store.clusters.apply(
                self.clusterer.plan_rebuild(withdrawal.articles | {article_id}, stamp)
            )
            cluster_id = self.clusterer.cluster_of(article_id)
        return len(recording.pairs), len(linked), cluster_id

    def _plan_passages(
        self, host: Host, pieces: list[Passage], outlets: dict[int, str], now: str
    ) -> Recording:
        """Read the carrier rows the passage rules decide from; their plan."""
        if not pieces:
            return Recording(PassagePlan(now))
        stored = self.store.passages.carriers_of(sorted({p.other_article_id for p in pieces}))
        unplaced = unplaced_paragraphs(pieces, stored)
        places = self.store.passages.paragraph_places(unplaced) if unplaced else {}
        return plan_passages(host, pieces, outlets, stored, places, self.config.clusters, now)
