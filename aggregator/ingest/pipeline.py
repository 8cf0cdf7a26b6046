"""The ingest pipeline: raw documents in, stored articles, passages and clusters out.

Order of work for a batch of documents:

1. skip documents whose bytes are unchanged since they were stored (by hash),
   before any parsing;
2. extract and segment each remaining document (errors are per document, and
   so is an unexpected exception from extraction: logged with its traceback),
   and sign every unit of the batch in one vectorised call (the hot loop):
   prepare.py, in a process pool one batch ahead when there is a next batch;
3. per batch, in one write transaction (group commit): catch the in-memory
   index up with units other processes stored; then per document save the
   article or its new version, look up candidates, verify them, store units,
   passages and cluster changes (record.py). If any document fails, the group is rolled
   back and stored again one transaction per document (`_commit_group`).
   Outcomes are given after the commit, and only then do the new units enter
   the in-memory index, so a rolled back article leaves no trace anywhere.

A batch ends at `batch_size` documents or `BATCH_BYTES` of content, whichever
comes first: the NumPy work runs over thousands of units at a time, and one
commit serves them all.

What it decides about oversized and unstorable articles (issue 12):

* **Caps, in one place.** Every article, from a file or a feed, is cut to the
  `[ingest]` caps as it is extracted (`extract_within`, caps.py): a title
  longer than `max_title_chars`, more than `max_paragraphs` paragraphs, a text
  longer than `max_text_chars`. The text is cut at a paragraph boundary, or at
  a space inside the paragraph that crosses the cap when 200 characters or
  more of room are left there; a cut title or paragraph ends in "…". A file is
  read only as far as the caps need (issue 13, item 5). The article is
  stored cut, with a one-line warning on its outcome (and in the log) saying
  what was cut, from how much to how much; a poll records it on the feed
  (`last_warning`). So a 10 MB headline never reaches segmentation, signing
  or SQLite, and no single document costs the database more than the caps
  allow.
* **The database refusing one article is that article's failure.** The
  engine's errors about the values of one article (too big, a constraint, too
  many variables; a string or integer it cannot hold) roll back that
  article's transaction and give it a failed outcome with `refused` set; the
  next documents go on. A poll records such a failure as the feed's error (backed
  off). Faults of the store itself (disk full, read-only, corrupt, I/O, locked,
  or anything not known to be about one article) still leave as `StoreError`
  and stop the run: every later article would fail the same way.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.config import Config
from aggregator.dedup.decide import Matcher
from aggregator.dedup.index import BandIndex
from aggregator.dedup.pairs import by_row, concat_pairs, rows_between, self_join
from aggregator.dedup.signature import Signatures
from aggregator.errors import AggregatorError, RefusedError, SourceError, StoreError
from aggregator.ingest.prepare import (
    Failed,
    PreparedBatch,
    Preparer,
    workers_for,
)
from aggregator.ingest.record import Outcome, ReadyArticle, Recorder
from aggregator.ingest.rematch import rematch, rematch_pending
from aggregator.model import RawDocument
from aggregator.sources.caps import cap_article as cap_article  # re-exported: its old home
from aggregator.storage.protocol import Store
from aggregator.stories.layer import StoryLayer

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
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


class Ingester:
    """Runs documents through extract, segment, sign, match, cluster and store."""

    def __init__(
        self,
        store: Store,
        config: Config,
        batch_size: int = 64,
        index: BandIndex | None = None,
        workers: int | None = None,
    ) -> None:
        """`index`: an index already loaded from this store (a reload keeps it).
        `workers`: processes preparing batches ahead (prepare.py; default from
        `ingest.workers`, 0: all in this thread).

        A database upgraded to passage groups has its passages decided again
        here first (rematch.py), since this is where the configuration is known.
        """
        self.store = store
        self.config = config
        self.batch_size = batch_size
        if rematch_pending(store):
            log.warning("database %s: deciding passages again after an upgrade", store.location)
            rematch(store, config)
        self.preparer = Preparer(config, workers_for(config) if workers is None else workers)
        limit = config.dedup.index_max_units
        if index is None:
            index = BandIndex(config.dedup.minhash.bands, max_units=limit)
            below = store.articles.unit_id_before_newest(limit)
            index.add_chunks(store.articles.units_since(below))
            index.floor = below + 1 if below else 0
        index.max_units = limit  # a reload may change it
        self.index = index
        stories = StoryLayer(store, config.stories) if config.stories.enabled else None
        self.recorder = Recorder(store, index, Matcher(store, config), stories)

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
        """Save the story layer's document frequencies; stop the preparing processes.

        Frequencies are statistics: a store that cannot take them now (disk full)
        costs the few articles since the last save, so that is logged, not raised.
        """
        try:
            stories = self.recorder.stories
            if stories is not None and stories.unsaved:
                with self.store.write():
                    stories.save_frequencies()
        except StoreError as e:
            log.warning("story term frequencies not saved: %s", e)
        finally:
            self.preparer.close()

    def _check(self, docs: list[RawDocument], ahead: bool) -> PendingBatch:
        """Outcomes known from the store alone (unchanged, unreadable); the rest is
        handed to the pool when `ahead` (another batch is stored meanwhile)."""
        early: list[Outcome | None] = []
        hashes: list[str] = []
        todo: list[RawDocument] = []
        for doc in docs:
            content_hash = _content_hash(doc)
            hashes.append(content_hash)
            try:
                existing = self.store.articles.find_article(doc.source_location, doc.identity)
            except (StoreError, UnicodeEncodeError, OverflowError) as e:
                early.append(_refused(doc, e))
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
        if not prepared:
            return
        sizes = [len(p.spans) for p in prepared]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # Unit id of each batch row once its article is stored (-1 until then).
        row_ids = np.full(int(bounds[-1]), -1, dtype=np.int64)
        try:
            with self.index.holding_runs():
                # The runs cannot change during the block, so one look-up serves
                # the whole batch; matches inside the batch come from one self-join.
                run_hits = by_row(*self.index.lookup_runs(signatures.band_keys))
                batch_hits = by_row(
                    *self_join(
                        signatures.band_keys,
                        np.repeat(np.arange(len(prepared)), sizes),
                        self.index.max_bucket,
                    )
                )

                def store(i: int) -> tuple[Outcome, list[int]]:
                    lo, hi = int(bounds[i]), int(bounds[i + 1])
                    part = Signatures(
                        signatures.minhash[lo:hi],
                        signatures.band_keys[lo:hi],
                        signatures.shingle_counts[lo:hi],
                    )
                    earlier_rows, earlier = rows_between(batch_hits, lo, hi)
                    known = row_ids[earlier] >= 0
                    hits = concat_pairs(
                        rows_between(run_hits, lo, hi),
                        (earlier_rows[known], row_ids[earlier[known]]),
                    )
                    outcome, unit_ids = self.recorder.record(prepared[i], part, hits)
                    if unit_ids:
                        row_ids[lo:hi] = unit_ids
                    return outcome, unit_ids

                yield from self._commit_group(prepared, store, row_ids)
        finally:
            stored = row_ids >= 0
            self.index.add(row_ids[stored], signatures.band_keys[stored])

    def _commit_group(
        self,
        prepared: list[ReadyArticle],
        store: Callable[[int], tuple[Outcome, list[int]]],
        row_ids: I64,
    ) -> Iterator[Outcome]:
        """Store a batch's articles in one transaction (group commit); if any of them
        fails, roll the group back and store them one transaction each.

        One commit per batch instead of per article saves a BEGIN/COMMIT and lets
        the full-text index merge its work (docs/benchmarks.md). The outcomes are
        given only once their transaction has committed, so a caller never reports
        an article that a rollback then took back. A rolled-back group leaves
        nothing: its unit ids are forgotten (SQLite may give them again) and the
        index's high-water mark is put back, so units other writers stored
        meanwhile are still caught up.
        """
        count, mark = len(prepared), self.index.max_unit_id
        if count > 1:
            try:
                with self.store.write():
                    self._catch_up(prepared)
                    outcomes = [store(i)[0] for i in range(count)]
                    self._settle()
            except (StoreError, UnicodeEncodeError, OverflowError) as e:
                row_ids[:] = -1
                self.index.max_unit_id = mark
                self._rolled_back()
                log.info("group of %d articles rolled back (%s); storing one by one", count, e)
            else:
                yield from outcomes
                return
        for i in range(count):
            try:
                with self.store.write():
                    self._catch_up(prepared[i : i + 1])
                    outcome, _ = store(i)
                    self._settle()
            except (StoreError, UnicodeEncodeError, OverflowError) as e:
                # Rolled back; raised again unless it is about this article alone.
                self._rolled_back()
                outcome = _refused(prepared[i].doc, e)
            yield outcome

    def _catch_up(self, prepared: list[ReadyArticle]) -> None:
        """Units and stories other processes stored since the indexes last looked
        (writers are serialised, so after this every unit id below ours is known);
        the story layer learns the terms of the transaction's articles."""
        self.index.add_chunks(self.store.articles.units_since(self.index.max_unit_id))
        stories = self.recorder.stories
        if stories is not None:
            stories.begin()
            stories.learn([p.reading for p in prepared if p.reading is not None])

    def _settle(self) -> None:
        """The transaction's articles are stored: the story layer places them."""
        if self.recorder.stories is not None:
            self.recorder.stories.settle()

    def _rolled_back(self) -> None:
        """The story index took joins the rollback undid: put it back as stored."""
        if self.recorder.stories is not None:
            self.recorder.stories.rolled_back()


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


def _refused(doc: RawDocument, error: Exception) -> Outcome:
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
