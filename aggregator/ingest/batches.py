"""Batches: documents checked against the store and prepared, a batch at a time.

What every consumer of documents shares (the ingest pipeline, which stores
them, and a fetch node, which hands them to the dedup writer: handoff.py):
a batch ends at `batch_size` documents or `BATCH_BYTES` of content; a
document whose bytes are unchanged since it was stored is known before any
parsing; the rest are extracted, segmented, signed and read in the preparing
pool one batch ahead when there is a next one (prepare.py). What is done with
a prepared batch is the subclass's `_store_batch`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

from aggregator.config import Config
from aggregator.dedup.signature import Signatures
from aggregator.errors import AggregatorError, RefusedError, SourceError, StoreError
from aggregator.ingest.prepare import Failed, PreparedBatch, Preparer, workers_for
from aggregator.ingest.record import Outcome, ReadyArticle
from aggregator.model import RawDocument
from aggregator.storage.articles import StoredArticle
from aggregator.storage.protocol import Store

log = logging.getLogger(__name__)

# A batch also ends at this much content: 64 articles are about 200 KB, while a file
# can be 10 MiB, and a batch holds every document's bytes, units and signatures until
# it is stored (about 70 MB for each file the caps cut to 1 MiB; issue 13, item 5).
BATCH_BYTES = 1024 * 1024


def _content_hash(doc: RawDocument) -> str:
    """What decides whether a document changed: its bytes, and a title the source gave."""
    digest = hashlib.sha256(doc.content)
    if doc.title is not None:
        digest.update(b"\0" + doc.title.encode("utf-8"))
    return digest.hexdigest()


@dataclass(slots=True)
class PendingBatch:
    """Documents on their way: checked against the store, being prepared."""

    docs: list[RawDocument]
    early: list[Outcome | None]  # per document: its outcome if known before preparing
    hashes: list[str]
    future: Future[PreparedBatch] | None  # None: prepared in the writer's thread


class Batches:
    """Documents in, outcomes out; `_store_batch` says what a prepared batch becomes."""

    def __init__(
        self, store: Store, config: Config, batch_size: int = 64, workers: int | None = None
    ) -> None:
        """`workers`: processes preparing batches ahead (prepare.py; default from
        `ingest.workers`, 0: all in this thread)."""
        self.store = store
        self.config = config
        self.batch_size = batch_size
        self.preparer = Preparer(config, workers_for(config) if workers is None else workers)

    def ingest(
        self, items: Iterable[RawDocument | AggregatorError]
    ) -> Generator[Outcome, None, None]:
        """Ingest documents (errors from the source pass through as failures).

        Batches are prepared one ahead of the one being stored, in the pool,
        once there is a second batch (prepare.py); outcomes keep batch order.
        """
        waiting: deque[PendingBatch] = deque()
        batch: list[RawDocument] = []
        size = 0
        for item in items:
            if isinstance(item, AggregatorError):
                yield _failed(item)
                continue
            batch.append(item)
            size += len(item.content)
            if len(batch) >= self.batch_size or size >= BATCH_BYTES:
                waiting.append(self._check(batch, ahead=bool(waiting)))
                batch, size = [], 0
                if len(waiting) > 1:
                    yield from self._ingest_batch(waiting.popleft())
        if batch:
            waiting.append(self._check(batch, ahead=bool(waiting)))
        while waiting:
            yield from self._ingest_batch(waiting.popleft())

    def begin(self, docs: list[RawDocument]) -> list[PendingBatch]:
        """Check `docs` against the store now and start preparing the rest in the pool;
        `finish` stores them. For a caller with other work meanwhile (the poller
        parses other feeds while a feed's entries are prepared)."""
        return [
            self._check(docs[i : i + self.batch_size], ahead=True)
            for i in range(0, len(docs), self.batch_size)
        ]

    def finish(self, batches: list[PendingBatch]) -> Iterator[Outcome]:
        """Store batches `begin` started, in order."""
        for batch in batches:
            yield from self._ingest_batch(batch)

    def close(self) -> None:
        """Stop the preparing processes."""
        self.preparer.close()

    def _check(self, docs: list[RawDocument], ahead: bool) -> PendingBatch:
        """Outcomes known from the store alone (unchanged, unreadable); the rest is
        handed to the pool when `ahead` (another batch is stored meanwhile)."""
        early: list[Outcome | None] = []
        hashes: list[str] = []
        todo: list[RawDocument] = []
        try:  # one statement per feed; entry by entry if the database refuses one
            found: dict[tuple[str, str], StoredArticle] | None = self.store.articles.find_articles(
                (d.source_location, d.identity) for d in docs
            )
        except (StoreError, UnicodeEncodeError, OverflowError):
            found = None
        for doc in docs:
            content_hash = _content_hash(doc)
            hashes.append(content_hash)
            try:
                existing = (
                    found.get((doc.source_location, doc.identity))
                    if found is not None
                    else self.store.articles.find_article(doc.source_location, doc.identity)
                )
            except (StoreError, UnicodeEncodeError, OverflowError) as e:
                early.append(refused_outcome(doc, e))
                continue
            if existing is not None and existing.content_hash == content_hash:
                early.append(Outcome(doc.location, "unchanged", article_id=existing.id))
                continue
            early.append(None)
            todo.append(doc)
        pooled = ahead and self.preparer.workers > 0 and bool(todo)
        return PendingBatch(docs, early, hashes, self.preparer.submit(todo) if pooled else None)

    def _ingest_batch(self, batch: PendingBatch) -> Iterator[Outcome]:
        todo = [doc for doc, early in zip(batch.docs, batch.early, strict=True) if early is None]
        result = self.preparer.result(todo, batch.future)
        ready = iter(result.items)
        prepared: list[ReadyArticle] = []
        for doc, early, content_hash in zip(batch.docs, batch.early, batch.hashes, strict=True):
            if early is not None:
                yield early
                continue
            item = next(ready)
            if isinstance(item, Failed):
                if item.traceback:
                    log.error("extracting %s failed\n%s", item.location, item.traceback)
                yield Outcome(item.location, "failed", error=item.error)
                continue
            if item.warning:
                log.warning("article cut to the caps: %s: %s", _shown(doc.location), item.warning)
            prepared.append(
                ReadyArticle(
                    doc, content_hash, item.article, item.spans, item.warning, item.reading
                )
            )
        yield from self._store_batch(prepared, result.signatures)

    def _store_batch(
        self, prepared: list[ReadyArticle], signatures: Signatures
    ) -> Iterator[Outcome]:
        raise NotImplementedError


def _failed(error: AggregatorError) -> Outcome:
    location = error.location if isinstance(error, SourceError) else ""
    reason = error.reason if isinstance(error, SourceError) else str(error)
    return Outcome(location, "failed", error=reason)


def refusal(error: BaseException) -> str | None:
    """Why the database refused one article's values, or None for a fault of the store.

    `error` is what a write raised: the store's `RefusedError` (its engine's
    verdict on the values of one statement), or the UnicodeEncodeError (a lone
    surrogate) or OverflowError (an integer over 64 bits) of a value no engine
    can take. Anything else is the store's: stopping is the safe answer to an
    unknown fault, since every later write would meet it.
    """
    if isinstance(error, UnicodeEncodeError | OverflowError):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, RefusedError):
        return error.why
    return None


def refused_outcome(doc: RawDocument, error: Exception) -> Outcome:
    """The failed outcome of an article the database refused; raises `error` instead
    when it is a fault of the store."""
    why = refusal(error)
    if why is None:
        raise error
    log.warning("database refused the article %s: %s", _shown(doc.location), why)
    return Outcome(doc.location, "failed", error=f"database refused it: {why}", refused=True)


def _shown(location: str, limit: int = 300) -> str:
    """A location short enough for a log line (a feed's link can be any length)."""
    return location if len(location) <= limit else location[: limit - 1] + "…"
