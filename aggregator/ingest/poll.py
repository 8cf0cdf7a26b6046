"""Poll: fetch the feeds that are due, ingest their entries, schedule the next check.

What it decides:

* **Nothing parsed twice.** A 304 (conditional GET with the stored ETag and
  Last-Modified) or a 200 whose body hashes like the last one parses nothing
  and only moves the schedule.
* **Statuses.** 301/308 chains update the stored URL; 410 disables the source;
  429 and 503 wait for Retry-After (or the back-off); other 4xx/5xx, fetch
  and parse failures are errors recorded on the source (message and count),
  never raised: one bad feed never stops a poll.
* **One article is never the poll's problem.** Entries cut to the article
  caps are stored cut and named in the feed's `last_warning`. An entry the
  database refuses (`Outcome.refused`: its values, not the store, are at
  fault) makes the poll of its feed an error, recorded and backed off like
  any other, while the feed's other entries stay stored; its body hash is
  not kept, so the refused entry is tried again at the next (later) check.
  Only a fault of the store itself (disk full, read-only, corrupt, I/O,
  locked) leaves as `StoreError` and stops the poll: every feed would hit it.
* **Preparing off the writer.** With other feeds in the poll, a feed's new
  entries are extracted, segmented and signed in the ingester's process pool
  while this thread stores other feeds' (prepare.py).
* **Next check**: see `feeds.success_interval` and `feeds.error_interval`.
* **Deciding apart from doing.** What a poll records on its feed is decided
  whole by `feeds.update_after_answer`/`_error`/`_gone` (a `FeedUpdate`, pure
  functions of the feed as stored, the response and the time) and written once,
  when the feed's poll ends, by `store.feeds.apply`; a permanent redirect's new
  URL is written with it, so a feed abandoned in flight has nothing written.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from aggregator.config import Config
from aggregator.errors import FetchError, ParseError, StoreError
from aggregator.ingest.batches import Batches, PendingBatch
from aggregator.ingest.entries import entry_documents, poll_warnings
from aggregator.ingest.feeds import GONE, update_after_answer, update_after_error, update_after_gone
from aggregator.ingest.pipeline import Ingester
from aggregator.model import FeedSource, FeedUpdate, RawDocument, format_time
from aggregator.sources.fetch import Clients, FetchPolicy, FetchResult, fetch
from aggregator.sources.fulltext import FullTextFetcher, needs_full_text
from aggregator.sources.parse import ParsedFeed
from aggregator.sources.workers import PARSE_DEADLINE, HostQueue, ParsePool, host_key
from aggregator.storage.protocol import Store

log = logging.getLogger(__name__)

_STOP_CHECK = 0.5  # seconds between looks at the stop flag while waiting


PollStatus = Literal["ingested", "not-modified", "unchanged", "gone", "error"]


@dataclass(frozen=True, slots=True)
class PollOutcome:
    source_id: int
    url: str
    status: PollStatus
    entries: int = 0
    new: int = 0
    error: str | None = None
    next_check_at: str | None = None


@dataclass(slots=True)
class _Job:
    """One feed on its way through a poll: fetch, parse, full text, prepare, then ingest."""

    feed: FeedSource
    stage: str  # "fetch", "parse", "full-text" or "prepare"
    host: str = ""
    result: FetchResult | None = None
    body_hash: str = ""
    parsed: ParsedFeed | None = None
    started: float = 0.0  # monotonic, when the current stage began
    failures: list[str] = field(default_factory=list)  # full text that could not be had
    collisions: list[str] = field(default_factory=list)  # entry identity warnings
    docs: list[RawDocument] = field(default_factory=list)  # to ingest here and now
    batches: list[PendingBatch] | None = None  # or: begun, prepared in the pool


class Poller:
    """Polls feed sources; the CLI and the daemon's tick call `poll`.

    Fetches and full-text pages run in a thread pool (`feeds.concurrency`,
    `feeds.per_host`), parsing in a process pool (`workers.py`); everything
    that writes (ingest, source state) stays on the calling thread, the only
    one that touches the database. Close the poller (or use it as a context
    manager) to stop its workers.
    """

    def __init__(
        self,
        store: Store,
        config: Config,
        ingester: Batches | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        # What each feed's poll is stamped with, when `poll` is given no `now`.
        self.clock = clock or (lambda: datetime.now(UTC))
        # Set by the daemon on shutdown: no new feed is started, feeds in
        # flight are abandoned (nothing of theirs was written yet).
        self.stop = stop or threading.Event()
        self.config = config
        # Built on first use: loading the index costs seconds on a large
        # database, and a poll where every feed answers 304 never needs it.
        self._ingester = ingester
        self.policy = FetchPolicy(
            max_bytes=config.feeds.max_bytes,
            deadline=config.feeds.deadline_seconds,
            allow=config.feeds.allow,
        )
        self.rng = random.Random()
        self.clients = Clients()  # a host's feeds and pages share its connections
        self.full_text = FullTextFetcher(
            self.policy, workers=config.feeds.parse_workers, clients=self.clients
        )
        self.parsers = ParsePool(config.feeds.parse_workers)
        self.parse_deadline = PARSE_DEADLINE
        self._threads: ThreadPoolExecutor | None = None
        self._many = False  # this poll has other feeds to go on with while one is prepared

    @property
    def ingester(self) -> Batches:
        if self._ingester is None:
            self._ingester = Ingester(self.store, self.config)
        return self._ingester

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, wait: bool = True) -> None:
        """Stop the workers; `wait=False` abandons fetches in flight (shutdown)."""
        if self._threads is not None:
            self._threads.shutdown(wait=wait, cancel_futures=True)
            self._threads = None
        self.full_text.close(wait)
        self.clients.close()
        if self._ingester is not None:
            self._ingester.close()
        if wait:
            self.parsers.close()
        else:
            self.parsers.kill()

    def poll_one(self, feed: FeedSource, now: datetime | None = None) -> PollOutcome:
        return next(iter(self.poll([feed], now)))

    def poll(
        self, feeds: Sequence[FeedSource], now: datetime | None = None
    ) -> Iterator[PollOutcome]:
        """Poll every feed once; outcomes come as feeds finish, not in the given order.

        `now` fixes the time (tests); by default each feed is stamped with the
        poller's clock when a stage of its poll completes.
        """
        feeds_config = self.config.feeds
        self._many = len(feeds) > 1
        queue = HostQueue(feeds, lambda f: host_key(f.url), feeds_config.per_host)
        running: dict[Future[Any], _Job] = {}
        fetching = 0
        try:
            while True:
                if self.stop.is_set():
                    return
                while fetching < feeds_config.concurrency and (taken := queue.take()):
                    host, feed = taken
                    running[self._submit(self._fetch, feed)] = _Job(feed, "fetch", host)
                    fetching += 1
                if not running:
                    return
                done, _ = wait(running, self._wait_time(running), FIRST_COMPLETED)
                if not done and self.stop.is_set():
                    return
                if not done and self._wait_time(running) == 0.0:
                    yield from self._stop_runaway_parses(running, now or self.clock())
                    continue
                for future in done:
                    job = running.pop(future)
                    if job.stage == "fetch":
                        fetching -= 1
                        queue.done(job.host)
                    step = self._advance(job, future, now or self.clock())
                    if isinstance(step, PollOutcome):
                        yield step
                    else:
                        running[step[0]] = step[1]
        finally:
            for future in running:
                future.cancel()

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                self.config.feeds.concurrency, thread_name_prefix="fetch"
            )
        return self._threads.submit(fn, *args)

    def _wait_time(self, running: dict[Future[Any], _Job]) -> float:
        """Seconds to wait for a stage to finish: until the oldest parse in flight
        passes its deadline, and never long enough to miss a stop."""
        starts = [job.started for job in running.values() if job.stage == "parse"]
        if not starts:
            return _STOP_CHECK
        left = min(starts) + self.parse_deadline - time.monotonic()
        return min(max(0.0, left), _STOP_CHECK)

    def _stop_runaway_parses(
        self, running: dict[Future[Any], _Job], now: datetime
    ) -> Iterator[PollOutcome]:
        """Fail the parses past their deadline, kill the pool, resubmit the others."""
        parsing = {f: job for f, job in running.items() if job.stage == "parse"}
        late = time.monotonic() - self.parse_deadline
        self.parsers.kill()
        for future, job in parsing.items():
            del running[future]
            if job.started <= late:
                reason = f"parse took longer than {self.parse_deadline:.0f} s; stopped"
                yield self._failed(job.feed, now, reason, job.result)
            else:
                assert job.result is not None
                running[self._parse(job.result)] = replace(job, started=time.monotonic())

    def _parse(self, result: FetchResult) -> Future[ParsedFeed]:
        return self.parsers.submit(result.content, result.headers, result.final_url)

    def _fetch(self, feed: FeedSource) -> FetchResult:
        etag, modified = feed.etag, feed.last_modified
        return fetch(feed.url, self.policy, etag=etag, last_modified=modified, clients=self.clients)

    def _advance(
        self, job: _Job, future: Future[Any], now: datetime
    ) -> PollOutcome | tuple[Future[Any], _Job]:
        """Handle a finished stage: the feed's outcome, or its next stage's future."""
        feed = job.feed
        try:
            if job.stage == "fetch":
                return self._fetched(feed, future.result(), now)
            assert job.result is not None
            if job.stage == "parse":
                parsed = self.parsers.result(future, job.result.final_url)
                taken = parsed.entries[: self.config.feeds.max_entries_per_poll]
                if any(needs_full_text(e, feed.full_text) for e in taken):
                    pages = self._submit(
                        self.full_text.complete_all, taken, feed.full_text, job.result.final_url
                    )
                    return pages, replace(job, stage="full-text", parsed=parsed)
                return self._prepare(job, parsed, [], now)
            assert job.parsed is not None
            if job.stage == "prepare":
                return self._ingest(job, job.parsed, job.failures, now)
            entries, failures = future.result()
            # Identity looks at every entry of the document (duplicate GUIDs), not only those taken.
            entries += job.parsed.entries[len(entries) :]
            return self._prepare(job, replace(job.parsed, entries=entries), failures, now)
        except (FetchError, ParseError) as e:
            return self._failed(feed, now, e.reason, job.result)
        except StoreError:
            raise  # the database's trouble (disk full...), not the feed's: the poll stops
        except Exception as e:  # a bug must cost one feed, never the poll
            log.exception("feed poll crashed source=%d url=%s", feed.id, feed.url)
            return self._failed(feed, now, f"internal error: {type(e).__name__}: {e}", job.result)

    def _fetched(
        self, feed: FeedSource, result: FetchResult, now: datetime
    ) -> PollOutcome | tuple[Future[Any], _Job]:
        if result.status == 410:
            log.warning("feed gone (HTTP 410), disabled: source=%d url=%s", feed.id, feed.url)
            self._record(feed, result, update_after_gone(feed, now))
            return PollOutcome(feed.id, feed.url, "gone", error=GONE)
        if result.status in (429, 503) and result.retry_after is not None:
            wait_for = min(result.retry_after, self.config.feeds.max_interval_hours * 3600)
            return self._failed(feed, now, f"HTTP {result.status}", result, wait_for)
        if result.status >= 400 or (result.status >= 300 and not result.not_modified):
            return self._failed(feed, now, f"HTTP {result.status}", result)
        if result.not_modified:
            return self._succeeded(feed, now, result, "not-modified")
        body_hash = hashlib.sha256(result.content).hexdigest()
        if body_hash == feed.body_hash:
            return self._succeeded(feed, now, result, "unchanged")
        job = _Job(feed, "parse", result=result, body_hash=body_hash, started=time.monotonic())
        return self._parse(result), job

    def _prepare(
        self, job: _Job, parsed: ParsedFeed, failures: list[str], now: datetime
    ) -> PollOutcome | tuple[Future[Any], _Job]:
        """The entries as documents; with other feeds in the poll, those not stored
        unchanged are prepared in the ingester's pool meanwhile (prepare.py)."""
        feed, result = job.feed, job.result
        assert result is not None
        job = replace(job, parsed=parsed, failures=failures, collisions=[])
        limit = self.config.feeds.max_entries_per_poll
        documents = entry_documents(
            parsed.entries, result.final_url, feed.name, now, limit, feed.location, job.collisions
        )
        job.docs = list(documents)
        if self._many and self.ingester.preparer.workers:
            job.batches = self.ingester.begin(job.docs)
            if pending := [b.future for b in job.batches if b.future is not None]:
                return pending[-1], replace(job, stage="prepare")
        return self._ingest(job, parsed, failures, now)

    def _ingest(
        self, job: _Job, parsed: ParsedFeed, failures: list[str], now: datetime
    ) -> PollOutcome:
        feed, result = job.feed, job.result
        assert result is not None
        if job.batches is not None:
            outcomes = list(self.ingester.finish(job.batches))
        else:
            outcomes = list(self.ingester.ingest(job.docs))
        new = sum(o.status in ("new", "updated") for o in outcomes)
        cap = self.config.feeds.max_entries_per_poll
        warnings = poll_warnings(parsed, job.collisions, cap, outcomes, failures)
        warning = "; ".join(warnings) or None
        if parsed.warning:
            log.warning(
                "feed parsed with problems source=%d url=%s: %s", feed.id, feed.url, parsed.warning
            )
        if refused := [o for o in outcomes if o.refused]:
            reason = (
                f"{len(refused)} of {len(outcomes)} entries refused by the database, "
                f"last: {refused[-1].error}"
            )
            update = update_after_error(feed, now, reason, self.config, self.rng)
            failed = self._error(feed, result, replace(update, last_warning=warning))
            return replace(failed, entries=len(outcomes), new=new)
        outcome = self._succeeded(
            feed, now, result, "ingested", parsed.ttl_minutes, job.body_hash, warning
        )
        return PollOutcome(
            feed.id, feed.url, "ingested", len(outcomes), new, warning, outcome.next_check_at
        )

    def _record(self, feed: FeedSource, result: FetchResult | None, update: FeedUpdate) -> None:
        """Write what the poll of `feed` decided, with where a permanent redirect led."""
        if result is not None and result.permanent_redirect:
            update = replace(update, moved_to=result.final_url)
        self.store.feeds.apply(feed.id, update)

    def _succeeded(
        self,
        feed: FeedSource,
        now: datetime,
        result: FetchResult,
        status: Literal["ingested", "not-modified", "unchanged"],
        ttl: int | None = None,
        body_hash: str | None = None,
        warning: str | None = None,
    ) -> PollOutcome:
        update = update_after_answer(
            feed, status, now, result.headers, self.config, ttl, body_hash, warning
        )
        self._record(feed, result, update)
        return PollOutcome(feed.id, feed.url, status, next_check_at=_stamp(update))

    def _failed(
        self,
        feed: FeedSource,
        now: datetime,
        reason: str,
        result: FetchResult | None = None,
        wait: float | None = None,
    ) -> PollOutcome:
        """Record an error on the feed and back off (`wait`: seconds a Retry-After asked)."""
        return self._error(
            feed, result, update_after_error(feed, now, reason, self.config, self.rng, wait)
        )

    def _error(
        self, feed: FeedSource, result: FetchResult | None, update: FeedUpdate
    ) -> PollOutcome:
        log.warning("feed error source=%d url=%s: %s", feed.id, feed.url, update.last_error)
        self._record(feed, result, update)
        return PollOutcome(
            feed.id, feed.url, "error", error=update.last_error, next_check_at=_stamp(update)
        )


def _stamp(update: FeedUpdate) -> str | None:
    return None if update.next_check_at is None else format_time(update.next_check_at)
