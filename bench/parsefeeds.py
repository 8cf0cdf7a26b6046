"""Feed parsing benchmark (issue 15, item 5): the fast path against feedparser, per document.

Run from the repository root:

    python -m bench.parsefeeds                        # 300 feeds x 20 entries + the corpus
    python -m bench.parsefeeds --feeds 100 --rounds 5 --out /tmp/parse.md --json /tmp/parse.json

What it measures, and why:

* **The documents.** `--feeds` RSS 2.0 documents of `--entries` items, generated as
  `bench/feeds.py` builds them for the polling benchmark (about 420 words of full
  text per item in `content:encoded`, a one-sentence `description`, dc:creator,
  categories, atom:link), plus every file of feedparser's test corpus
  (`.cache/feedparser-tests`, fetched by `make test`) that the fast path reads, as
  served in `tests/test_feedparser_corpus.py` (`--no-corpus` leaves them out).
* **The two paths.** Both are `aggregator.sources.parse.parse_feed` on the same
  bytes and headers, in this process: once as it is (the fast path first), once
  with the fast path switched off (feedparser, as before). So both include the
  decoding and the entity check they share. `read_feed` (what a parse worker
  runs: `parse_feed`, then every entry's HTML into paragraphs) is timed both ways
  too, to show the share of a worker's task that is saved. The results of the two
  paths are compared for every document; the run stops if one differs.
* **Alternating.** For every document and round the two paths run back to back,
  the order swapped every round, so that a noisy neighbour hits both alike.
  Every call is timed alone, garbage collected before and not during it. Per
  document the median over `--rounds` rounds is taken; the report gives the
  median over documents of those, the per-document ratio (feedparser / fast
  path, median and range), and totals over all documents.
* **lxml alone.** `etree.fromstring` of the same UTF-8 bytes, the floor under the
  fast path.
"""

from __future__ import annotations

import argparse
import functools
import gc
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from aggregator.sources import fastfeed
from aggregator.sources.entrytext import read_feed
from aggregator.sources.parse import parse_feed
from bench.ingest import machine, machine_line, write_report

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / ".cache" / "feedparser-tests"
URL = "https://feed.example/feed.xml"
_REAL = fastfeed.parse_well_formed
# The hints feedparser's test server sends, as tests/test_feedparser_corpus.py reads them.
_HINT = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)


@contextmanager
def feedparser_only() -> Iterator[None]:
    """`parse_feed` without the fast path, as before it existed."""
    fastfeed.parse_well_formed = lambda *args: None
    try:
        yield
    finally:
        fastfeed.parse_well_formed = _REAL


def documents(feeds: int, entries: int, corpus: bool) -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, body, headers): the generated feeds, then the corpus files the fast path reads."""
    from bench.feeds import build_feeds

    docs = [
        (doc.path, doc.body, {"Content-Type": "application/rss+xml"})
        for doc in build_feeds(feeds, entries).docs
    ]
    if corpus and CORPUS.is_dir():
        for path in sorted(CORPUS.rglob("*.xml")):
            body = path.read_bytes()
            headers = {"Content-Type": "application/xml"}
            for key, value in _HINT.findall(body):
                headers[key.decode().strip()] = value.decode().strip()
            if _handed(body, headers) is not None:
                docs.append((path.relative_to(CORPUS).as_posix(), body, headers))
    return docs


def _handed(body: bytes, headers: dict[str, str]) -> bytes | None:
    """The UTF-8 document `parse_feed` hands the fast path, if the fast path reads it."""
    seen: list[bytes] = []

    def spy(document: bytes, *args: Any) -> Any:
        result = _REAL(document, *args)
        if result is not None:
            seen.append(document)
        return result

    fastfeed.parse_well_formed = spy
    try:
        parse_feed(body, headers, URL)
    except Exception:
        return None
    finally:
        fastfeed.parse_well_formed = _REAL
    return seen[0] if seen else None


def _timed(call: Callable[[], object]) -> float:
    """Seconds of one call, garbage collected before and not during it."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started
    finally:
        gc.enable()


def measure(docs: list[tuple[str, bytes, dict[str, str]]], rounds: int) -> list[dict[str, Any]]:
    """Per document: seconds of each path in every round (alternating order)."""
    rows = []
    for name, body, headers in docs:
        fast = parse_feed(body, headers, URL)
        with feedparser_only():
            slow = parse_feed(body, headers, URL)
        if fast != slow:
            raise SystemExit(f"{name}: the fast path's result differs from feedparser's")
        parse = functools.partial(parse_feed, body, headers, URL)
        read = functools.partial(read_feed, body, headers, URL)
        times: dict[str, list[float]] = {k: [] for k in ("fast", "slow", "read_fast", "read_slow")}
        for number in range(rounds):
            for path in ("fast", "slow") if number % 2 == 0 else ("slow", "fast"):
                if path == "fast":
                    times["fast"].append(_timed(parse))
                    times["read_fast"].append(_timed(read))
                else:
                    with feedparser_only():
                        times["slow"].append(_timed(parse))
                        times["read_slow"].append(_timed(read))
        lxml = functools.partial(etree.fromstring, _handed(body, headers))
        lxml_alone = statistics.median(_timed(lxml) for _ in range(rounds))
        rows.append(
            {
                "name": name,
                "bytes": len(body),
                "entries": len(fast.entries),
                "generated": name.startswith("/feeds/"),
                "lxml": lxml_alone,
                **{k: statistics.median(v) for k, v in times.items()},
            }
        )
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _summary(label: str, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    ratio = [r["slow"] / r["fast"] for r in rows]
    read_ratio = [r["read_slow"] / r["read_fast"] for r in rows]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def total(key: str) -> float:
        return sum(r[key] for r in rows)

    return [
        f"| {label} | {len(rows):,} | {statistics.median(r['bytes'] for r in rows) / 1024:,.1f} "
        f"| {statistics.median(r['entries'] for r in rows):g} "
        f"| {_ms(med('slow'))} | {_ms(med('fast'))} | {_ms(med('lxml'))} "
        f"| {statistics.median(ratio):.1f}x ({min(ratio):.1f}-{max(ratio):.1f}) "
        f"| {total('slow') / total('fast'):.1f}x "
        f"| {_ms(med('read_slow'))} | {_ms(med('read_fast'))} "
        f"| {statistics.median(read_ratio):.2f}x |"
    ]


def render(rows: list[dict[str, Any]], info: dict[str, str], command: str, rounds: int) -> str:
    generated = [r for r in rows if r["generated"]]
    corpus = [r for r in rows if not r["generated"]]
    lines = [
        f"Command: `{command}`  ",
        machine_line(info),
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']})  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {rounds} rounds per "
        "document, the two paths alternated; per-document medians, then their median",
        "",
        "Milliseconds per document. feedparser: `parse_feed` with the fast path off (as "
        "before); fast: as it is now; lxml: `etree.fromstring` alone. Ratio: feedparser / "
        "fast, per document (median, range) and of the totals. read_feed: the parse "
        "worker's whole task (`parse_feed` and every entry's HTML into paragraphs).",
        "",
        "| Documents | Count | Median KiB | Entries | feedparser ms | fast ms | lxml ms "
        "| Ratio per doc | Ratio of totals | read_feed feedparser ms | read_feed fast ms "
        "| read_feed ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *_summary("generated RSS 2.0 (bench/feeds.py)", generated),
        *_summary("feedparser corpus, read by the fast path", corpus),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parsefeeds", description=__doc__)
    parser.add_argument("--feeds", type=int, default=300, help="generated feeds")
    parser.add_argument("--entries", type=int, default=20, help="items per generated feed")
    parser.add_argument("--rounds", type=int, default=5, help="timings per document and path")
    parser.add_argument("--no-corpus", action="store_true", help="leave out the corpus files")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.feeds < 1:
        parser.error("--rounds and --feeds must be at least 1")
    command = "python -m bench.parsefeeds " + " ".join(argv if argv is not None else sys.argv[1:])
    info = machine()
    docs = documents(args.feeds, args.entries, not args.no_corpus)
    print(f"{len(docs)} documents; timing {args.rounds} rounds...", file=sys.stderr)
    rows = measure(docs, args.rounds)
    report = render(rows, info, command.strip(), args.rounds)
    write_report(report, args.out, args.json, {"machine": info, "documents": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
