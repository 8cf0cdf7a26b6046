"""Prepare: the pure half of ingest (extract, segment, sign), and where it runs.

What it decides, and why:

* **A document's article, units and signatures depend on its bytes and the
  configuration alone**, so they can be computed in another process. The
  writer keeps what must be serial (the unchanged check, look-up, verify,
  cluster, store); on two cores the other core prepares the next batch
  meanwhile. Measured before this split: of the writer's 3.24 ms per feed
  entry, signing took 0.70 and segmenting 0.27-0.32 (docs/benchmarks.md).
* **One batch ahead, no more.** `Ingester.ingest` hands batch k+1 to the pool
  before it stores batch k; with one writer a deeper queue would only hold
  more documents in memory (a batch is up to 1 MiB of content).
* **Only when there is a next batch.** An ingest of a single batch (a feed's
  entries, a test) is prepared in the writer's thread: a pool would cost its
  start-up and buy no overlap. The pool starts with an ingest's second batch
  and is kept for the next ingest.
* **What comes back is compact**: the article, each unit's (paragraph,
  position, start, end, words) as one integer array, and the batch's signature
  arrays; the tokens stay in the worker.
* **A pool is replaced** after `BATCHES_PER_POOL` batches, as the parse pool
  is (sources/workers.py): each worker memoises token hashes, and a daemon
  that runs for months must not let them grow; the cache refills in seconds.
* **A failure costs no document.** Extraction errors come back per document
  (an unexpected exception with its traceback, logged by the writer). If the
  pool itself breaks (a worker killed, say by the kernel when memory runs
  out), the batch is prepared again in the writer's thread and the next batch
  gets a new pool.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.config import Config, MinHashParams
from aggregator.dedup.segment import segment
from aggregator.dedup.signature import Signatures, Signer
from aggregator.errors import SourceError
from aggregator.model import Article, RawDocument
from aggregator.sources.extract import extract_within
from aggregator.sources.pools import new_pool
from aggregator.stories.assign import StoryParams
from aggregator.stories.layer import Reading, read_article

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
# A pool is replaced after this many batches (about 32,000 articles), so that the
# workers' token-hash caches (signature.py) cannot grow without end in the daemon.
BATCHES_PER_POOL = 500
# Columns of `Prepared.spans`.
PARAGRAPH, POSITION, START, END, WORDS = range(5)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One document made ready to store."""

    article: Article
    spans: I64  # (units, 5): paragraph, position, start, end, words
    warning: str | None  # what the caps cut, if anything
    reading: Reading | None  # what the story layer reads of it (None: stories off)


@dataclass(frozen=True, slots=True)
class Failed:
    """A document that gave no article."""

    location: str
    error: str
    traceback: str | None = None  # an unexpected exception, for the writer's log


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    items: list[Prepared | Failed]  # one per document, in order
    signatures: Signatures  # every unit of the Prepared items, in order


_SIGNERS: dict[MinHashParams, Signer] = {}


def _signer(params: MinHashParams) -> Signer:
    """One signer per process and parameters: it memoises token hashes."""
    if params not in _SIGNERS:
        _SIGNERS[params] = Signer(params)
    return _SIGNERS[params]


def prepare_batch(docs: Sequence[RawDocument], config: Config) -> PreparedBatch:
    """Extract, segment and sign `docs` (in whichever process calls it)."""
    items: list[Prepared | Failed] = []
    tokens: list[tuple[str, ...]] = []
    dedup = config.dedup
    weights = StoryParams.from_config(config.stories).weights if config.stories.enabled else None
    for doc in docs:
        try:
            article, warning = extract_within(doc, config.ingest)
        except SourceError as e:  # ExtractError included
            items.append(Failed(e.location, e.reason))
            continue
        except Exception as e:  # a bug of ours or a library's: costs this document only
            reason = f"extraction failed unexpectedly: {type(e).__name__}: {e}"
            items.append(Failed(doc.location, " ".join(reason.split()), traceback.format_exc()))
            continue
        units = list(segment(article.paragraphs, dedup.min_unit_words, dedup.min_sentence_words))
        tokens.extend(u.tokens for u in units)
        spans = np.array(
            [(u.paragraph, u.position, u.start, u.end, len(u.tokens)) for u in units],
            dtype=np.int64,
        ).reshape(-1, 5)
        reading = read_article(article, weights) if weights else None
        items.append(Prepared(article, spans, warning, reading))
    return PreparedBatch(items, _signer(dedup.minhash).sign(tokens))


class Preparer:
    """Prepares batches in the caller's thread or, ahead of it, in a process pool."""

    def __init__(self, config: Config, workers: int) -> None:
        """`workers`: processes of the pool (0: never a pool)."""
        self.config = config
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._batches = 0  # submitted to the current pool

    def submit(self, docs: list[RawDocument]) -> Future[PreparedBatch]:
        """Start preparing `docs` in the pool (started now if need be; a pool that
        has prepared `BATCHES_PER_POOL` batches is retired first)."""
        if self._pool is not None and self._batches >= BATCHES_PER_POOL:
            self._pool.shutdown(wait=False)  # finishes what it has, then exits
            self._pool = None
        if self._pool is None:
            self._pool = new_pool(self.workers, ["aggregator.ingest.prepare"])
            self._batches = 0
        self._batches += 1
        return self._pool.submit(prepare_batch, docs, self.config)

    def result(
        self, docs: list[RawDocument], future: Future[PreparedBatch] | None
    ) -> PreparedBatch:
        """The prepared batch: the pool's answer, or prepared here (no pool, or it broke)."""
        if future is not None:
            try:
                return future.result()
            except Exception as e:  # the pool broke or could not pickle: prepare here
                log.warning(
                    "preparing %d documents in a worker failed (%s: %s); preparing them here",
                    len(docs),
                    type(e).__name__,
                    e,
                )
                self.close()
        return prepare_batch(docs, self.config)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def workers_for(config: Config) -> int:
    """Pool size from `ingest.workers` (0: one per core)."""
    return config.ingest.workers or os.cpu_count() or 1
