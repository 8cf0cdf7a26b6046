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
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from aggregator.errors import ExtractError, FetchError
from aggregator.fetch import FetchPolicy, fetch
from aggregator.htmltext import extract_html
from aggregator.parse import FeedEntry
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


class FullTextFetcher:
    """Fetches article pages for summary-only entries, rate-limited per host.

    Safe to share between threads: the per-host slots are reserved under a
    lock and the waiting happens outside it.
    """

    def __init__(self, policy: FetchPolicy, host_interval: float = HOST_INTERVAL) -> None:
        self.policy = replace(policy, max_bytes=min(policy.max_bytes, PAGE_MAX_BYTES))
        self.host_interval = host_interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def complete_all(
        self, entries: Sequence[FeedEntry], mode: str, feed_url: str
    ) -> tuple[tuple[FeedEntry, ...], list[str]]:
        """Entries with full text where they need it; and why each failure failed."""
        done: list[FeedEntry] = []
        failures: list[str] = []
        for entry in entries:
            if needs_full_text(entry, mode):
                entry, problem = self.complete(entry, feed_url)
                if problem:
                    failures.append(problem)
            done.append(entry)
        return tuple(done), failures

    def complete(self, entry: FeedEntry, feed_url: str) -> tuple[FeedEntry, str | None]:
        """The entry with its page's main text as content; or unchanged, and why."""
        url = normalise_url(entry.link, feed_url)
        self._wait_for(urlsplit(url).hostname or "")
        try:
            result = fetch(url, self.policy)
            if result.status != 200:
                raise FetchError(url, f"HTTP {result.status}")
            _, _, paragraphs, _ = extract_html(result.content, url)
        except (FetchError, ExtractError) as e:
            log.warning("full text unavailable, keeping the summary url=%s: %s", url, e)
            return entry, str(e)
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        return replace(entry, content=body), None

    def _wait_for(self, host: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.host_interval
        if slot > now:
            time.sleep(slot - now)
