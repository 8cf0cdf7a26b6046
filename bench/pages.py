"""Full-text page cleaning (issue 12, item 8): what `pageclean.py` changes, and its cost.

Run from the repository root on a folder of saved article pages (default: the
fixtures in tests/data/pages/):

    python -m bench.pages [DIR ...] [--rounds 5] [--show]

Each page is read twice per round, interleaved: as trafilatura alone reads it
(`read_page(clean=False)`) and with comment threads, ad blocks and the repeated
headline removed (`clean=True`). Printed: pages, pages whose paragraphs
changed, paragraphs removed and added, pages that only one of the two could
read, and the CPU time of each (the sum over pages of each page's best round)
with their ratio. `--show` lists every removed or added paragraph under its
page, for a person to judge: whether what went was a comment, an ad or a
headline, or the story (the figures in docs/benchmarks.md were judged so).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.errors import ExtractError
from aggregator.sources.htmltext import read_page

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "pages"


@dataclass
class Totals:
    pages: int = 0
    changed: int = 0
    removed: int = 0
    added: int = 0
    unreadable: dict[str, int] = field(default_factory=lambda: {"plain": 0, "clean": 0})
    seconds: dict[str, float] = field(default_factory=lambda: {"plain": 0.0, "clean": 0.0})


def _read(content: bytes, clean: bool) -> tuple[tuple[str, ...] | None, float]:
    started = time.process_time()
    try:
        paragraphs: tuple[str, ...] | None = read_page(
            content, "https://bench.example/page", clean=clean
        ).paragraphs
    except ExtractError:
        paragraphs = None
    return paragraphs, time.process_time() - started


def measure(paths: list[Path], rounds: int, show: bool) -> Totals:
    totals = Totals()
    for path in paths:
        content = path.read_bytes()
        best = {"plain": float("inf"), "clean": float("inf")}
        read: dict[str, tuple[str, ...] | None] = {}
        for _ in range(rounds):
            for mode in ("plain", "clean"):
                read[mode], seconds = _read(content, clean=mode == "clean")
                best[mode] = min(best[mode], seconds)
        totals.pages += 1
        for mode in best:
            totals.seconds[mode] += best[mode]
            totals.unreadable[mode] += read[mode] is None
        plain, clean = read["plain"] or (), read["clean"] or ()
        if plain == clean:
            continue
        totals.changed += 1
        removed = [p for p in plain if p not in clean]
        added = [p for p in clean if p not in plain]
        totals.removed += len(removed)
        totals.added += len(added)
        if show:
            print(f"== {path.name}: {len(plain)} -> {len(clean)} paragraphs")
            print("".join(f"   - {p[:160]}\n" for p in removed), end="")
            print("".join(f"   + {p[:160]}\n" for p in added), end="")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", type=Path, default=[DEFAULT_DIR])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="list what changed, page by page")
    args = parser.parse_args()
    paths = sorted(p for d in args.dirs for p in d.iterdir() if p.suffix in (".html", ".htm"))
    if not paths:
        parser.error("no .html or .htm files in " + ", ".join(map(str, args.dirs)))
    totals = measure(paths, args.rounds, args.show)
    plain, clean = totals.seconds["plain"], totals.seconds["clean"]
    print(
        f"\npages {totals.pages}, changed {totals.changed}: "
        f"{totals.removed} paragraphs removed, {totals.added} added; "
        f"unreadable plain {totals.unreadable['plain']}, clean {totals.unreadable['clean']}"
    )
    print(
        f"CPU (best of {args.rounds}): plain {plain:.3f} s, clean {clean:.3f} s, "
        f"ratio {clean / plain:.3f}"
    )


if __name__ == "__main__":
    main()
