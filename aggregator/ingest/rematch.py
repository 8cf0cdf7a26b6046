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

import numpy as np

from aggregator.config import Config
from aggregator.dedup.decide import Matcher
from aggregator.dedup.index import BandIndex
from aggregator.dedup.passages import Host, outlet_key
from aggregator.dedup.signature import Signatures
from aggregator.model import utcnow
from aggregator.storage.store import Store

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def rematch_pending(store: Store) -> bool:
    """Has an upgrade asked for the passages to be decided again?"""
    row = store.execute("SELECT value FROM meta WHERE key = 'rematch'").fetchone()
    return row is not None and row[0] == "pending"


def rematch(store: Store, config: Config, progress: Progress | None = None) -> dict[str, int]:
    """Re-decide every passage and story; returns counts of what was replayed."""
    matcher = Matcher(store, config)
    params = config.dedup.minhash
    index = BandIndex(params.bands, max_units=config.dedup.index_max_units)
    with store.write():
        old = store.execute(
            "SELECT id, canonical_article_id FROM clusters WHERE merged_into IS NULL"
        ).fetchall()
        for table in ("passage_carriers", "passages", "cluster_members"):
            store.execute(f"DELETE FROM {table}")
        order = [
            int(r[0])
            for r in store.execute(
                "SELECT u.article_id FROM unit_signatures s JOIN units u ON u.id = s.unit_id "
                "GROUP BY u.article_id ORDER BY min(s.unit_id)"
            )
        ]
        matches = 0
        for done, article_id in enumerate(order, 1):
            host, paragraphs, positions, sig = _load(store, article_id, params.num_perm)
            query_rows, candidate_ids = index.lookup(sig.band_keys)
            pairs, _, _ = matcher.decide(
                host, paragraphs, positions, sig, query_rows, candidate_ids
            )
            matches += pairs
            index.add(np.asarray(host.unit_ids, dtype=np.int64), sig.band_keys)
            if progress is not None:
                progress(done, len(order))
            elif done % 10_000 == 0:
                log.info("rematch: %d of %d articles", done, len(order))
        now = utcnow()
        for cluster_id, canonical in old:
            found = matcher.clusterer.cluster_of(canonical) if canonical is not None else None
            if found != cluster_id:
                store.execute(
                    "UPDATE clusters SET merged_into = ?, canonical_article_id = NULL, "
                    "updated_at = ? WHERE id = ?",
                    (found, now, cluster_id),
                )
        store.execute("DELETE FROM meta WHERE key = 'rematch'")
    log.info("rematch: %d articles replayed, %d passage matches", len(order), matches)
    return {"articles": len(order), "passage_matches": matches}


def _load(
    store: Store, article_id: int, num_perm: int
) -> tuple[Host, np.ndarray, np.ndarray, Signatures]:
    """An article's current units and signatures, as ingest had them."""
    source_id, outlet, published = store.execute(
        "SELECT source_id, outlet, published_at FROM articles WHERE id = ?", (article_id,)
    ).fetchone()
    paragraph_ids = [
        int(r[0])
        for r in store.execute(
            "SELECT p.id FROM paragraphs p JOIN article_versions v ON v.id = p.version_id "
            "JOIN articles a ON a.id = v.article_id AND a.version = v.version "
            "WHERE a.id = ? ORDER BY p.position",
            (article_id,),
        )
    ]
    rows = store.execute(
        "SELECT u.id, p.position, u.position, u.char_start, u.char_end, u.shingle_count, "
        "s.minhash, s.band_keys FROM units u JOIN unit_signatures s ON s.unit_id = u.id "
        "JOIN paragraphs p ON p.id = u.paragraph_id WHERE u.article_id = ? ORDER BY u.id",
        (article_id,),
    ).fetchall()
    bands = store.params.bands
    sig = Signatures(
        np.frombuffer(b"".join(r[6] for r in rows), dtype=np.uint32).reshape(-1, num_perm),
        np.frombuffer(b"".join(r[7] for r in rows), dtype=np.uint32).reshape(-1, bands),
        np.array([r[5] for r in rows], dtype=np.int64),
    )
    host = Host(
        article_id,
        outlet_key(outlet, int(source_id)),
        published,
        paragraph_ids,
        [int(r[1]) for r in rows],
        [int(r[3]) for r in rows],
        [int(r[4]) for r in rows],
        [int(r[0]) for r in rows],
    )
    paragraphs = np.array([r[1] for r in rows], dtype=np.int64)
    positions = np.array([r[2] for r in rows], dtype=np.int64)
    return host, paragraphs, positions, sig
