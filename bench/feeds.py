"""Feeds benchmark: poll 1,000 loopback feeds twice (all 200, then all 304), ours against reader.

Run from the repository root (`make bench-feeds` sets up both virtualenvs first):

    python -m bench.feeds --feeds 1000 --entries 20 --rounds 3 --out /tmp/feeds.md

What it measures, and why (issue 3, the speed target of feed polling):

* **The feeds.** `--feeds` RSS 2.0 documents of `--entries` items each, generated
  deterministically (seeded) from the ingest benchmark's corpus (`bench/corpus.py`:
  paragraphs of news-like synthetic text, 10% of articles carrying a passage copied
  from another). Every item has its full text in `content:encoded` (so neither
  client fetches article pages) and a one-sentence `description`. A share of the
  stories (`--syndicated`, default 10%) is syndicated: the same text, with its last
  paragraph sometimes dropped, is published by 2 to 5 feeds under their own GUIDs
  and links, so deduplication has real work to do.
* **The server** runs in a separate process (so its CPU is not counted against
  either client, though it shares the machine's cores: its CPU seconds per poll
  are reported) on 127.0.0.1 (`--hosts N` spreads the feeds over 127.0.0.1 ..
  127.0.0.N, one listening socket each). It is a `ThreadingHTTPServer` speaking
  HTTP/1.1 with keep-alive and TCP_NODELAY, serves pre-rendered bodies (gzip
  when asked), an `ETag` and a `Last-Modified` with every feed, and answers
  `If-None-Match` / `If-Modified-Since` with 304. It counts the statuses it
  sent; each worker reads those counts before and after each poll, so the report
  shows that the first poll was all 200s and the second all 304s.
* **The clients**, each in a fresh subprocess (its peak RSS is its own), on the
  same feed URLs:

  - *ours*: a new database, the feeds subscribed from an OPML file
    (`import_opml`), then two polls, each timed as
    `Poller(store, config)` + `list(poller.poll(feeds))` + `poller.close()` (when
    the poller has `close`): exactly what `aggregator poll --all` does, including
    the whole dedup pipeline (extract, segment, sign, index, verify, cluster,
    FTS). The configuration is the default one plus `feeds.allow = 127.0.0.0/8`.
  - *reader* 3.27 (PyPI `reader`, Python >= 3.12, its own virtualenv
    `.venv-reader`): `make_reader(new database)`, `add_feed` for each URL, then
    `update_feeds(scheduled=False, workers=W)` twice. `scheduled=False` because
    reader 3.21+ only updates feeds whose schedule is due, and right after the
    first update none is, so the second call would do nothing at all. `workers=1`
    is reader's default; `workers` > 1 retrieves feeds in a thread pool (parsing
    stays on the calling thread). reader does no deduplication and, by default,
    no full-text indexing: it stores feeds and entries.

  Reported per client: the two poll times, the wall time of its whole process
  (start-up, subscribing, both polls), the largest peak RSS of any one of its
  processes (`ru_maxrss`) and, sampled ten times a second, the peak of the
  summed RSS of its process tree (which counts a parse pool too).
* **CPU: every process a client starts, at any depth** (issue 15;
  `bench/proccpu.py` says how and why). Our parse pool's workers are children
  of a multiprocessing fork server, which the client process never waits for,
  so `getrusage(RUSAGE_CHILDREN)` missed the whole pool. Each client now runs
  under a small wrapper process that is a child subreaper: everything orphaned
  in the tree is re-parented to it and reaped, so its `RUSAGE_CHILDREN` holds
  the CPU of every process the client ran, workers replaced or killed mid-run
  included; the client's own share ("main") is read from /proc while it is a
  zombie, and the rest is "children". Per poll, the client reads its own tree
  from /proc at the poll's start and end (its own rusage, and each descendant's
  own and reaped times, the fork server's included); it is a subreaper too, so
  nothing orphaned during a poll leaves its tree. Both contenders are measured
  the same way, and the report gives CPU milliseconds per entry served (main,
  children, total) beside the wall time, per client and round.
* **Rounds.** Every round runs every client once, in a rotated order. The
  machine is a shared, noisy 2-core box, so ratios are taken within a round
  (reader / ours, ours first / second) and the medians over rounds reported.

Workers run a copy of `aggregator/` and `bench/` taken when the run starts
(`--ref REV` takes `aggregator/` from a git revision instead), so edits to the
checkout during a run cannot mix two versions in one table.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from bench import proccpu, statements

ROOT = Path(__file__).resolve().parent.parent
SEED = 20_240_601
READER_VERSION = "3.27"
DEFAULT_READER_PYTHON = ROOT / ".venv-reader" / "bin" / "python"

SECTIONS = (
    "World",
    "Politics",
    "Business",
    "Markets",
    "Technology",
    "Science",
    "Health",
    "Sport",
    "Culture",
    "Climate",
)
AUTHORS = ("Staff", "Wire desk", "Newsroom", "Correspondent", "Reporter", "Editor")


# -- the feeds ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Story:
    """One generated article: a title and its paragraphs, with when it was published."""

    index: int
    title: str
    paragraphs: tuple[str, ...]
    published: datetime


@dataclass(frozen=True, slots=True)
class Item:
    story: Story
    feed: int
    copy: int  # 0: the first publication; n > 0: the n-th syndicated copy


@dataclass(frozen=True, slots=True)
class FeedDoc:
    """One served feed: its path, body (plain and gzip), and validators."""

    path: str
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class FeedSet:
    docs: list[FeedDoc]
    stories: int
    syndicated_stories: int
    syndicated_items: int
    entries: int
    pages: dict[str, bytes]  # path -> article page (`pages` mode), else empty


def _stories(count: int, seed: int) -> Iterator[Story]:
    """`count` articles of the ingest benchmark's corpus, published over about two days."""
    from bench.corpus import Corpus  # numpy and aggregator: only the server imports them

    corpus = Corpus(count, seed=seed, per_day=max(1, count // 2))
    for index, doc in enumerate(corpus.documents()):
        lines = doc.content.decode("utf-8").split("\n")
        yield Story(index, lines[0], tuple(lines[1:]), doc.modified_at)


def build_feeds(
    n_feeds: int,
    n_entries: int,
    seed: int = SEED,
    syndicated: float = 0.10,
    pages: Sequence[str] = (),
) -> FeedSet:
    """The feed documents: stories dealt to feeds, some to 2-5 feeds at once.

    `pages` (the server's base URLs, one per host): summary-only feeds instead.
    Each item has only its one-sentence description, and its link is an HTML
    article page on the same server (with a header, navigation and a footer
    around the text), so a client must fetch and extract every page. Pages are
    dealt over the hosts by story, as links to many sites are: a client's
    politeness (one page a second per host) then holds a feed up only where
    two of its pages share a host.
    """
    rng = random.Random(seed)
    per_feed: list[list[Item]] = [[] for _ in range(n_feeds)]
    open_feeds = list(range(n_feeds))
    slots = n_feeds * n_entries
    # About 1 + 2.5 * syndicated slots per story; generate a few spare stories.
    stories = _stories(int(slots / (1 + 2.5 * syndicated)) + n_feeds + 100, seed)
    used = syndicated_stories = syndicated_items = 0
    for story in stories:
        if not open_feeds:
            break
        used += 1
        copies = rng.randint(2, 5) if rng.random() < syndicated else 1
        chosen = rng.sample(range(len(open_feeds)), min(copies, len(open_feeds)))
        if len(chosen) > 1:
            syndicated_stories += 1
            syndicated_items += len(chosen) - 1
        for copy, position in enumerate(chosen):
            per_feed[open_feeds[position]].append(Item(story, open_feeds[position], copy))
        # Remove the feeds that are now full, highest position first.
        for position in sorted(chosen, reverse=True):
            if len(per_feed[open_feeds[position]]) == n_entries:
                open_feeds[position] = open_feeds[-1]
                open_feeds.pop()
    if open_feeds:
        raise RuntimeError("the story generator ran out of stories")
    served: dict[str, bytes] = {}
    docs = [_feed_doc(number, items, rng, pages, served) for number, items in enumerate(per_feed)]
    return FeedSet(docs, used, syndicated_stories, syndicated_items, slots, served)


def _slug(title: str) -> str:
    return "-".join(title.lower().split()[:6])


def _page(number: int, title: str, published: datetime, html: str) -> bytes:
    """An article page as a news site serves one: the text inside site furniture."""
    nav = "".join(f'<li><a href="/{s.lower()}/">{s}</a></li>' for s in SECTIONS)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} - "
        f"News {number:04d}</title></head><body><header><a href=/>News {number:04d}</a>"
        f"<nav><ul>{nav}</ul></nav></header><main><article><h1>{escape(title)}</h1>"
        f'<p class=byline>By {AUTHORS[number % len(AUTHORS)]} {number:04d}, <time datetime="'
        f'{published.isoformat()}">{format_datetime(published)}</time></p>{html}</article>'
        f"<aside><h2>Most read</h2><ul><li><a href=/a>Another story</a></li></ul></aside>"
        f"</main><footer><p>Copyright News {number:04d}. All rights reserved.</p>"
        f"<p><a href=/privacy>Privacy</a> <a href=/terms>Terms</a></p></footer></body></html>"
    ).encode()


def _feed_doc(
    number: int,
    items: list[Item],
    rng: random.Random,
    bases: Sequence[str] = (),
    pages: dict[str, bytes] | None = None,
) -> FeedDoc:
    """One feed's RSS document; with `bases`, summary-only items linking to article
    pages on those servers, which are added to `pages`."""
    site = f"https://news{number:04d}.example.com"
    dated = []
    for item in items:
        story = item.story
        published = story.published + timedelta(minutes=17 * item.copy)
        paragraphs = story.paragraphs
        if item.copy and len(paragraphs) > 3 and rng.random() < 0.5:
            paragraphs = paragraphs[:-1]  # a syndicated copy, trimmed at the end
        dated.append((published, item, paragraphs))
    dated.sort(key=lambda d: d[0], reverse=True)  # newest first, as feeds are
    newest = dated[0][0].replace(microsecond=0)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>News {number:04d}</title>",
        f"<link>{site}/</link>",
        f"<description>Latest stories from News {number:04d}</description>",
        "<language>en-us</language>",
        f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate>",
        "<generator>bench.feeds</generator>",
        f'<atom:link href="{site}/feed.xml" rel="self" type="application/rss+xml"/>',
    ]
    for published, item, paragraphs in dated:
        story = item.story
        link = f"{site}/{published:%Y/%m/%d}/{_slug(story.title)}-{story.index}"
        first = paragraphs[0].split(". ")[0].rstrip(".") + "."
        html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        if bases and pages is not None:
            path = f"/pages/{number:04d}/{story.index}.html"
            pages[path] = _page(number, story.title, published, html)
            link = bases[story.index % len(bases)] + path
        sections = rng.sample(SECTIONS, 2)
        out += [
            "<item>",
            f"<title>{escape(story.title)}</title>",
            f"<link>{escape(link)}</link>",
            f'<guid isPermaLink="false">news{number:04d}-{story.index}</guid>',
            f"<pubDate>{format_datetime(published)}</pubDate>",
            f"<dc:creator>{rng.choice(AUTHORS)} {number:04d}</dc:creator>",
            *(f"<category>{s}</category>" for s in sections),
            f"<description>{escape(first)}</description>",
            *([] if bases else [f"<content:encoded><![CDATA[{html}]]></content:encoded>"]),
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    body = "\n".join(out).encode("utf-8")
    etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    return FeedDoc(f"/feeds/{number:04d}.xml", body, gzip.compress(body, 6, mtime=0), etag, newest)


# -- the server (its own process) -------------------------------------------------------


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.bytes = 0
        self.connections = 0

    def add(self, status: int, size: int) -> None:
        with self.lock:
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
            self.bytes += size

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "statuses": dict(self.statuses),
                "bytes": self.bytes,
                "connections": self.connections,
                "cpu_seconds": time.process_time(),
            }


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], counts: _Counts, gz: bool) -> None:
        super().__init__(address, FeedHandler)
        self.feeds: dict[str, FeedDoc] = {}  # set once built (they may name the server)
        self.pages: dict[str, bytes] = {}
        self.counts = counts
        self.gzip = gz


def _not_modified(doc: FeedDoc, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110: If-None-Match (weak comparison) wins; else If-Modified-Since."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or doc.etag in tags
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return doc.last_modified <= since
    return False


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-feeds/1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a
    # keep-alive client would wait ~40 ms for the delayed ACK on every response.
    disable_nagle_algorithm = True
    server: FeedServer

    def setup(self) -> None:
        super().setup()
        with self.server.counts.lock:
            self.server.counts.connections += 1

    def do_GET(self) -> None:
        if self.path == "/_stats":
            self._send(200, json.dumps(self.server.counts.snapshot()).encode(), count=False)
            return
        page = self.server.pages.get(self.path)
        if page is not None:
            self._send(200, page, content_type="text/html; charset=utf-8")
            return
        doc = self.server.feeds.get(self.path)
        if doc is None:
            self._send(404, b"not found\n")
            return
        validators = {"ETag": doc.etag, "Last-Modified": format_datetime(doc.last_modified, True)}
        if _not_modified(
            doc, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        ):
            self._send(304, b"", validators)
            return
        accepts = self.headers.get("Accept-Encoding", "")
        if self.server.gzip and "gzip" in accepts:
            headers = {**validators, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            self._send(200, doc.gzipped, headers, "application/rss+xml; charset=utf-8")
        else:
            self._send(200, doc.body, validators, "application/rss+xml; charset=utf-8")

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        count: bool = True,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)
        if count:
            self.server.counts.add(status, len(body))

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _address(k: int) -> str:
    """The k-th loopback address from 127.0.0.1 on (the last byte never 0 or 255)."""
    high, low = divmod(k, 254)
    return f"127.0.{high}.{low + 1}"


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """What the feed server generates and how it serves it (`serve`, `feed_server`).

    `hosts`: loopback addresses to listen on; `gz`: gzip when asked; `pages`:
    summary-only feeds whose items link to article pages served here."""

    feeds: int
    entries: int
    seed: int = SEED
    syndicated: float = 0.10
    hosts: int = 1
    gz: bool = True
    pages: bool = False

    def arguments(self) -> list[str]:
        """The server process's command-line arguments for this spec."""
        return [
            *("--feeds", str(self.feeds), "--entries", str(self.entries)),
            *("--seed", str(self.seed), "--syndicated", str(self.syndicated)),
            *("--hosts", str(self.hosts)),
            *([] if self.gz else ["--no-gzip"]),
            *(["--pages"] if self.pages else []),
        ]


def serve(spec: ServeSpec) -> None:
    """Generate the feeds, serve them, print one JSON line with the URLs; stop when stdin
    ends."""
    counts = _Counts()
    hosts = spec.hosts
    servers = [FeedServer((_address(k), 0), counts, spec.gz) for k in range(hosts)]
    bases = [f"http://{_address(k)}:{s.server_address[1]}" for k, s in enumerate(servers)]
    started = time.perf_counter()
    feed_set = build_feeds(
        spec.feeds, spec.entries, spec.seed, spec.syndicated, bases if spec.pages else ()
    )
    generated = time.perf_counter() - started
    by_path = {doc.path: doc for doc in feed_set.docs}
    for server in servers:
        server.feeds, server.pages = by_path, feed_set.pages
        threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = [bases[i % hosts] + doc.path for i, doc in enumerate(feed_set.docs)]
    info = {
        "urls": urls,
        "stats": bases[0] + "/_stats",
        "generate_seconds": generated,
        "stories": feed_set.stories,
        "syndicated_stories": feed_set.syndicated_stories,
        "syndicated_items": feed_set.syndicated_items,
        "entries": feed_set.entries,
        "body_bytes": sum(len(d.body) for d in feed_set.docs),
        "gzip_bytes": sum(len(d.gzipped) for d in feed_set.docs),
        "pages": len(feed_set.pages),
        "server_pid": os.getpid(),
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # the driver closes our stdin to stop us
    for server in servers:
        server.shutdown()
        server.server_close()


# -- the clients (each in its own process) -----------------------------------------------


def _server_stats(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    keys = set(before["statuses"]) | set(after["statuses"])
    return {
        "statuses": {
            k: after["statuses"].get(k, 0) - before["statuses"].get(k, 0)
            for k in sorted(keys)
            if after["statuses"].get(k, 0) != before["statuses"].get(k, 0)
        },
        "bytes": after["bytes"] - before["bytes"],
        "connections": after["connections"] - before["connections"],
        "server_cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"],
    }


def _phase_cpu(span: proccpu.CpuSplit) -> dict[str, float]:
    """A poll's CPU seconds: every process of the client (`cpu_seconds`), split into its
    own process and all the others; `cpu_rusage_seconds` is what getrusage alone saw."""
    return {
        "cpu_seconds": span.total,
        "cpu_main_seconds": span.main,
        "cpu_children_seconds": span.children,
        "cpu_rusage_seconds": span.rusage,
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _opml(urls: Sequence[str], path: Path) -> None:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">', "<body>"]
    lines += [
        f'<outline type="rss" text="News {i:04d}" xmlUrl={quoteattr(url)}/>'
        for i, url in enumerate(urls)
    ]
    lines += ["</body>", "</opml>", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def work_ours(
    urls: list[str], db: Path, stats_url: str, profile: Path | None, timed: bool = False
) -> dict[str, Any]:
    """Subscribe from OPML into a new database, then poll every feed twice
    (`timed`: every SQL statement timed, bench/statements.py)."""
    import cProfile

    from aggregator.config import Config, FeedsConfig
    from aggregator.ingest.feeds import import_opml, list_feeds
    from aggregator.ingest.poll import Poller
    from aggregator.storage.store import Store

    config = Config(database=db, feeds=FeedsConfig(allow=("127.0.0.0/8",)))
    config.validate()
    if timed:
        statements.install()
    store = Store(config.database, config.dedup.minhash)
    opml = db.with_suffix(".opml")
    _opml(urls, opml)
    started = time.perf_counter()
    added, skipped = import_opml(store, opml)
    subscribe = time.perf_counter() - started
    meter = proccpu.TreeMeter()
    phases = []
    for phase in ("first", "second"):
        feeds = [f for f in list_feeds(store) if f.enabled]
        before = _server_stats(stats_url)
        profiler = cProfile.Profile() if profile else None
        cpu = meter.sample()
        sql_before = statements.TALLY.snapshot()
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        poller = Poller(store, config)
        t1 = time.perf_counter()
        outcomes = list(poller.poll(feeds))
        t2 = time.perf_counter()
        close = getattr(poller, "close", None)
        if callable(close):
            close()
        t3 = time.perf_counter()
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{phase}")
        span = proccpu.TreeMeter.between(cpu, meter.sample())
        timings = statements.between(sql_before, statements.TALLY.snapshot())
        server = _delta(before, _server_stats(stats_url))
        statuses: dict[str, int] = {}
        for outcome in outcomes:
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        phases.append(
            {
                "phase": phase,
                "seconds": t3 - t0,
                "setup_seconds": t1 - t0,
                "poll_seconds": t2 - t1,
                "close_seconds": t3 - t2,
                **_phase_cpu(span),
                "feeds": len(feeds),
                "outcomes": statuses,
                "statements": timings,
                "new_entries": sum(o.new for o in outcomes),
                "server": server,
            }
        )
    counts = {
        "articles": store.execute("SELECT count(*) FROM articles").fetchone()[0],
        "passage_matches": store.execute(
            "SELECT count(*) FROM passage_carriers"
            if store.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'passage_carriers'"
            ).fetchone()
            else "SELECT count(*) FROM passage_matches"
        ).fetchone()[0],
        "multi_article_clusters": store.execute(
            "SELECT count(*) FROM (SELECT cluster_id FROM cluster_members "
            "GROUP BY cluster_id HAVING count(*) > 1)"
        ).fetchone()[0],
        "clustered_articles": store.execute(
            "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM cluster_members "
            "GROUP BY cluster_id HAVING count(*) > 1)"
        ).fetchone()[0],
    }
    store.close()
    return {
        "client": "ours",
        "subscribed": added,
        "subscribe_skipped": skipped,
        "subscribe_seconds": subscribe,
        "phases": phases,
        "counts": counts,
        "peak_rss_self_mb": _peak_rss_mb(),
        "python": platform.python_version(),
    }


def work_reader(urls: list[str], db: Path, stats_url: str, workers: int) -> dict[str, Any]:
    """reader: add every feed to a new database, then `update_feeds` twice."""
    # Only in the reader virtualenv, which mypy does not see.
    import reader as reader_module  # type: ignore[import-not-found,unused-ignore]
    from reader import make_reader  # type: ignore[import-not-found,unused-ignore]

    reader = make_reader(str(db))
    started = time.perf_counter()
    for url in urls:
        reader.add_feed(url)
    subscribe = time.perf_counter() - started
    meter = proccpu.TreeMeter()
    phases = []
    for phase in ("first", "second"):
        before = _server_stats(stats_url)
        cpu = meter.sample()
        t0 = time.perf_counter()
        reader.update_feeds(scheduled=False, workers=workers)
        t1 = time.perf_counter()
        span = proccpu.TreeMeter.between(cpu, meter.sample())
        server = _delta(before, _server_stats(stats_url))
        phases.append(
            {
                "phase": phase,
                "seconds": t1 - t0,
                **_phase_cpu(span),
                "feeds": len(urls),
                "broken_feeds": reader.get_feed_counts(broken=True).total,
                "server": server,
            }
        )
    counts = {"entries": reader.get_entry_counts().total}
    reader.close()
    return {
        "client": f"reader-w{workers}",
        "reader_version": reader_module.__version__,
        "subscribe_seconds": subscribe,
        "phases": phases,
        "counts": counts,
        "peak_rss_self_mb": _peak_rss_mb(),
        "python": platform.python_version(),
    }


# -- the driver ---------------------------------------------------------------------------


def _tree_rss_kib(root: int, include_root: bool = True) -> int:
    """Summed RSS of all the descendants of `root`, and of `root` unless told not to."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:  # noqa: PTH123 (hot loop)
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    total = 0
    todo = [root] if include_root else list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:  # noqa: PTH123
                total += int(f.read().split()[1]) * page_kib
        except OSError:
            continue
    return total


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree until stopped; `peak_kib` is the largest."""

    def __init__(self, pid: int, interval: float = 0.1, include_root: bool = True) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.include_root = include_root
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(self.pid, self.include_root))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass(frozen=True, slots=True)
class Client:
    name: str  # "ours" or "reader-wN"
    python: str
    args: tuple[str, ...]


def run_worker(client: Client, source: Path, common: list[str], report: Path) -> dict[str, Any]:
    """Run one client in a fresh process; add its wall time, CPU and peak RSS.

    The client runs under `python -m bench.proccpu` (a subreaper that reaps every
    process of the client's tree), which writes the CPU of the whole run, split
    into the client's own process and all the others, to `report`. The RSS
    sampler starts at the wrapper but leaves the wrapper's own RSS out.
    """
    command = [client.python, "-m", "bench.feeds", *common, *client.args]
    command = proccpu.accounted_command(command, report)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=source, text=True)
    sampler = TreeSampler(process.pid, include_root=False)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read()
    process.wait()
    sampler.stop()
    process.stdout.close()
    if process.returncode != 0:
        raise RuntimeError(f"{client.name} worker failed with exit code {process.returncode}")
    accounted = proccpu.read_report(report)
    report.unlink()
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["wall_seconds"] = accounted.wall_seconds
    result["peak_rss_mb"] = accounted.max_rss_kib / 1024
    result["peak_tree_rss_mb"] = max(sampler.peak_kib, accounted.max_rss_kib) / 1024
    result["process_cpu"] = {
        "main_seconds": accounted.main_cpu_seconds,
        "children_seconds": accounted.children_cpu_seconds,
        "total_seconds": accounted.total_cpu_seconds,
        "rusage_seconds": accounted.client_rusage_cpu_seconds,
        "orphans_reaped": accounted.orphans_reaped,
        "killed": accounted.killed,
    }
    result["load_after"] = os.getloadavg()[0]
    return result


def reader_python(path: Path) -> tuple[str | None, str]:
    """The interpreter to run reader with, or None and why not."""
    if not path.exists():
        return None, f"no reader interpreter at {path} (needs Python >= 3.12; `make bench-feeds`)"
    probe = subprocess.run(
        [str(path), "-c", "import sys, reader; print(sys.version.split()[0], reader.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return None, f"{path} cannot import reader: {probe.stderr.strip().splitlines()[-1:]}"
    python_version, version = probe.stdout.split()
    if version != READER_VERSION:
        return str(path), f"reader {version} (not {READER_VERSION}) on Python {python_version}"
    return str(path), f"reader {version} on Python {python_version}"


def machine() -> dict[str, str]:
    from bench.ingest import machine as ingest_machine

    info = ingest_machine()
    with Path("/proc/cpuinfo").open() as f:
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in f) if v}
    info["cpu_family_model"] = (
        f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
    )
    return info


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _statuses(phase: dict[str, Any]) -> str:
    got = phase["server"]["statuses"]
    return ", ".join(f"{n} x {s}" for s, n in sorted(got.items())) or "none"


def render(
    rounds: list[dict[str, dict[str, Any]]],
    clients: list[str],
    command: str,
    info: dict[str, str],
    server: dict[str, Any],
    reader_note: str,
    loads: list[float],
    started: datetime,
) -> str:
    """The Markdown report: set-up, the table of medians, the ratios and the targets."""

    def med(client: str, key: str, phase: int | None = None) -> float:
        values = [
            float(r[client]["phases"][phase][key] if phase is not None else r[client][key])
            for r in rounds
            if client in r
        ]
        return _median(values)

    n = len(rounds)
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}, {info['cpu_family_model']}), "
        f"{info['ram']} RAM, Python {info['python']} (ours), {reader_note}  ",
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']}), "
        f"aggregator sources digest {info['code']}  ",
        f"Run started: {started:%Y-%m-%d %H:%M UTC}; 1-minute load average "
        f"{min(loads):.2f} to {max(loads):.2f} during the run  ",
        f"Feeds: {len(server['urls']):,} feeds, {server['entries']:,} entries "
        f"({server['stories']:,} stories; {server['syndicated_stories']:,} of them syndicated, "
        f"giving {server['syndicated_items']:,} extra copies), "
        f"{server['body_bytes'] / 1e6:.1f} MB of XML ({server['gzip_bytes'] / 1e6:.1f} MB gzip), "
        f"served from {len({u.split('/')[2] for u in server['urls']})} loopback address(es)",
        "",
        f"Medians of {n} round(s); each round ran every client once in a fresh process.",
        "",
        "| Client | First poll s (all 200) | Second poll s (all 304) | Process wall s "
        "| Peak RSS MB (largest process) | Peak RSS MB (process tree) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for client in clients:
        lines.append(
            f"| {_label(client)} | {med(client, 'seconds', 0):.2f} | "
            f"{med(client, 'seconds', 1):.3f} | {med(client, 'wall_seconds'):.1f} | "
            f"{med(client, 'peak_rss_mb'):.0f} | {med(client, 'peak_tree_rss_mb'):.0f} |"
        )
    lines += [
        "",
        "Ratios, taken within each round, then the median over rounds (higher is better for ours):",
        "",
        "| Ratio | Median | Per round |",
        "|---|---:|---|",
    ]

    def ratio_row(label: str, values: list[float]) -> None:
        per_round = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {label} | {_median(values):.2f}x | {per_round} |")

    ratios: dict[str, float] = {}
    for client in clients:
        if client == "ours":
            continue
        for phase, name in ((0, "first"), (1, "second")):
            values = [
                r[client]["phases"][phase]["seconds"] / r["ours"]["phases"][phase]["seconds"]
                for r in rounds
                if client in r and "ours" in r
            ]
            ratios[f"{client}/{name}"] = _median(values)
            ratio_row(f"{_label(client)} / ours, {name} poll", values)
    own = [r["ours"]["phases"][0]["seconds"] / r["ours"]["phases"][1]["seconds"] for r in rounds]
    ratios["ours"] = _median(own)
    ratio_row("ours first / ours second", own)

    lines += [
        "",
        "Ours, broken down (medians, seconds): `Poller()` set-up (includes loading the "
        "dedup index) + `poll` + `close`; CPU of every process of the client (its parse "
        "pool and fork server included); server CPU during the poll:",
        "",
        "| Poll | Total | Set-up | poll | close | Client CPU | Server CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, name in ((0, "first"), (1, "second")):
        server_cpu = _median(
            [r["ours"]["phases"][phase]["server"]["server_cpu_seconds"] for r in rounds]
        )
        cells = [
            f"{med('ours', key, phase):.3f}"
            for key in ("seconds", "setup_seconds", "poll_seconds", "close_seconds")
        ]
        cells += [f"{med('ours', 'cpu_seconds', phase):.2f}", f"{server_cpu:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(clients) > 1:
        lines += [
            "",
            "Client CPU seconds per poll (medians; every process of the client, pool included):",
            "",
            "| Client | First poll CPU s | Second poll CPU s |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {_label(c)} | {med(c, 'cpu_seconds', 0):.2f} | {med(c, 'cpu_seconds', 1):.2f} |"
            for c in clients
        ]

    lines += _cpu_table(rounds, clients, server["entries"])

    feeds = len(server["urls"])
    expected = [{"200": feeds}, {"304": feeds}]
    odd = sorted(
        {
            f"{_label(client)} (round {number + 1})"
            for number, r in enumerate(rounds)
            for client, result in r.items()
            if [p["server"]["statuses"] for p in result["phases"]] != expected
        }
    )
    if odd:
        lines += ["", f"**WARNING: not all 200 then all 304 for: {', '.join(odd)}.**"]
    last = rounds[-1]
    lines += ["", "What the server answered (last round) and what was stored:", ""]
    for client in clients:
        result = last[client]
        first, second = result["phases"]
        stored = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in result["counts"].items())
        lines.append(
            f"* {_label(client)}: first poll {_statuses(first)}; second poll "
            f"{_statuses(second)}; {stored}"
        )
    lines += ["", "Targets:", ""]
    lines += _targets(clients, ratios)
    return "\n".join(lines) + "\n"


CPU_PARTS = ("first poll", "304 poll", "whole process")


def _cpu_parts(result: dict[str, Any]) -> list[tuple[float, float, float]]:
    """(wall s, main CPU s, children CPU s) of one client's run: each poll, then the
    whole process (the subreaper's exact figures)."""
    first, second = result["phases"]
    process = result["process_cpu"]
    return [
        (first["seconds"], first["cpu_main_seconds"], first["cpu_children_seconds"]),
        (second["seconds"], second["cpu_main_seconds"], second["cpu_children_seconds"]),
        (result["wall_seconds"], process["main_seconds"], process["children_seconds"]),
    ]


def _cpu_table(
    rounds: list[dict[str, dict[str, Any]]], clients: list[str], entries: int
) -> list[str]:
    """CPU ms per entry served (main, children, total) and wall s, per client, round and part.

    Per entry of the whole feed set, the 304 poll too (where no entry is new), so
    that the three parts of a row group add up on one scale; a median row follows
    each client's rounds (the median of totals, not the sum of the medians).
    """
    per_entry = 1000 / entries
    lines = [
        "",
        f"CPU per entry, every process of the client counted: ms of CPU per entry served "
        f"({entries:,} entries; the 304 poll is divided by the same number), and wall "
        "seconds. Main is the client's own process; children are all the processes it "
        "started, at any depth (our parse pool's workers, replaced or killed ones "
        "included, and their fork server), read from /proc at each poll's start and "
        "end; the whole process's figures are exact, every process reaped under a "
        "subreaper (bench/proccpu.py):",
        "",
        "| Client | Round | Part | Wall s | Main ms/entry | Children ms/entry | Total ms/entry |",
        "|---|---|---|---:|---:|---:|---:|",
    ]

    def row(client: str, number: str, part: str, cells: tuple[float, float, float, float]) -> str:
        wall, main, children, total = cells
        return (
            f"| {_label(client)} | {number} | {part} | {wall:.2f} | {main * per_entry:.3f} | "
            f"{children * per_entry:.3f} | {total * per_entry:.3f} |"
        )

    for client in clients:
        runs = [_cpu_parts(r[client]) for r in rounds if client in r]
        for number, parts in enumerate(runs, 1):
            for part, (wall, main, children) in zip(CPU_PARTS, parts, strict=True):
                lines.append(
                    row(client, str(number), part, (wall, main, children, main + children))
                )
        if len(runs) > 1:
            for k, part in enumerate(CPU_PARTS):
                cells = [run[k] for run in runs]
                medians = (
                    _median([c[0] for c in cells]),
                    _median([c[1] for c in cells]),
                    _median([c[2] for c in cells]),
                    _median([c[1] + c[2] for c in cells]),
                )
                lines.append(row(client, "median", part, medians))
    return lines


def _label(client: str) -> str:
    if client == "ours":
        return "ours (default config)"
    workers = int(client.removeprefix("reader-w"))
    default = " (default)" if workers == 1 else ""
    return f"reader {READER_VERSION}, workers={workers}{default}"


def _targets(clients: list[str], ratios: dict[str, float]) -> list[str]:
    readers = [c for c in clients if c != "ours"]
    out = []
    # Issue 15's acceptance (issue 3 asked for 3x and 2x; the writer's dedup work
    # was not in that budget).
    for phase, need in (("first", 1.5), ("second", 2.5)):
        for client in readers:
            got = ratios[f"{client}/{phase}"]
            verdict = "met" if got >= need else "**missed**"
            out.append(
                f"* {phase} poll at least {need:g}x faster than {_label(client)}: "
                f"{got:.2f}x, {verdict}"
            )
    if not readers:
        out.append("* the reader comparisons could not run (see the Machine line)")
    got = ratios["ours"]
    verdict = "met" if got >= 10 else "**missed**"
    out.append(f"* second poll at least 10x faster than our first poll: {got:.1f}x, {verdict}")
    out.append("* peak memory: reported above")
    return out


@contextlib.contextmanager
def feed_server(source: Path, spec: ServeSpec) -> Iterator[dict[str, Any]]:
    """Start the server process; yield what it printed; stop it."""
    command = [sys.executable, "-m", "bench.feeds", "--serve", *spec.arguments()]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=source, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the feed server did not start")
        yield json.loads(line)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _spec(args: argparse.Namespace) -> ServeSpec:
    return ServeSpec(
        args.feeds,
        args.entries,
        args.seed,
        args.syndicated,
        args.hosts,
        not args.no_gzip,
        args.pages,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feeds",
        description="Poll generated loopback feeds twice (200s, then 304s), ours against reader.",
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20, help="entries per feed")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--syndicated", type=float, default=0.10, help="share of stories in 2-5 feeds"
    )
    parser.add_argument("--hosts", type=int, default=1, help="loopback addresses to serve from")
    parser.add_argument("--no-gzip", action="store_true", help="never compress responses")
    parser.add_argument(
        "--reader-workers",
        default="1,4",
        help="comma-separated `workers` values for reader's update_feeds (1 is its default)",
    )
    parser.add_argument("--reader-python", type=Path, default=DEFAULT_READER_PYTHON)
    parser.add_argument("--no-reader", action="store_true", help="run ours alone")
    parser.add_argument("--ref", help="benchmark aggregator/ as of this git revision")
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile our polls (last round) into PROFILE.first and PROFILE.second",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="time each SQL statement of our polls (last round) and report them",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    parser.add_argument("--tmp", type=Path, help="folder for the temporary databases")
    # Internal: the server and the workers.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pages", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["ours", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve(_spec(args))
        return 0
    if args.worker:
        # Orphans of the client (none expected) stay in its tree, so each poll's
        # /proc reading still sees them; the wrapper above reaps them at the end.
        proccpu.become_subreaper()
        urls = json.loads(args.urls.read_text(encoding="utf-8"))
        if args.worker == "ours":
            result = work_ours(urls, args.db, args.stats, args.profile, args.statements)
        else:
            result = work_reader(urls, args.db, args.stats, args.workers)
        print(json.dumps(result))
        return 0

    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be 1 to 254")
    try:
        proccpu.require_linux()
    except proccpu.UnsupportedPlatform as e:
        parser.error(str(e))
    command = "python -m bench.feeds " + " ".join(argv if argv is not None else sys.argv[1:])
    reader_workers = [int(w) for w in args.reader_workers.split(",") if w.strip()]
    reader_exe, reader_note = (None, "reader not run (--no-reader)")
    if not args.no_reader:
        reader_exe, reader_note = reader_python(args.reader_python)
        if reader_exe is None:
            print(f"reader comparison skipped: {reader_note}", file=sys.stderr)
    clients = [Client("ours", sys.executable, ("--worker", "ours"))]
    if reader_exe:
        clients += [
            Client(f"reader-w{w}", reader_exe, ("--worker", "reader", "--workers", str(w)))
            for w in reader_workers
        ]
    info = machine()
    from bench.ingest import code_version, git_commit, snapshot

    tmp_root = args.tmp.resolve() if args.tmp else None
    rounds: list[dict[str, dict[str, Any]]] = []
    loads = [os.getloadavg()[0]]
    started = datetime.now(UTC)
    ref = git_commit(args.ref) if args.ref else None  # HEAD may move during the run
    with tempfile.TemporaryDirectory(prefix="bench-feeds-", dir=tmp_root) as tmp:
        source = snapshot(Path(tmp) / "src", ref)
        info["code"] = code_version(source)
        if ref:
            info["commit"] = ref
            info["aggregator_changes"] = f"taken from git {args.ref}"
        print("generating and serving the feeds", file=sys.stderr)
        with feed_server(source, _spec(args)) as server:
            print(f"  {server['generate_seconds']:.1f} s to generate", file=sys.stderr)
            urls_file = Path(tmp) / "urls.json"
            urls_file.write_text(json.dumps(server["urls"]), encoding="utf-8")
            for number in range(args.rounds):
                results: dict[str, dict[str, Any]] = {}
                shift = number % len(clients)
                for client in clients[shift:] + clients[:shift]:
                    db = Path(tmp) / f"{client.name}-{number}.db"
                    common = ["--urls", str(urls_file), "--stats", server["stats"]]
                    common += ["--db", str(db)]
                    if args.profile and client.name == "ours" and number == args.rounds - 1:
                        common += ["--profile", str(args.profile.resolve())]
                    if args.statements and client.name == "ours" and number == args.rounds - 1:
                        common += ["--statements"]
                    print(f"round {number + 1}/{args.rounds}: {client.name}", file=sys.stderr)
                    cpu_report = Path(tmp) / f"{client.name}-{number}.cpu.json"
                    result = run_worker(client, source, common, cpu_report)
                    results[client.name] = result
                    loads.append(result["load_after"])
                    first, second = result["phases"]
                    print(
                        f"  first {first['seconds']:.2f} s ({_statuses(first)}), second "
                        f"{second['seconds']:.3f} s ({_statuses(second)}), "
                        f"peak RSS {result['peak_tree_rss_mb']:.0f} MB",
                        file=sys.stderr,
                    )
                    ms = 1000 / server["entries"]
                    cpu = ", ".join(
                        f"{part} {main * ms:.3f} + {children * ms:.3f}"
                        for part, (_, main, children) in zip(
                            CPU_PARTS, _cpu_parts(result), strict=True
                        )
                    )
                    print(f"  CPU ms/entry, main + children: {cpu}", file=sys.stderr)
                    for path in Path(tmp).glob(f"{client.name}-{number}.*"):
                        path.unlink()
                rounds.append(results)
    names = [c.name for c in clients]
    report = render(rounds, names, command, info, server, reader_note, loads, started)
    if args.statements:
        first = rounds[-1]["ours"]["phases"][0]
        lines = [
            "",
            "SQL statements of our first poll (last round), timed in its process "
            f"(bench/statements.py), per entry of {server['entries']:,}:",
            "",
            *statements.table(first["statements"], server["entries"]),
            "",
        ]
        report += "\n".join(lines)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        raw: dict[str, Any] = {"machine": info}
        raw["server"] = {k: v for k, v in server.items() if k != "urls"}
        raw["rounds"] = rounds
        args.json.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
