"""Syndication benchmark: story quality and cost of one first poll of wire-heavy feeds.

Run from the repository root:

    python -m bench.syndication --feeds 200 --entries 20 --seed 1 --compare --out /tmp/synd.md

What it measures, and why (issue 11, how duplicated passages are stored):

* **Story quality.** Wire copy is the case the aggregator exists for: one agency
  story republished by several outlets within hours, each lightly edited and
  framed by the outlet's own opening and closing paragraphs. Outlets also reuse
  *background* paragraphs (a company profile, a standing explainer) across
  unrelated stories for days. Those must not chain unrelated stories into one.
  The stored story clusters are scored against the generator's gold stories
  with B-cubed precision, recall and F1 over every article (an article in no
  cluster is a singleton story). B-cubed is used because it scores each
  article by how much of its predicted story is its gold story and vice versa,
  so one giant chained cluster is punished in proportion to the articles it
  swallows, unlike pairwise counts dominated by the largest cluster.
* **Storage.** Today a passage carried by N articles is stored as about N x N
  rows in `passage_matches`; after the rewrite it is N rows in
  `passage_carriers`. "Match rows per article" counts whichever table the
  database has, so the same figure is comparable before and after.
* **Time.** The poll is timed exactly as `aggregator poll --all` runs it
  (`Poller(store, config)` as a context manager around `poll(feeds)`, so the
  parse pool's start and stop are included): wall seconds and the CPU seconds of
  the worker process and its reaped children (the parse pool). `--compare` runs
  the corpus with the background pool and the same corpus without it (pool
  paragraphs replaced by fresh ones of the same lengths) alternately, each in a
  fresh subprocess on a fresh database, and reports the median of the
  per-round time ratios pool / no-pool: how much the background paragraphs cost.

The corpus (`build_corpus`), deterministic for a seed:

* `--feeds` RSS 2.0 feeds of `--entries` items each, published over 10 days
  from 2026-10-01 (a fixed past date, so no date is clamped to the fetch time).
* About 30% of the items carry a wire story: 3-5 paragraphs of 40-90 words
  (several sentences each), carried by 2-8 distinct feeds within 4 hours. Each
  carrier edits the text lightly: in about 30% of sentences one word is dropped
  or substituted, and its house style may curl the quotes and substitute
  "US" -> "USA", "UK" -> "Britain", "percent" -> "per cent". It adds its own
  opening and closing paragraph.
* The other items are own stories of 4-8 unique paragraphs.
* About 11% of all own paragraphs (own stories and the carriers' openings and
  closings) are drawn at random from a pool of 100 background paragraphs
  (`--pool-size`).
  `pool=False` (`--no-pool`) replaces each such draw with a fresh unique
  paragraph of the same length, drawn from a separate random stream, so the
  two corpora have the same wire stories, articles, links and dates.
* Gold: each wire story is one gold story (its carriers); every other article
  is its own gold story.

Text comes from the ingest benchmark's synthetic vocabulary (`bench/corpus.py`:
30,000 Zipf-distributed pseudo-words mixed with English function words), with
capitalised names, acronyms, numbers and quotations added so that the edits
above have something to act on.

The feeds are served from this process on 127.0.0.1 by `bench.feeds`'s HTTP
server (keep-alive, gzip, validators). Each poll runs in a worker subprocess on
a copy of `aggregator/` taken when the run starts (`--ref REV` takes it from a
git revision), so edits to the checkout during a run cannot mix two versions;
the database is scored in this process once the worker has finished.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

from bench import corpus as ingest_corpus

SEED = 1
START = datetime(2026, 10, 1, tzinfo=UTC)
SPREAD_HOURS = 10 * 24  # publication dates are spread over 10 days
BURST_HOURS = 4  # a wire story's carriers publish within this many hours
WIRE_SHARE = 0.30  # share of all items that carry a wire story
WIRE_CARRIERS = (2, 8)  # feeds carrying one wire story, inclusive
WIRE_PARAGRAPHS = (3, 5)
OWN_PARAGRAPHS = (4, 8)  # paragraphs of an own (non-wire) story
PARAGRAPH_WORDS = (40, 90)
POOL_SIZE = 100  # background paragraphs
POOL_SHARE = 0.11  # share of own paragraphs drawn from the background pool
EDIT_DROP = 0.15  # share of a carrier's sentences with one word dropped
EDIT_SUBSTITUTE = 0.15  # ... with one word substituted
SUBSTITUTIONS = {"US": "USA", "UK": "Britain", "percent": "per cent"}
ACRONYMS = ("US", "UK", "EU", "UN", "NATO")


# -- the text ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sentence:
    """Lower-case words (names capitalised); a quotation when `speaker` is set."""

    words: tuple[str, ...]
    speaker: str | None = None

    def __len__(self) -> int:
        return len(self.words) + (3 if self.speaker else 0)  # "said First Last"


Paragraph = tuple[Sentence, ...]


@dataclass(frozen=True, slots=True)
class Style:
    """An outlet's house style: straight or curly quotes, and its word substitutions."""

    curly: bool = False
    substitutions: tuple[tuple[str, str], ...] = ()

    def render(self, paragraph: Paragraph) -> str:
        swap = dict(self.substitutions)
        out = []
        for sentence in paragraph:
            text = " ".join(swap.get(w, w) for w in sentence.words)
            text = text[0].upper() + text[1:]
            if sentence.speaker:
                left, right = ("\u201c", "\u201d") if self.curly else ('"', '"')
                out.append(f"{left}{text},{right} said {sentence.speaker}.")
            else:
                out.append(text + ".")
        return " ".join(out)


def _cdf(n: int, exponent: float, offset: int = 0) -> npt.NDArray[np.float64]:
    weights = 1.0 / np.arange(offset + 1, offset + n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    return np.asarray(cdf / cdf[-1], dtype=np.float64)


class TextGen:
    """News-like synthetic sentences over the ingest benchmark's vocabulary."""

    def __init__(self, seed: int) -> None:
        words = ingest_corpus.Corpus(0, seed=seed).words  # function words, then content words
        functions = len(ingest_corpus.FUNCTION_WORDS)
        self.functions = words[:functions]
        self.content = words[functions:]
        # Names: mid-frequency content words of 5+ letters, so none reads as an
        # abbreviation ("Gen.", "Jan.") at the end of a sentence.
        self.names = [w.capitalize() for w in self.content[2_000:] if len(w) >= 5][:4_000]
        self._function_cdf = _cdf(functions, 1.0)
        self._content_cdf = _cdf(len(self.content), 1.07, offset=functions)

    def words(self, rng: np.random.Generator, n: int) -> list[str]:
        """`n` words of running text, the last one a content word (as English sentences end)."""
        function = rng.random(n) < ingest_corpus.FUNCTION_SHARE
        function[-1] = False
        f_ids = np.searchsorted(self._function_cdf, rng.random(n)).tolist()
        c_ids = np.searchsorted(self._content_cdf, rng.random(n)).tolist()
        return [
            self.functions[f] if is_function else self.content[c]
            for is_function, f, c in zip(function.tolist(), f_ids, c_ids, strict=True)
        ]

    def name(self, rng: np.random.Generator) -> str:
        return self.names[int(rng.integers(0, len(self.names)))]

    def sentence(self, rng: np.random.Generator, n: int) -> Sentence:
        """A sentence of `n` words, sometimes a quotation, with names, acronyms and figures."""
        quoted = n >= 10 and rng.random() < 0.2
        size = n - 3 if quoted else n
        words = self.words(rng, size)
        if rng.random() < 0.5:
            words[int(rng.integers(0, size))] = self.name(rng)
        if rng.random() < 0.2:
            words[int(rng.integers(1, size - 1))] = ACRONYMS[int(rng.integers(0, len(ACRONYMS)))]
        if size >= 6 and rng.random() < 0.15:
            at = int(rng.integers(1, size - 2))
            words[at : at + 2] = [str(int(rng.integers(2, 100))), "percent"]
        speaker = f"{self.name(rng)} {self.name(rng)}" if quoted else None
        return Sentence(tuple(words), speaker)

    def paragraph(self, rng: np.random.Generator, n_words: int) -> Paragraph:
        """`n_words` words in sentences of about 14-22 words (at least 8 each)."""
        n_sentences = max(2, round(n_words / float(rng.uniform(14, 22))))
        base, extra = divmod(n_words, n_sentences)
        lengths = [base + (1 if i < extra else 0) for i in range(n_sentences)]
        for i in range(n_sentences - 1):
            shift = int(rng.integers(-4, 5))
            if lengths[i] + shift >= 8 and lengths[i + 1] - shift >= 8:
                lengths[i] += shift
                lengths[i + 1] -= shift
        return tuple(self.sentence(rng, n) for n in lengths)

    def title(self, rng: np.random.Generator) -> str:
        text = " ".join(self.words(rng, int(rng.integers(5, 12))))
        return text[0].upper() + text[1:]

    def edit(self, rng: np.random.Generator, paragraph: Paragraph) -> Paragraph:
        """A carrier's light edits: one word dropped or substituted in some sentences."""
        out = []
        for sentence in paragraph:
            words = list(sentence.words)
            roll = float(rng.random())
            # Never the first or last word: the capital and the final content word stay.
            if roll < EDIT_DROP and len(words) > 6:
                del words[int(rng.integers(1, len(words) - 1))]
            elif roll < EDIT_DROP + EDIT_SUBSTITUTE and len(words) > 2:
                words[int(rng.integers(1, len(words) - 1))] = self.words(rng, 1)[0]
            out.append(Sentence(tuple(words), sentence.speaker))
        return tuple(out)


def paragraph_words(paragraph: Paragraph) -> int:
    return sum(len(s) for s in paragraph)


# -- the corpus ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Article:
    """One feed item. `pool_slots`: positions of paragraphs drawn from the pool (or,
    without the pool, of the fresh paragraphs that replace them)."""

    index: int
    feed: int
    title: str
    paragraphs: tuple[str, ...]
    published: datetime
    link: str
    gold: str  # "wire-K" for the carriers of wire story K, else "own-INDEX"
    pool_slots: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Corpus:
    """The generated feeds (`feeds`: path -> RSS body) and the gold stories
    (`gold`: article link -> gold story id)."""

    seed: int
    pool: bool
    pool_size: int
    n_feeds: int
    entries: int
    articles: tuple[Article, ...]
    feeds: dict[str, bytes]
    gold: dict[str, str]
    wire_stories: int
    own_paragraphs: int  # paragraphs that are not wire text, in all articles
    pool_paragraphs: int  # of those, drawn from the pool (or their replacements)

    @property
    def gold_largest(self) -> int:
        return max(Counter(self.gold.values()).values(), default=0)

    @property
    def wire_carriers(self) -> int:
        return sum(1 for a in self.articles if a.gold.startswith("wire-"))


@dataclass(slots=True)
class _Slot:
    feed: int
    published: datetime
    wire: int | None  # wire story index, or None for an own story


@dataclass(slots=True)
class _Builder:
    gen: TextGen
    rng: np.random.Generator  # structure and all text but the replacements
    fresh: np.random.Generator  # replacements for pool paragraphs (pool=False)
    background: list[Paragraph]
    pool: bool
    own_paragraphs: int = 0
    pool_paragraphs: int = 0
    slots: list[int] = field(default_factory=list)

    def own(self, style: Style, position: int) -> str:
        """One own paragraph; about POOL_SHARE of them come from the background pool."""
        self.own_paragraphs += 1
        rng = self.rng
        if rng.random() < POOL_SHARE:
            self.pool_paragraphs += 1
            self.slots.append(position)
            chosen = self.background[int(rng.integers(0, len(self.background)))]
            if not self.pool:
                chosen = self.gen.paragraph(self.fresh, paragraph_words(chosen))
            return style.render(chosen)
        words = int(rng.integers(PARAGRAPH_WORDS[0], PARAGRAPH_WORDS[1] + 1))
        return style.render(self.gen.paragraph(rng, words))

    def take_slots(self) -> tuple[int, ...]:
        slots, self.slots = tuple(self.slots), []
        return slots


def _hours(rng: np.random.Generator, low: float, high: float) -> timedelta:
    return timedelta(seconds=round(float(rng.uniform(low, high)) * 3600))


def build_corpus(
    feeds: int, entries: int, seed: int = SEED, pool: bool = True, pool_size: int = POOL_SIZE
) -> Corpus:
    """The feeds and gold stories for `feeds` x `entries` items (see the module docstring).

    `pool_size`: background paragraphs in the pool. A paragraph drawn only twice
    looks like a passage two stories share, which no rule can tell from a real
    one; a small corpus (a test) keeps each one drawn several times with a
    smaller pool, as the full-size corpus does with 100 (about 21 draws each).
    """
    if feeds < 2 or entries < 1 or pool_size < 1:
        raise ValueError("need at least 2 feeds, 1 entry per feed and 1 pool paragraph")
    gen = TextGen(seed)
    rng = np.random.default_rng([seed, 0])
    pool_rng = np.random.default_rng([seed, 1])
    background = [
        gen.paragraph(pool_rng, int(pool_rng.integers(PARAGRAPH_WORDS[0], PARAGRAPH_WORDS[1] + 1)))
        for _ in range(pool_size)
    ]
    build = _Builder(gen, rng, np.random.default_rng([seed, 2]), background, pool)
    styles = [
        Style(
            curly=bool(rng.random() < 0.5),
            substitutions=tuple((k, v) for k, v in SUBSTITUTIONS.items() if rng.random() < 0.4),
        )
        for _ in range(feeds)
    ]

    # Deal the item slots: wire stories first (2-8 distinct feeds each), then own stories.
    capacity = [entries] * feeds
    slots: list[_Slot] = []
    wire_texts: list[tuple[str, list[Paragraph]]] = []
    target = round(WIRE_SHARE * feeds * entries)
    while sum(1 for s in slots if s.wire is not None) < target:
        open_feeds = [f for f in range(feeds) if capacity[f] > 0]
        if len(open_feeds) < 2:
            break
        wanted = int(rng.integers(WIRE_CARRIERS[0], WIRE_CARRIERS[1] + 1))
        chosen = sorted(
            int(f) for f in rng.choice(open_feeds, min(wanted, len(open_feeds)), replace=False)
        )
        story = len(wire_texts)
        n = int(rng.integers(WIRE_PARAGRAPHS[0], WIRE_PARAGRAPHS[1] + 1))
        lengths = rng.integers(PARAGRAPH_WORDS[0], PARAGRAPH_WORDS[1] + 1, size=n).tolist()
        wire_texts.append((gen.title(rng), [gen.paragraph(rng, w) for w in lengths]))
        burst = START + _hours(rng, 0, SPREAD_HOURS - BURST_HOURS)
        for f in chosen:
            capacity[f] -= 1
            slots.append(_Slot(f, burst + _hours(rng, 0, BURST_HOURS), story))
    for f in range(feeds):
        slots += [_Slot(f, START + _hours(rng, 0, SPREAD_HOURS), None) for _ in range(capacity[f])]

    articles: list[Article] = []
    for index, slot in enumerate(slots):
        style = styles[slot.feed]
        if slot.wire is not None:
            title, base = wire_texts[slot.wire]
            opening = build.own(style, 0)
            body = [style.render(gen.edit(rng, p)) for p in base]
            closing = build.own(style, len(base) + 1)
            paragraphs = (opening, *body, closing)
            gold = f"wire-{slot.wire}"
        else:
            title = gen.title(rng)
            n = int(rng.integers(OWN_PARAGRAPHS[0], OWN_PARAGRAPHS[1] + 1))
            paragraphs = tuple(build.own(style, k) for k in range(n))
            gold = f"own-{index}"
        published = slot.published
        link = f"https://news{slot.feed:04d}.example.com/{published:%Y/%m/%d}/story-{index}"
        articles.append(
            Article(index, slot.feed, title, paragraphs, published, link, gold, build.take_slots())
        )

    by_feed: dict[int, list[Article]] = {f: [] for f in range(feeds)}
    for article in articles:
        by_feed[article.feed].append(article)
    docs = {f"/feeds/{f:04d}.xml": render_feed(f, items) for f, items in by_feed.items()}
    return Corpus(
        seed=seed,
        pool=pool,
        pool_size=pool_size,
        n_feeds=feeds,
        entries=entries,
        articles=tuple(articles),
        feeds=docs,
        gold={a.link: a.gold for a in articles},
        wire_stories=len(wire_texts),
        own_paragraphs=build.own_paragraphs,
        pool_paragraphs=build.pool_paragraphs,
    )


def render_feed(number: int, articles: Sequence[Article]) -> bytes:
    """An RSS 2.0 document, newest item first; full text in `content:encoded`."""
    site = f"https://news{number:04d}.example.com"
    items = sorted(articles, key=lambda a: (a.published, a.index), reverse=True)
    newest = items[0].published if items else START
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        "<channel>",
        f"<title>News {number:04d}</title>",
        f"<link>{site}/</link>",
        f"<description>Latest stories from News {number:04d}</description>",
        f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate>",
    ]
    for a in items:
        summary = a.paragraphs[0].split(". ")[0].rstrip(".") + "."
        html = "".join(f"<p>{escape(p)}</p>" for p in a.paragraphs)
        out += [
            "<item>",
            f"<title>{escape(a.title)}</title>",
            f"<link>{escape(a.link)}</link>",
            f'<guid isPermaLink="false">news{number:04d}-{a.index}</guid>',
            f"<pubDate>{format_datetime(a.published)}</pubDate>",
            f"<description>{escape(summary)}</description>",
            f"<content:encoded><![CDATA[{html}]]></content:encoded>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out).encode("utf-8")


# -- scoring ------------------------------------------------------------------------------


class BCubed(NamedTuple):
    """B-cubed scores (a tuple, so tests can compare it with `pytest.approx`)."""

    precision: float
    recall: float
    f1: float


def bcubed(predicted: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> BCubed:
    """B-cubed precision, recall and F1 of `predicted` clusters against `gold`.

    The items are the keys of `gold`; an item missing from `predicted` is a
    singleton, and items of `predicted` not in `gold` are ignored. For item i
    with predicted cluster C(i) and gold story G(i) (both restricted to the
    items): precision_i = |C(i) & G(i)| / |C(i)|, recall_i = |C(i) & G(i)| / |G(i)|;
    precision and recall are their means, F1 the harmonic mean of the two.
    """
    if not gold:
        return BCubed(1.0, 1.0, 1.0)
    labels: dict[str, tuple[bool, Hashable]] = {
        item: (True, predicted[item]) if item in predicted else (False, item) for item in gold
    }
    cluster_sizes = Counter(labels.values())
    gold_sizes = Counter(gold.values())
    both = Counter((labels[item], gold[item]) for item in gold)
    precision = recall = 0.0
    for item, story in gold.items():
        shared = both[(labels[item], story)]
        precision += shared / cluster_sizes[labels[item]]
        recall += shared / gold_sizes[story]
    precision /= len(gold)
    recall /= len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BCubed(precision, recall, f1)


def match_rows(conn: sqlite3.Connection) -> int:
    """Stored passage match rows: `passage_carriers` after issue 11, else `passage_matches`."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    table = "passage_carriers" if "passage_carriers" in tables else "passage_matches"
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def db_bytes(db_path: Path) -> int:
    return sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists())


def evaluate(db_path: Path, corpus: Corpus) -> dict[str, Any]:
    """Score the stories stored in `db_path` against the corpus's gold stories.

    Returns precision, recall and f1 (B-cubed over every gold article; articles
    not stored or in no cluster are singletons), rows (stored passage match
    rows), rows_per_article (per stored article), largest_cluster (articles in
    the largest stored story, 1 if none has two), gold_largest, articles (stored),
    unknown_articles (stored but not in the gold), clusters (stories with two or
    more articles) and db_bytes.
    """
    from aggregator.urls import normalise_url

    links = {normalise_url(link): link for link in corpus.gold}
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        located = dict(conn.execute("SELECT id, location FROM articles").fetchall())
        members = conn.execute("SELECT cluster_id, article_id FROM cluster_articles").fetchall()
        rows = match_rows(conn)
    finally:
        conn.close()
    predicted: dict[str, Hashable] = {}
    unknown = 0
    for article_id, location in located.items():
        link = links.get(normalise_url(location))
        if link is None:
            unknown += 1
        else:
            predicted[link] = ("article", article_id)
    sizes: Counter[int] = Counter()
    for cluster_id, article_id in members:
        sizes[cluster_id] += 1
        link = links.get(normalise_url(located[article_id]))
        if link is not None:
            predicted[link] = ("cluster", cluster_id)
    score = bcubed(predicted, corpus.gold)
    articles = len(located)
    return {
        "precision": score.precision,
        "recall": score.recall,
        "f1": score.f1,
        "rows": rows,
        "rows_per_article": rows / articles if articles else 0.0,
        "largest_cluster": max(sizes.values(), default=1 if articles else 0),
        "gold_largest": corpus.gold_largest,
        "articles": articles,
        "unknown_articles": unknown,
        "clusters": sum(1 for n in sizes.values() if n > 1),
        "db_bytes": db_bytes(db_path),
    }


# -- the worker (its own process) ---------------------------------------------------------


def work_poll(urls: list[str], db: Path) -> dict[str, Any]:
    """Subscribe every URL in a new database, then poll once as `aggregator poll --all`."""
    import aggregator
    from aggregator.config import Config, FeedsConfig
    from aggregator.ingest.feeds import add_feed, list_feeds, sync_config_feeds
    from aggregator.ingest.poll import Poller
    from aggregator.storage.store import Store
    from bench.proccpu import TreeMeter, become_subreaper

    # The pools' workers are the fork server's children: their CPU is read from
    # /proc, with this process as their subreaper (bench/proccpu.py).
    become_subreaper()
    meter = TreeMeter()
    config = Config(database=db, feeds=FeedsConfig(allow=("127.0.0.0/8",)))
    config.validate()
    store = Store(config.database, config.dedup.minhash)
    try:
        for number, url in enumerate(urls):
            add_feed(store, url, f"News {number:04d}")
        # What `aggregator poll --all` does, from here on.
        sync_config_feeds(store, config.feeds.urls)
        feeds = [f for f in list_feeds(store) if f.enabled]
        before = meter.sample()
        started = time.perf_counter()
        with Poller(store, config) as poller:
            outcomes = list(poller.poll(feeds))
        seconds = time.perf_counter() - started
        cpu = TreeMeter.between(before, meter.sample()).total
    finally:
        store.close()
    statuses = Counter(o.status for o in outcomes)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "feeds": len(feeds),
        "statuses": dict(statuses),
        "new_entries": sum(o.new for o in outcomes),
        "errors": [f"{o.url}: {o.error}" for o in outcomes if o.status == "error"][:5],
        "aggregator": str(Path(aggregator.__file__).resolve().parent),
    }


# -- the driver ---------------------------------------------------------------------------


def _serve(docs: Mapping[str, bytes]) -> tuple[Any, str]:
    """Serve `docs` (path -> body) on 127.0.0.1 from a thread; (server, base URL)."""
    from bench.feeds import FeedDoc, FeedServer, _Counts

    feed_docs = {}
    for path, body in docs.items():
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        modified = datetime.now(UTC).replace(microsecond=0)
        feed_docs[path] = FeedDoc(path, body, gzip.compress(body, 6, mtime=0), etag, modified)
    server = FeedServer(("127.0.0.1", 0), feed_docs, _Counts(), True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _run_worker(source: Path, urls: list[str], db: Path) -> dict[str, Any]:
    urls_file = db.with_suffix(".urls.json")
    urls_file.write_text(json.dumps(urls), encoding="utf-8")
    command = [sys.executable, "-m", "bench.syndication", "--worker"]
    command += ["--urls", str(urls_file), "--db", str(db)]
    done = subprocess.run(command, cwd=source, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the poll worker failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _label(pool: bool) -> str:
    return "pool" if pool else "no-pool"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(
    runs: list[dict[str, Any]],
    corpora: Mapping[bool, Corpus],
    command: str,
    info: dict[str, str],
    loads: Sequence[float] = (),
) -> str:
    """The Markdown report: set-up, one row per run, and the pool / no-pool time ratio."""
    any_corpus = next(iter(corpora.values()))
    articles = len(any_corpus.articles)
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}  ",
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']})  ",
        f"1-minute load average {min(loads, default=0):.2f} to {max(loads, default=0):.2f} "
        "during the run (the machine is shared: wall times are noisy, CPU less so)  ",
        f"Corpus (seed {any_corpus.seed}): {any_corpus.n_feeds} feeds x {any_corpus.entries} "
        f"entries = {articles:,} articles over {SPREAD_HOURS // 24} days; "
        f"{any_corpus.wire_stories} wire stories carried by {any_corpus.wire_carriers:,} "
        f"articles (largest gold story {any_corpus.gold_largest}); "
        f"{any_corpus.pool_paragraphs:,} of {any_corpus.own_paragraphs:,} own paragraphs "
        f"({any_corpus.pool_paragraphs / max(1, any_corpus.own_paragraphs):.1%}) drawn from "
        f"the {any_corpus.pool_size}-paragraph background pool (no-pool: fresh paragraphs instead)",
        "",
        "| Corpus | Round | Articles stored | Poll wall s | Poll CPU s | Articles/s "
        "| B³ precision | B³ recall | B³ F1 | Match rows/article | Largest cluster (gold) "
        "| DB MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        q = run["quality"]
        w = run["worker"]
        lines.append(
            f"| {_label(run['pool'])} | {run['round']} | {q['articles']:,} | {w['seconds']:.1f} "
            f"| {w['cpu_seconds']:.1f} | {q['articles'] / w['seconds']:.1f} "
            f"| {q['precision']:.3f} | {q['recall']:.3f} | {q['f1']:.3f} "
            f"| {q['rows_per_article']:.1f} | {q['largest_cluster']:,} ({q['gold_largest']}) "
            f"| {q['db_bytes'] / 1e6:.1f} |"
        )
    rounds = sorted({run["round"] for run in runs})
    for key, name in (("seconds", "Poll time (wall)"), ("cpu_seconds", "Poll CPU")):
        ratios = []
        for number in rounds:
            timed = {run["pool"]: run["worker"][key] for run in runs if run["round"] == number}
            if True in timed and False in timed:
                ratios.append(timed[True] / timed[False])
        if ratios:
            per_round = ", ".join(f"{r:.2f}" for r in ratios)
            lines += [
                "",
                f"{name} ratio pool / no-pool: {_median(ratios):.2f}x "
                f"(median of per-round ratios: {per_round})",
            ]
    odd = [
        f"{_label(run['pool'])} round {run['round']}: {run['worker']['statuses']} "
        f"{run['worker']['errors']}"
        for run in runs
        if run["worker"]["statuses"] != {"ingested": any_corpus.n_feeds}
    ]
    if odd:
        lines += ["", "**WARNING: not every feed was ingested:** " + "; ".join(odd)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.syndication",
        description="One first poll of wire-heavy loopback feeds: story B-cubed F1 against "
        "gold, stored match rows, time; --compare: with and without background paragraphs.",
    )
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=20, help="entries per feed")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-pool", action="store_true", help="no background paragraph pool")
    parser.add_argument(
        "--pool-size", type=int, default=POOL_SIZE, help="background paragraphs in the pool"
    )
    parser.add_argument(
        "--compare", action="store_true", help="pool and no-pool alternately; the time ratio"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds with --compare (>= 1)")
    parser.add_argument("--ref", help="poll with aggregator/ as of this git revision")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    parser.add_argument("--tmp", type=Path, help="folder for the temporary databases")
    # Internal: the worker.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        urls = json.loads(args.urls.read_text(encoding="utf-8"))
        print(json.dumps(work_poll(urls, args.db)))
        return 0
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")

    from bench.feeds import machine
    from bench.ingest import git_commit, snapshot

    command = "python -m bench.syndication " + " ".join(argv if argv is not None else sys.argv[1:])
    variants = [True, False] if args.compare else [not args.no_pool]
    print("generating the corpora", file=sys.stderr)
    corpora = {
        pool: build_corpus(args.feeds, args.entries, args.seed, pool, args.pool_size)
        for pool in variants
    }
    docs = {
        f"/{_label(pool)}{path}": body
        for pool, corpus in corpora.items()
        for path, body in corpus.feeds.items()
    }
    info = machine()
    ref = git_commit(args.ref) if args.ref else None
    if ref:
        info["commit"] = ref
        info["aggregator_changes"] = f"taken from git {args.ref}"
    server, base = _serve(docs)
    runs: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    try:
        tmp_root = args.tmp.resolve() if args.tmp else None
        with tempfile.TemporaryDirectory(prefix="bench-synd-", dir=tmp_root) as tmp:
            source = snapshot(Path(tmp) / "src", ref)
            for number in range(1, (args.rounds if args.compare else 1) + 1):
                order = variants if number % 2 else variants[::-1]
                for pool in order:
                    corpus = corpora[pool]
                    urls = [f"{base}/{_label(pool)}{path}" for path in sorted(corpus.feeds)]
                    db = Path(tmp) / f"{_label(pool)}-{number}.db"
                    print(f"round {number}: {_label(pool)}", file=sys.stderr, flush=True)
                    worker = _run_worker(source, urls, db)
                    if not worker["aggregator"].startswith(str(source.resolve())):
                        raise RuntimeError(f"the worker imported {worker['aggregator']}")
                    loads.append(os.getloadavg()[0])
                    quality = evaluate(db, corpus)
                    run = {"pool": pool, "round": number, "worker": worker, "quality": quality}
                    runs.append(run)
                    print(
                        f"  {worker['seconds']:.1f} s, F1 {quality['f1']:.3f}, "
                        f"{quality['rows_per_article']:.1f} rows/article, "
                        f"largest cluster {quality['largest_cluster']}",
                        file=sys.stderr,
                        flush=True,
                    )
                    for path in Path(tmp).glob(f"{_label(pool)}-{number}.*"):
                        path.unlink()
    finally:
        server.shutdown()
        server.server_close()
    report = render(runs, corpora, command, info, loads)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": runs}, indent=1), "utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
