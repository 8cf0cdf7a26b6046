"""Feed check: the one fetch and parse `sources add` makes before it subscribes.

Without it, an HTML page, a 404, a binary file or a closed port were all
"added", and the mistake showed only later as a failing feed. What it decides,
and why:

* **The poller's own rules.** The URL is fetched once by `fetch.fetch` under
  the `FetchPolicy` the poller builds from `[feeds]` (public addresses only
  unless `feeds.allow` says otherwise, the deadline, the size cap, redirects),
  and read by `discover.inspect_document` (`parse.parse_feed` inside) in a
  worker process of a small `ParsePool` with the poll's parse deadline: a
  hostile body costs a killed worker, never an unbounded parse in the CLI.
  What passes here is what a poll can fetch and read. The pool always has a
  worker process, even when `feeds.parse_workers` is 1 (inline parsing).
* **An HTML page is a way to a feed.** A page that links exactly one feed
  leads to that feed, fetched and checked the same way, and the feed's URL is
  subscribed (the page's is not); several are listed for the user to choose
  (`SeveralFeedsError`; `pick` chooses by number, 1-based, in page order);
  none is an error. One level only: a linked "feed" that is a page again is an
  error, not a second search.
* **Every failure is one line** (`FeedCheckError`: the URL and the reason),
  and nothing is subscribed. An address refused by the SSRF policy names the
  key that would allow it, with the entry to add (`feeds.allow =
  ["127.0.0.1:8080"]`), since that is what someone adding a feed on their own
  network needs to know.

The URL subscribed for a feed given directly is the one given (its identity;
the poller follows its permanent redirects later), whatever it redirected to.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.errors import FeedCheckError, FetchError, ParseError, SeveralFeedsError, WorkerError
from aggregator.model import FeedLink
from aggregator.plural import counted
from aggregator.sources.discover import FeedDocument, Found, LinkingPage, inspect_document
from aggregator.sources.fetch import FetchPolicy, fetch
from aggregator.sources.fulltext import PAGE_MAX_BYTES
from aggregator.sources.workers import PARSE_DEADLINE, ParsePool

_REFUSED = re.compile(r"refused: \S+ resolves to non-public address (\S+)$")
_KINDS = (
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_unspecified", "an unspecified"),
    ("is_reserved", "a reserved"),
    ("is_private", "a private"),
)


@dataclass(frozen=True, slots=True)
class CheckedFeed:
    """A feed that answered and parsed: what to subscribe, and what was found."""

    url: str  # to subscribe: the URL given, or the one the page linked
    format: str
    title: str
    entries: int
    warning: str | None
    found_on: str | None = None  # the page that linked it, when it was discovered


def fetch_policy(config: Config) -> FetchPolicy:
    """The poller's fetch policy for this configuration."""
    return FetchPolicy(
        max_bytes=config.feeds.max_bytes,
        deadline=config.feeds.deadline_seconds,
        allow=config.feeds.allow,
    )


def check_feed(
    url: str, config: Config, pick: int | None = None, deadline: float = PARSE_DEADLINE
) -> CheckedFeed:
    """Fetch and read `url` as a poll would; the feed it is or leads to.

    FeedCheckError when there is none (SeveralFeedsError when the page links
    several and `pick` chose none); `deadline`: seconds of parsing per document.
    """
    policy = fetch_policy(config)
    pool = ParsePool(2)  # one worker process is started, on first use
    try:
        found = _inspect(url, policy, pool, deadline)
        if isinstance(found, FeedDocument):
            return _checked(url, found)
        link = _choose(url, found, pick)
        try:
            linked = _inspect(link.url, policy, pool, deadline)
        except FeedCheckError as e:
            raise FeedCheckError(url, f"it links {link.url}, but {e.reason}") from e
        if isinstance(linked, LinkingPage):
            raise FeedCheckError(url, f"it links {link.url}, which is an HTML page, not a feed")
        return _checked(link.url, linked, found_on=url)
    finally:
        pool.close()


def _checked(url: str, found: FeedDocument, found_on: str | None = None) -> CheckedFeed:
    return CheckedFeed(url, found.format, found.title, found.entries, found.warning, found_on)


def _choose(url: str, page: LinkingPage, pick: int | None) -> FeedLink:
    links = page.links
    if not links:
        note = f" ({page.warning})" if page.warning else ""
        raise FeedCheckError(url, f"an HTML page that links no feed{note}")
    if pick is not None:
        if not 1 <= pick <= len(links):
            raise FeedCheckError(
                url, f"--pick {pick}: the page links {counted(len(links), 'feed')}"
            )
        return links[pick - 1]
    if len(links) > 1:
        raise SeveralFeedsError(url, links)
    return links[0]


def _inspect(url: str, policy: FetchPolicy, pool: ParsePool, deadline: float) -> Found:
    """Fetch `url` and read what came back in a worker; FeedCheckError if it failed."""
    try:
        result = fetch(url, policy)
    except FetchError as e:
        raise FeedCheckError(url, fetch_reason(e, url)) from e
    if not 200 <= result.status < 300:
        raise FeedCheckError(url, _status(result.status))
    try:
        return pool.call(
            inspect_document,
            result.content,
            result.headers,
            result.final_url,
            PAGE_MAX_BYTES,
            deadline=deadline,
        )
    except ParseError as e:
        raise FeedCheckError(url, e.reason) from e
    except WorkerError as e:
        raise FeedCheckError(url, f"reading it {e.reason}") from e


def _status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def fetch_reason(error: FetchError, url: str) -> str:
    """The fetcher's reason, with the `feeds.allow` entry that would let a refused
    non-public address through (and where a redirect led, when it did)."""
    where = "" if error.url == url else f"redirected to {error.url}: "
    refused = _REFUSED.search(error.reason)
    if refused is None:
        return where + error.reason
    parts = urlsplit(error.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = refused.group(1)
    kind = "a non-public"
    try:
        address = ipaddress.ip_address(shown)
    except ValueError:
        entry = f"{host}:{port}"
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        kind = next((k for test, k in _KINDS if getattr(address, test)), kind)
        # FetchPolicy reads "host:port" only for hosts without a colon; IPv6 needs a network.
        entry = f"{host}:{port}" if ":" not in host else f"{address}/{address.max_prefixlen}"
    subject = f"{host} is" if host == shown else f"{host} resolves to"
    address_note = "" if host == shown else f" ({shown})"
    return f'{where}{subject} {kind} address{address_note}; allow it with feeds.allow = ["{entry}"]'
