"""Fetch node: polls the feeds it leased, prepares their entries, stages them.

`aggregator run --role fetch` (service/roles.py) runs a `FetchPoller`: the
same poll as the single-process daemon's (poll.py: conditional GET, parse,
full text, statuses, back-off), with two differences that make it safe to
run on many machines at once:

* **Its batches are staged, not stored.** A `Stager` checks entries against
  the store (an entry stored unchanged is skipped before any parsing, as
  always), prepares the rest in its pool (extract, segment, sign, read for
  the story layer) and encodes each batch (handoff.py). Nothing here needs
  the LSH index, so a fetch node never loads it.
* **What a poll decided is written under its lease** (storage/nodes.py
  `finish`): the feed's new state and its staged batches in one
  transaction, only while the node still holds the lease it claimed the
  feed with. A node that lost its lease (it stalled past the lease, and
  another node claimed the feed) writes nothing: the feed's ETag and body
  hash never go back to an older poll's, and its entries are staged by the
  poll that wrote the state, once.

An entry staged twice (a writer that stored it and died before deleting its
row, a feed polled again before the writer got to its batch) is harmless: the
writer finds it stored with the same content hash ("unchanged").
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from aggregator.config import Config
from aggregator.dedup.signature import Signatures
from aggregator.ingest.batches import Batches
from aggregator.ingest.handoff import encode
from aggregator.ingest.poll import Poller
from aggregator.ingest.record import Outcome, ReadyArticle
from aggregator.model import FeedSource, FeedUpdate
from aggregator.sources.fetch import FetchResult
from aggregator.storage.nodes import LeaseLost, Nodes
from aggregator.storage.protocol import Store

log = logging.getLogger(__name__)


class Stager(Batches):
    """Batches prepared here and kept, encoded, until their feed's poll is written."""

    def __init__(self, store: Store, config: Config, workers: int | None = None) -> None:
        super().__init__(store, config, workers=workers)
        # Source location (the feed) -> its staged batches: (articles, payload).
        self.staged: dict[str, list[tuple[int, bytes]]] = defaultdict(list)

    def _store_batch(
        self, prepared: list[ReadyArticle], signatures: Signatures
    ) -> Iterator[Outcome]:
        """Keep the batch for its feed. The outcome says "new": handed on, and the
        writer decides whether it is new, an update, or a copy already stored."""
        if not prepared:
            return
        feeds = {item.doc.source_location for item in prepared}
        if len(feeds) != 1:
            raise ValueError(f"a staged batch mixes sources: {sorted(feeds)}")
        self.staged[feeds.pop()].append((len(prepared), encode(prepared, signatures)))
        for item in prepared:
            yield Outcome(item.doc.location, "new", warning=item.warning)

    def take(self, location: str) -> list[tuple[int, bytes]]:
        """The batches staged for the feed at `location`, handed over once."""
        return self.staged.pop(location, [])


class FetchPoller(Poller):
    """A poll of leased feeds whose results are written under their leases."""

    def __init__(
        self,
        store: Store,
        config: Config,
        nodes: Nodes,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.stager = Stager(store, config)
        super().__init__(store, config, self.stager, stop, clock)
        self.nodes = nodes
        self.tokens: dict[int, int] = {}  # feed id -> the token of its lease

    def lease(self, claimed: list[tuple[FeedSource, int]]) -> list[FeedSource]:
        """Take note of the claimed feeds' tokens; the feeds, to `poll`."""
        self.tokens.update((feed.id, token) for feed, token in claimed)
        return [feed for feed, _ in claimed]

    def _record(self, feed: FeedSource, result: FetchResult | None, update: FeedUpdate) -> None:
        if result is not None and result.permanent_redirect:
            update = replace(update, moved_to=result.final_url)
        token = self.tokens.pop(feed.id, None)
        staged = self.stager.take(feed.location)
        if token is None:
            log.error("feed %d polled without a lease; nothing written", feed.id)
            return
        try:
            self.nodes.finish(feed.id, token, update, staged)
        except LeaseLost as e:
            log.warning("%s: its poll is dropped (another node polls it)", e)
