"""Event stories benchmark (issue 16): B-cubed precision, recall and F1 of the story layer.

    python -m bench.stories [--thresholds 0.15,0.2,0.25,0.3,0.35]

The data: `../shared/data/uci-news-stories/` (6,366 real headlines of 10-12
March 2014, each with the story a production aggregator gave it and its
arrival time in milliseconds; README there). Rows are streamed in arrival
order, each headline an article with no body; its time is the arrival time,
so relative days ("on Tuesday") are read against it.

Two contenders in the same run, on the same stream:

* **ours**: `StoryIndex` with the default `StoryParams` (names and numbers
  weighted, the title's weight, stated days);
* **plain TF-IDF**: the same single-pass centroid clusterer with every
  weight 1, no dates and no quiet-story decay: what the issue measured
  joining all five seeds.

`--window N`: what placing an article costs as one window fills with N
synthetic articles, with the candidate bound and without, in the same run.

`--articles tests/fixtures/events` reads the labelled full-article set
instead (as published, with a 60-day window, and undated), after the table
behind `undated_threshold`: for each value, in how many of the seeds' 120
arrival orders they give the reading the README argues ({000}, {001, 004},
{002}, {003}), arriving in one scan and one at a time, and the labelled set's
F1 read undated.

For each threshold, B-cubed precision (of each article: the share of its
predicted story that is in its gold story), recall (the share of its gold
story that is in its predicted story) and F1, averaged over articles, and
articles per second (the whole `add` path: terms, dates, scoring, joining).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from aggregator.stories.assign import StoryIndex, StoryParams
from aggregator.stories.dates import event_day, stated_days
from aggregator.stories.terms import TermWeights, article_terms


def shared_data() -> Path:
    """The public data sets: $AGGREGATOR_SHARED_DATA, else a `shared/data` folder
    above the checkout (read in place, never copied)."""
    if "AGGREGATOR_SHARED_DATA" in os.environ:
        return Path(os.environ["AGGREGATOR_SHARED_DATA"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path(__file__).resolve().parents[2] / "shared" / "data"


UCI_CSV = shared_data() / "uci-news-stories" / "uci-news-aggregator-subset.csv"

BASELINE = StoryParams(
    weights=TermWeights(title_weight=1.0, name_weight=1.0, number_weight=1.0, lead_words=1 << 30),
    use_dates=False,
    quiet_articles=0,
)


@dataclass(frozen=True, slots=True)
class Headline:
    title: str
    story: str
    when: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Article:
    """One article of a labelled full-article set (tests/fixtures/events)."""

    name: str
    title: str
    paragraphs: list[str]
    story: str
    when: float


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    f1: float
    per_second: float
    stories: int


def load_uci(path: Path = UCI_CSV) -> list[Headline]:
    """The rows that parse, in arrival order (the file's last row is cut short)."""
    rows: list[Headline] = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                stamp = int(row["TIMESTAMP"])
            except (TypeError, ValueError):
                continue
            if row.get("TITLE") and row.get("STORY"):
                rows.append(Headline(row["TITLE"], row["STORY"], stamp / 1000))
    rows.sort(key=lambda h: h.when)
    return rows


def load_articles(folder: Path) -> tuple[list[Article], list[tuple[str, str]]]:
    """A labelled set in publication order, and its sibling pairs (labels.json)."""
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    articles: list[Article] = []
    for name, label in labels["articles"].items():
        blocks = (folder / name).read_text(encoding="utf-8").strip().split("\n\n")
        published = datetime.fromisoformat(label["published"].replace("Z", "+00:00"))
        paragraphs = [" ".join(b.split()) for b in blocks[1:] if b.strip()]
        articles.append(
            Article(name, blocks[0].strip(), paragraphs, label["event"], published.timestamp())
        )
    articles.sort(key=lambda a: (a.when, a.name))
    return articles, [(a, b) for a, b in labels["siblings"]]


# How the labelled set is read: as published (times and relative days known), with
# a window wide enough that time alone separates no sibling, and as files with no
# date at all (one time for every article; only calendar dates in the text count,
# their years read against UNDATED_REFERENCE).
MODES = ("published", "wide window", "undated")
UNDATED_REFERENCE = datetime(2025, 6, 1, tzinfo=UTC)


def place_articles(articles: list[Article], params: StoryParams, mode: str) -> list[int]:
    """The story of each article, placed in the given (arrival) order."""
    if mode == "wide window":
        params = replace(params, window_days=60.0)
    index = StoryIndex(params)
    out: list[int] = []
    for a in articles:
        terms = article_terms(a.title, a.paragraphs, params.weights)
        text = "\n".join([a.title, *a.paragraphs])
        if mode == "undated":
            stated = stated_days(text, UNDATED_REFERENCE.date(), relative=False)
            out.append(
                index.add(terms, UNDATED_REFERENCE.timestamp(), event_day(stated, None)).story_id
            )
            continue
        day = datetime.fromtimestamp(a.when, UTC).date()
        stated = stated_days(text, day, relative=True)
        out.append(index.add(terms, a.when, event_day(stated, day)).story_id)
    return out


def merged_siblings(
    articles: list[Article], predicted: list[int], siblings: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The sibling pairs some predicted story holds members of both of."""
    events_of: dict[int, set[str]] = {}
    for a, story in zip(articles, predicted, strict=True):
        events_of.setdefault(story, set()).add(a.story)
    return [(a, b) for a, b in siblings if any({a, b} <= e for e in events_of.values())]


def bcubed(predicted: list[int], gold: list[str]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 of a clustering against gold labels."""
    pairs = Counter(zip(predicted, gold, strict=True))
    sizes_p = Counter(predicted)
    sizes_g = Counter(gold)
    precision = sum(n * n / sizes_p[p] for (p, _), n in pairs.items()) / len(gold)
    recall = sum(n * n / sizes_g[g] for (_, g), n in pairs.items()) / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run(headlines: list[Headline], params: StoryParams) -> Score:
    index = StoryIndex(params)
    predicted: list[int] = []
    started = time.perf_counter()
    for h in headlines:
        terms = article_terms(h.title, [], params.weights)
        day = datetime.fromtimestamp(h.when, UTC).date()
        stated = stated_days(h.title, day, relative=True)
        predicted.append(index.add(terms, h.when, event_day(stated, day)).story_id)
    seconds = time.perf_counter() - started
    p, r, f1 = bcubed(predicted, [h.story for h in headlines])
    return Score(p, r, f1, len(headlines) / seconds, len(set(predicted)))


SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_REFERENCE = date(2026, 12, 3)  # the undated seeds' calendar dates read against this
Partition = tuple[tuple[str, ...], ...]


def seed_orders(params: StoryParams, together: bool) -> Counter[Partition]:
    """The stories of the five seeds in each of their 120 arrival orders, read as the
    layer reads undated files (calendar dates only), 004 linked to 001 by their
    passage: how many orders gave each partition. `together`: the frequencies learnt
    from all five first (one folder scan), else one article at a time."""
    seeds = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        day = event_day(stated_days("\n".join(lines), SEED_REFERENCE, relative=False), None)
        seeds.append((path.name[:3], article_terms(lines[0], lines[1:], params.weights), day))
    partner = {"001": "004", "004": "001"}
    outcomes: Counter[Partition] = Counter()
    for order in itertools.permutations(seeds):
        index, story = StoryIndex(params), {}
        if together:
            for _, terms, _ in order:
                index.learn(terms)
        for name, terms, day in order:
            linked = story.get(partner.get(name, ""))
            story[name] = index.add(terms, 0.0, day, linked, learned=together).story_id
        groups = {tuple(sorted(n for n in story if story[n] == s)) for s in story.values()}
        outcomes[tuple(sorted(groups))] += 1
    return outcomes


def undated_curve(articles: list[Article], siblings: list[tuple[str, str]]) -> None:
    """The table behind `undated_threshold`: the seeds' stories over all arrival orders,
    and the labelled set read undated, at each value."""
    reading: Partition = (("000",), ("001", "004"), ("002",), ("003",))
    print(
        "| undated_threshold | Seeds, one scan: orders giving the reading | one at a time "
        "| Labelled set undated: B³ F1 | Siblings merged |"
    )
    print("|---:|---:|---:|---:|---:|")
    for value in (0.08, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5):
        params = replace(StoryParams(), undated_threshold=value)
        together, alone = seed_orders(params, True), seed_orders(params, False)
        predicted = place_articles(articles, params, "undated")
        f1 = bcubed(predicted, [a.story for a in articles])[2]
        merged = len(merged_siblings(articles, predicted, siblings))
        print(
            f"| {value:.2f} | {together[reading]}/120 | {alone[reading]}/120 | {f1:.3f} "
            f"| {merged} of {len(siblings)} |"
        )


def ingest_cost(size: int, rounds: int) -> list[tuple[str, float]]:
    """CPU ms per article of `Ingester.ingest` over the ingest benchmark's corpus,
    stories off and on alternately, each in a new database, all in this thread
    (workers=0, so the reading the pool would do is counted too)."""
    import tempfile

    from aggregator.config import Config, StoriesConfig
    from aggregator.ingest.pipeline import Ingester
    from aggregator.storage.store import Store
    from bench.corpus import Corpus

    docs = list(Corpus(size).documents())
    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                db = Path(tmp) / f"{mode}-{n}.db"
                config = replace(Config(), database=db, stories=StoriesConfig(enabled=mode == "on"))
                with Store(db, config.dedup.minhash) as store:
                    ingester = Ingester(store, config, workers=0)
                    started = time.process_time()
                    list(ingester.ingest(docs))
                    ingester.close()
                    results.append((mode, (time.process_time() - started) / size * 1e3))
    return results


def window_cost(size: int) -> list[tuple[int, float, float]]:
    """CPU ms per article of `StoryIndex.add` while one window fills with `size`
    synthetic articles (the feeds benchmark's corpus, all within two days, so no
    story closes), with the candidate bound (`candidate_stories`) and without
    it, in the same run: (articles so far, bounded, unbounded) per fifth."""
    from aggregator.model import Article
    from aggregator.stories.layer import read_article
    from bench.corpus import Corpus

    weights = StoryParams().weights
    readings = []
    for doc in Corpus(size, per_day=max(1, size // 2)).documents():
        title, *paragraphs = doc.content.decode("utf-8").split("\n")
        article = Article(title, doc.modified_at, tuple(paragraphs), None, True)
        readings.append(read_article(article, weights))
    readings.sort(key=lambda r: r.when)
    marks = [size * k // 5 for k in range(1, 6)]
    costs: dict[int, list[float]] = {}
    for bound in (StoryParams().candidate_stories, 10**9):
        index = StoryIndex(replace(StoryParams(), candidate_stories=bound))
        started, at = time.process_time(), 0
        for n, reading in enumerate(readings, 1):
            index.add(reading.terms, reading.when, reading.day)
            if n in marks:
                now = time.process_time()
                costs.setdefault(n, []).append((now - started) / (n - at) * 1e3)
                started, at = now, n
    return [(n, costs[n][0], costs[n][1]) for n in marks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=UCI_CSV)
    parser.add_argument(
        "--thresholds", default="0.15,0.2,0.25,0.3,0.35,0.4", help="comma-separated"
    )
    parser.add_argument(
        "--articles",
        type=Path,
        help="a labelled full-article folder (tests/fixtures/events) instead of the headlines",
    )
    parser.add_argument(
        "--ingest-cost",
        type=int,
        metavar="N",
        help="instead: CPU per article of ingesting N synthetic articles, stories off and on",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --ingest-cost")
    parser.add_argument(
        "--window",
        type=int,
        metavar="N",
        help="instead: CPU per article of placing N synthetic articles in one window, "
        "with the candidate bound and without",
    )
    args = parser.parse_args(argv)
    if args.window:
        print(f"{args.window:,} synthetic articles in one window; CPU ms per article\n")
        print("| Articles so far | Bounded (default) | Every candidate | Ratio |")
        print("|---:|---:|---:|---:|")
        for n, bounded, every in window_cost(args.window):
            print(f"| {n:,} | {bounded:.3f} | {every:.3f} | {every / bounded:.2f}x |")
        return 0
    if args.ingest_cost:
        costs = ingest_cost(args.ingest_cost, args.rounds)
        for mode in ("off", "on"):
            mine = sorted(c for m, c in costs if m == mode)
            print(
                f"stories {mode}: CPU ms/article {statistics.median(mine):.3f} "
                f"({mine[0]:.3f}-{mine[-1]:.3f})"
            )
        return 0
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | {StoryParams().threshold})
    if args.articles:
        articles, siblings = load_articles(args.articles)
        gold = [a.story for a in articles]
        print(f"{len(articles)} articles, {len(set(gold))} events, {len(siblings)} sibling pairs\n")
        undated_curve(articles, siblings)
        print()
        print("| Read | Contender | Threshold | B³ P | B³ R | B³ F1 | Siblings merged |")
        print("|---|---|---:|---:|---:|---:|---|")
        for mode in MODES:
            for name, params in (("ours", StoryParams()), ("plain TF-IDF", BASELINE)):
                for threshold in thresholds:
                    chosen = replace(params, threshold=threshold)
                    predicted = place_articles(articles, chosen, mode)
                    p, r, f1 = bcubed(predicted, gold)
                    merged = merged_siblings(articles, predicted, siblings)
                    shown = ", ".join(f"{a}+{b}" for a, b in merged) or "none"
                    print(
                        f"| {mode} | {name} | {threshold:.2f} | {p:.3f} | {r:.3f} | {f1:.3f} "
                        f"| {shown} |"
                    )
        return 0
    if not args.data.exists():
        parser.error(f"{args.data}: not found (the shared data folder)")
    headlines = load_uci(args.data)
    gold = len({h.story for h in headlines})
    print(f"{len(headlines):,} headlines, {gold} gold stories, streamed in arrival order\n")
    print("| Contender | Threshold | B³ precision | B³ recall | B³ F1 | Stories | Articles/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    default = StoryParams().threshold
    for name, params in (("ours", StoryParams()), ("plain TF-IDF", BASELINE)):
        for threshold in thresholds:
            s = run(headlines, replace(params, threshold=threshold))
            mark = " (default)" if threshold == default else ""
            print(
                f"| {name} | {threshold:.2f}{mark} | {s.precision:.3f} | {s.recall:.3f} | "
                f"{s.f1:.3f} | {s.stories:,} | {s.per_second:,.0f} |"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
