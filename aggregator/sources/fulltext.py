"""Full text: fetch the linked page when a feed entry carries only a summary.

When: always for sources set to `always`; never for `never`; for `auto`, when
the entry has no full content and its summary is shorter than
`SUMMARY_WORDS` words (a teaser, not an article). The page is fetched with the
same fetcher rules (SSRF policy, deadline, size cap) and its main text
extracted with trafilatura. If that fails the summary is kept, and why is
logged on the source's behalf; an entry is never lost because its page was.

Politeness: pages on one host are fetched at least `HOST_INTERVAL` seconds
apart (a monotonic clock), so a feed of fifty teasers does not become fifty
requests in a burst to one site.

Bounded: the page is fetched in the calling thread (network waits), but read
(`htmltext.read_page`: the limits of `htmllimits.py`, then trafilatura) in a
worker process of the fetcher's own pool (`workers.ParsePool.call`) with a
deadline of `deadline` seconds (`PARSE_DEADLINE`, like a feed's parse); past
it the worker is killed and the entry keeps its summary, with the reason in
the feed's `last_warning`. The pages of one feed share that many seconds of
reading per poll (`complete_all`), so a feed of hostile pages costs one
deadline, not one per entry. Before, a page with 80,000 attributes on one
element held a fetch thread, and the poll, for 37 s. The page's paragraphs
come back with the entry (`entrytext.ReadEntry`), so they are not parsed
again on the poller's thread; what of the page was over the limits goes to
the feed's `last_warning` too.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from aggregator.errors import ExtractError, FetchError, WorkerError
from aggregator.sources.entrytext import with_text
from aggregator.sources.fetch import Clients, FetchPolicy, fetch
from aggregator.sources.htmltext import clean_paragraphs, read_page
from aggregator.sources.pageclean import drop_title_repeats
from aggregator.sources.parse import FeedEntry
from aggregator.sources.workers import PARSE_DEADLINE, ParsePool
from aggregator.urls import normalise_url

log = logging.getLogger(__name__)

SUMMARY_WORDS = 80
HOST_INTERVAL = 1.0
PAGE_MAX_BYTES = 5 * 1024 * 1024


def needs_full_text(entry: FeedEntry, mode: str) -> bool:
    if mode == "never" or not entry.link:
        return False
    if mode == "always":
        return True
    return not entry.content and len(entry.summary.split()) < SUMMARY_WORDS


@dataclass(slots=True)
class _Budget:
    """Seconds of page reading one feed has left in this poll."""

    seconds: float


class FullTextFetcher:
    """Fetches article pages for summary-only entries, rate-limited per host.

    Safe to share between threads: the per-host slots are reserved under a
    lock and the waiting happens outside it; the page pool takes calls from
    any thread. Close it (the poller does) to stop the pool's workers.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        host_interval: float = HOST_INTERVAL,
        workers: int = 0,
        deadline: float = PARSE_DEADLINE,
        clients: Clients | None = None,
    ) -> None:
        """`clients`: kept-alive connections to share with the caller's other fetches."""
        self.policy = replace(policy, max_bytes=min(policy.max_bytes, PAGE_MAX_BYTES))
        self.clients = clients
        self.host_interval = host_interval
        self.deadline = deadline
        self.pages = ParsePool(workers)
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def close(self, wait: bool = True) -> None:
        """Stop the page workers: after the pages in flight, or at once."""
        self.pages.close(wait)

    def complete_all(
        self, entries: Sequence[FeedEntry], mode: str, feed_url: str
    ) -> tuple[tuple[FeedEntry, ...], list[str]]:
        """Entries with full text where they need it; and why each failure failed.

        The pages of one feed share one budget of `deadline` seconds of reading
        (each page's own deadline is what is left of it): without it, a feed of 200
        entries linking to pages that each run to the deadline would hold its poll
        for 200 deadlines. Entries past the budget keep their summaries.
        """
        done: list[FeedEntry] = []
        failures: list[str] = []
        budget = _Budget(self.deadline)
        for entry in entries:
            if needs_full_text(entry, mode):
                if budget.seconds <= 0:
                    failures.append(
                        f"reading this feed's pages took its {self.deadline:g} s for this "
                        "poll; the later entries keep their summaries"
                    )
                else:
                    entry, problem = self.complete(entry, feed_url, budget)
                    if problem:
                        failures.append(problem)
            done.append(entry)
        return tuple(done), failures

    def complete(
        self, entry: FeedEntry, feed_url: str, budget: _Budget | None = None
    ) -> tuple[FeedEntry, str | None]:
        """The entry with its page's main text as content; or unchanged, and why.

        `budget`: seconds of page reading left (at most `deadline` are used), less
        what this page took.
        """
        url = normalise_url(entry.link, feed_url)
        self._wait_for(urlsplit(url).hostname or "")
        deadline = min(self.deadline, budget.seconds) if budget else self.deadline
        try:
            result = fetch(url, self.policy, clients=self.clients)
            if result.status != 200:
                raise FetchError(url, f"HTTP {result.status}")
            started = time.monotonic()
            try:
                page = self.pages.call(read_page, result.content, url, deadline=deadline)
            except WorkerError as e:
                raise ExtractError(url, f"reading the page {e.reason}") from e
            finally:
                if budget:
                    budget.seconds -= time.monotonic() - started
        except (FetchError, ExtractError) as e:
            log.warning("full text unavailable, keeping the summary url=%s: %s", url, e)
            return entry, str(e)
        warning = f"page HTML: {page.warning}" if page.warning else None
        if warning:
            log.warning("page HTML over the limits url=%s: %s", url, page.warning)
        # As `read_fragment` would read them back from the body, without parsing it;
        # a headline repeated as the lead is the entry's title too (pageclean.py).
        paragraphs = drop_title_repeats(clean_paragraphs(page.paragraphs), [entry.title])
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        return with_text(replace(entry, content=body), paragraphs, body, warning), None

    def _wait_for(self, host: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.host_interval
        if slot > now:
            time.sleep(slot - now)
