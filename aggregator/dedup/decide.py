"""Decide: the serial decisions for one article, from LSH candidates to its story.

Verify the candidates against their stored signatures (match.py), merge the
verified unit pairs into passages, record them in passage groups with the
decision whether each links two stories (passages.py), and put the article in
its cluster (cluster.py), withdrawing the links of a passage just found to be
background. Everything here reads and writes inside the caller's transaction
and must run one article at a time: cluster ids and canonical copies depend on
the order.

Shared by ingest (pipeline.py) and by `rematch`, which replays stored signatures.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from aggregator.config import Config
from aggregator.dedup.cluster import Clusterer
from aggregator.dedup.match import merge_passages, relocate, verify
from aggregator.dedup.passages import Host, PassageRecorder, outlet_key
from aggregator.dedup.signature import Signatures
from aggregator.storage.store import Store

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]


class Matcher:
    """Verify candidates, record the passages, cluster the article."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.clusterer = Clusterer(store, config.clusters)
        self.recorder = PassageRecorder(store, config.clusters)

    def decide(
        self,
        host: Host,
        paragraphs: I64,
        positions: I64,
        sig: Signatures,
        query_rows: I64,
        candidate_ids: I64,
    ) -> tuple[int, int, int | None]:
        """(passage matches, of which linked, cluster id) of the host article."""
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
        recorded = self.recorder.record(host, passages, outlets)
        cluster_id = self.clusterer.link(article_id, recorded.partners)
        if recorded.withdrawn:
            log.info(
                "background passage article=%d: links of %d articles withdrawn",
                article_id,
                len(recorded.withdrawn),
            )
            self.clusterer.rebuild_around(recorded.withdrawn | {article_id})
            cluster_id = self.clusterer.cluster_of(article_id)
        return recorded.pairs, recorded.linked, cluster_id
