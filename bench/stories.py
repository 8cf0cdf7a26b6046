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

For each threshold, B-cubed precision (of each article: the share of its
predicted story that is in its gold story), recall (the share of its gold
story that is in its predicted story) and F1, averaged over articles, and
articles per second (the whole `add` path: terms, dates, scoring, joining).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from aggregator.stories.assign import StoryIndex, StoryParams
from aggregator.stories.dates import stated_days
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
        days = stated_days(h.title, day, relative=True) if params.use_dates else set()
        predicted.append(index.add(terms, h.when, days).story_id)
    seconds = time.perf_counter() - started
    p, r, f1 = bcubed(predicted, [h.story for h in headlines])
    return Score(p, r, f1, len(headlines) / seconds, len(set(predicted)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=UCI_CSV)
    parser.add_argument(
        "--thresholds", default="0.15,0.2,0.25,0.3,0.35,0.4", help="comma-separated"
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        parser.error(f"{args.data}: not found (the shared data folder)")
    headlines = load_uci(args.data)
    gold = len({h.story for h in headlines})
    print(f"{len(headlines):,} headlines, {gold} gold stories, streamed in arrival order\n")
    print("| Contender | Threshold | B³ precision | B³ recall | B³ F1 | Stories | Articles/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    default = StoryParams().threshold
    for name, params in (("ours", StoryParams()), ("plain TF-IDF", BASELINE)):
        for threshold in sorted({float(t) for t in args.thresholds.split(",")} | {default}):
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
