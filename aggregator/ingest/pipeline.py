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

import logging
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from aggregator.config import Config
from aggregator.dedup.decide import Matcher
from aggregator.dedup.index import BandIndex
from aggregator.dedup.pairs import by_row, concat_pairs, rows_between, self_join
from aggregator.dedup.signature import Signatures
from aggregator.errors import StoreError
from aggregator.ingest.batches import Batches, refused_outcome
from aggregator.ingest.record import Outcome, ReadyArticle, Recorder
from aggregator.ingest.rematch import rematch, rematch_pending
from aggregator.sources.caps import cap_article as cap_article  # re-exported: its old home
from aggregator.storage.protocol import Store
from aggregator.stories.layer import StoryLayer

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]


class Ingester(Batches):
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
        super().__init__(store, config, batch_size, workers)
        if rematch_pending(store):
            log.warning("database %s: deciding passages again after an upgrade", store.location)
            rematch(store, config)
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
            super().close()

    def store_prepared(
        self, prepared: list[ReadyArticle], signatures: Signatures
    ) -> Iterator[Outcome]:
        """Store a batch another process prepared (a fetch node's, handoff.py)."""
        return self._store_batch(prepared, signatures)

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
                outcome = refused_outcome(prepared[i].doc, e)
            yield outcome

    def _catch_up(self, prepared: list[ReadyArticle]) -> None:
        """Units and stories other processes stored since the indexes last looked
        (writers are serialised, so after this every unit id below ours is known);
        the story layer learns the terms of the transaction's articles."""
        self.index.add_chunks(self.store.articles.units_since(self.index.max_unit_id))
        self.recorder.look_up(prepared)
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
