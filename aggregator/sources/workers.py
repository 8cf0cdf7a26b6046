"""Workers: how a poll spreads over threads and processes.

What it decides, and why:

* **Fetches run in threads**, at most `concurrency` at once and at most
  `per_host` at once against one host (host and port), so a poll of a
  thousand feeds does not wait on each server in turn and no single server
  sees a burst from us. Feeds of one host are taken in their given order;
  hosts take turns, so a host with many feeds cannot starve the others.
* **Parsing runs in processes.** feedparser is pure Python and CPU-bound; in
  threads it would hold the GIL and stall every other stage. A process pool
  (one worker per core by default) parses while the main thread ingests.
  Workers start from a fork server with feedparser already imported, so a
  pool costs a fraction of a second, once per poller. To keep memory from
  creeping, the whole pool is replaced after `TASKS_PER_WORKER` documents per
  worker (the old one finishes what it has, then exits). Not with
  `max_tasks_per_child`: on Python 3.11 that stalls the pool after a worker
  is replaced (CPython gh-115634; the soak run hit it every ~2,000 parses).
  The pool starts in about 0.2 s, later pools in 0.03 s (measured on the
  2-core CI machine), so even a one-feed poll uses it: only a process can be
  stopped when a parse runs away. `workers=1` parses inline instead.
* **A dead worker is one failed document**, not a failed poll: the pool is
  rebuilt and the next document goes to the new one. A parse that runs past
  `PARSE_DEADLINE` is stopped by killing the pool (`kill`); the poller fails
  that feed and resubmits the others that were in flight.
* **Entry HTML is read in the same task.** The pool runs
  `entrytext.read_feed`: feedparser, then each entry's HTML into paragraphs
  (lxml, after the linear limits of `htmllimits.py`), so the deadline covers
  both and the poller's thread, which writes the database, never parses feed
  HTML.
* **Full-text pages use a pool of their own** (`call`, from the full-text
  threads; `fulltext.py`): a killable worker and a deadline each, like a feed.
  Its own, so that killing a runaway page never fails a feed parse in flight
  (nor a runaway feed a page); `call` is safe from many threads, lets at most
  `workers` calls run at once (so a call's deadline is its own running time,
  not a wait in the queue), and a call whose worker was killed because
  *another* call overran is simply run again.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from aggregator.errors import ParseError, WorkerError
from aggregator.sources.entrytext import read_feed
from aggregator.sources.parse import ParsedFeed
from aggregator.sources.pools import new_pool

# Loaded once in the fork server: the parser and lxml. Not trafilatura (0.3 s):
# only workers that read pages pay for it, once each.
PRELOAD = ["aggregator.sources.entrytext", "aggregator.sources.htmltext"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

TASKS_PER_WORKER = 1000
PARSE_DEADLINE = 60.0
CALL_ATTEMPTS = 3  # runs of one `call` whose worker other calls' deadlines killed


def host_key(url: str) -> str:
    """The host and port a URL is fetched from: the unit of the per-host limit."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


class HostQueue(Generic[T, K]):
    """Items released at most `per_host` at a time per key, keys taking turns.

    `take` hands out the next item whose key has a free slot (or None);
    `done(key)` frees the slot. A key is in `_ready` exactly when it has
    waiting items and a free slot, so both calls are O(1).
    """

    def __init__(self, items: Iterable[T], key: Callable[[T], K], per_host: int) -> None:
        if per_host < 1:
            raise ValueError("per_host must be >= 1")
        self.per_host = per_host
        self._waiting: dict[K, deque[T]] = {}
        for item in items:
            self._waiting.setdefault(key(item), deque()).append(item)
        self._busy: Counter[K] = Counter()
        self._ready: deque[K] = deque(self._waiting)

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def take(self) -> tuple[K, T] | None:
        if not self._ready:
            return None
        key = self._ready.popleft()
        queue = self._waiting[key]
        item = queue.popleft()
        self._busy[key] += 1
        if not queue:
            del self._waiting[key]
        elif self._busy[key] < self.per_host:
            self._ready.append(key)
        return key, item

    def done(self, key: K) -> None:
        self._busy[key] -= 1
        if key in self._waiting and self._busy[key] == self.per_host - 1:
            self._ready.append(key)


class ParsePool:
    """Runs work in worker processes, created on first use: feed parses (`submit`,
    from the poller's thread) or any call with a deadline (`call`, from any thread)."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._submitted = 0  # to the current pool
        # Which pool ran a future: a failure of an old, broken pool must not
        # reset the new one.
        self._owner: weakref.WeakKeyDictionary[Future[Any], ProcessPoolExecutor] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.RLock()  # the pool's state, for `call` from many threads
        self._slots = threading.BoundedSemaphore(self.workers)
        self._killed: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()
        # Pools replaced while work was in flight, with their processes (a shut down
        # executor forgets them), so that `kill` reaches a runaway among them too.
        self._retired: list[tuple[ProcessPoolExecutor, list[BaseProcess]]] = []
        self._closed = False

    def submit(self, content: bytes, headers: dict[str, str], url: str) -> Future[ParsedFeed]:
        """A future of `read_feed(content, headers, url)`; ParseError on failure."""
        if self.workers == 1:
            future: Future[ParsedFeed] = Future()
            try:
                future.set_result(read_feed(content, headers, url))
            except Exception as e:  # a crash is reported per document, like a pool's
                future.set_exception(e)
            return future
        with self._lock:
            return self._submit(read_feed, content, headers, url)

    def result(self, future: Future[ParsedFeed], url: str) -> ParsedFeed:
        """The parsed feed, or ParseError (also for a worker that died or crashed)."""
        try:
            return future.result()
        except ParseError:
            raise
        except BrokenProcessPool as e:
            with self._lock:
                if self._owner.get(future) is self._pool:
                    self._reset()
            raise ParseError(url, "the parser process died (out of memory or killed)") from e
        except Exception as e:
            raise ParseError(url, f"parser crashed: {type(e).__name__}: {e}") from e

    def call(self, fn: Callable[..., T], *args: Any, deadline: float) -> T:
        """`fn(*args)` in a worker, at most `deadline` seconds of it; from any thread.

        Raises what `fn` raises, or WorkerError: past the deadline (the pool is
        killed, so the work really stops), or the worker died. A call stopped
        because another call's deadline killed the pool runs again, in the new
        pool, up to CALL_ATTEMPTS times. `workers=1` runs it inline, unbounded.
        """
        if self.workers == 1:
            return fn(*args)
        for _ in range(CALL_ATTEMPTS):
            with self._slots:
                with self._lock:
                    if self._closed:
                        raise WorkerError("was stopped: the worker pool was closed")
                    future = self._submit(fn, *args)
                    pool = self._pool
                try:
                    return future.result(timeout=deadline)
                except TimeoutError:
                    self.kill()  # its pool, or a retired one: every worker, to be sure
                    raise WorkerError(f"took longer than {deadline:g} s; stopped") from None
                except CancelledError:
                    raise WorkerError("was stopped: the worker pool was closed") from None
                except BrokenProcessPool as e:
                    with self._lock:
                        if self._closed:
                            raise WorkerError("was stopped: the worker pool was closed") from e
                        if pool not in self._killed:  # died by itself: this call's doing
                            if self._pool is pool:
                                self._reset()
                            raise WorkerError(
                                "was stopped: its worker process died (out of memory or killed)"
                            ) from e
        raise WorkerError("was stopped again and again by other calls past their deadlines")

    def kill(self) -> None:
        """Stop every worker now (a runaway parse), those of retired pools still
        finishing their documents too; the next submit starts a new pool."""
        with self._lock:
            pools = self._retired
            if self._pool is not None:
                pools = [*pools, (self._pool, list(self._pool._processes.values()))]
            for pool, processes in pools:
                self._killed.add(pool)
                for process in processes:
                    process.kill()
            self._retired = []
            self._reset()

    def close(self, wait: bool = True) -> None:
        """Stop the workers: after the work in flight, or (`wait=False`) at once."""
        with self._lock:
            self._closed = True
            if not wait:
                self.kill()
            elif self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __del__(self) -> None:
        # Worker processes outlive a pool nobody closed, until the interpreter exits.
        if getattr(self, "_pool", None) is not None:
            warnings.warn("unclosed parse pool", ResourceWarning, stacklevel=2, source=self)

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Hand `fn(*args)` to the current pool (a new one when it is due or broken)."""
        if self._submitted >= TASKS_PER_WORKER * self.workers:
            self._retire()
        try:
            future = self._executor().submit(fn, *args)
        except BrokenProcessPool:
            self._reset()
            future = self._executor().submit(fn, *args)
        self._submitted += 1
        self._owner[future] = self._executor()
        return future

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = new_pool(self.workers, PRELOAD)
            self._submitted = 0
        return self._pool

    def _retire(self) -> None:
        """Start a fresh pool; the old one completes its documents, then its workers exit."""
        if self._pool is not None:
            self._retired = [(p, ps) for p, ps in self._retired if any(x.is_alive() for x in ps)]
            self._retired.append((self._pool, list(self._pool._processes.values())))
            self._pool.shutdown(wait=False)
            self._pool = None

    def _reset(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
