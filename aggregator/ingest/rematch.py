"""Rematch: decide every passage and story again from the stored signatures.

Run when an upgrade changes how passages are recorded (schema 6 replaced the
N x N `passage_matches` pairs with passage groups: the migration marks the
database `rematch = pending`, and the first writer that opens it with its
configuration runs this), and by `aggregator rematch` after a change to the
`[clusters]` settings.

Nothing is read or signed again. The articles are replayed in the order their
current versions were stored (their first unit id); each is looked up in a
fresh in-memory band index holding only the articles replayed before it, then
verified, recorded and clustered by the same code as ingest (`Matcher`), so
the result is what ingesting the same articles in the same order would give.
Versions an article no longer has are not replayed: their signatures were
dropped when they were replaced, as ingest does.

All of it is one transaction: interrupted, the database is as it was. Story
ids change (the clusters are rebuilt), but every story id shown before keeps
resolving: an old cluster points (`merged_into`) at the new story that holds
its canonical article.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from aggregator.config import Config
from aggregator.dedup.decide import Matcher
from aggregator.dedup.index import BandIndex
from aggregator.dedup.passages import Host, outlet_key
from aggregator.dedup.signature import Signatures
from aggregator.model import format_time
from aggregator.storage.articles import ReplayedArticle
from aggregator.storage.protocol import Store

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def rematch_pending(store: Store) -> bool:
    """Has an upgrade asked for the passages to be decided again?"""
    return store.passages.rematch_pending()


def rematch(
    store: Store, config: Config, progress: Progress | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Re-decide every passage and story; returns counts of what was replayed.

    `now` stamps what is stored (by default, the time each decision is made).
    """
    matcher = Matcher(store, config)
    index = BandIndex(config.dedup.minhash.bands, max_units=config.dedup.index_max_units)
    with store.write():
        old = store.clusters.live()
        store.passages.clear()
        store.clusters.clear_members()
        order = store.articles.replay_order()
        matches = 0
        for done, article_id in enumerate(order, 1):
            host, paragraphs, positions, sig = _replay(store.articles.replayed(article_id))
            query_rows, candidate_ids = index.lookup(sig.band_keys)
            pairs, _, _ = matcher.decide(
                host, paragraphs, positions, sig, query_rows, candidate_ids, now
            )
            matches += pairs
            index.add(np.asarray(host.unit_ids, dtype=np.int64), sig.band_keys)
            if progress is not None:
                progress(done, len(order))
            elif done % 10_000 == 0:
                log.info("rematch: %d of %d articles", done, len(order))
        stamp = format_time(now or datetime.now(UTC))
        store.clusters.apply(matcher.clusterer.plan_retire(old, stamp))
        store.passages.rematch_done()
    log.info("rematch: %d articles replayed, %d passage matches", len(order), matches)
    return {"articles": len(order), "passage_matches": matches}


def _replay(
    article: ReplayedArticle,
) -> tuple[Host, npt.NDArray[np.int64], npt.NDArray[np.int64], Signatures]:
    """An article's current units and signatures, as ingest had them."""
    sig = Signatures(article.minhash, article.band_keys, article.shingle_counts)
    host = Host(
        article.article_id,
        outlet_key(article.outlet, article.source_id),
        article.published_at,
        list(article.paragraph_ids),
        article.unit_paragraphs.tolist(),
        article.char_starts.tolist(),
        article.char_ends.tolist(),
        article.unit_ids.tolist(),
    )
    return host, article.unit_paragraphs, article.unit_positions, sig
