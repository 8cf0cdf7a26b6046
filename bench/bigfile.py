"""Large files (issue 13, item 5): wall time, CPU and peak RSS of ingesting one big file.

Run from the repository root:

    python -m bench.bigfile                                # every variant
    python -m bench.bigfile --variants short-10MB.txt --compare HEAD --rounds 3

Files are generated into a temporary folder (deterministic: words from
`bench.corpus`, seeded), each at most `--mib` MiB (default 10, the size cap
`ingest.max_file_bytes`, so the largest file the cap lets through):

* `short-1MB.txt`, `short-3MB.txt`, `short-10MB.txt`: paragraphs of 5-40
  words separated by blank lines (the issue's file);
* `lines-10MB.txt`: the same paragraphs one per line, no blank line (the seed
  corpus' layout);
* `one-paragraph-10MB.txt`: one line of sentences, no newline at all;
* `long-lines-10MB.txt`: lines of about 100,000 characters, no blank line
  (each line a paragraph);
* `short-10MB.md`: front matter, a `#` title, the paragraphs, a `##` heading
  and a list item now and then;
* `short-10MB.html`: an `<article>` with an `<h1>` and one `<p>` per paragraph;
* `folder-6x10MB`: a folder of six `one-paragraph` files of different text
  (one ingest, so the files meet in the pipeline's batches);
* `tiny.txt`: one short article, for the cost of the process itself
  (interpreter, imports, opening the database).

Each file is ingested by `aggregator --db NEW.db ingest FILE` in a fresh
process on a new database, under GNU time (`/usr/bin/time`): wall time, CPU
time (user + sys) and peak RSS ("maximum resident set size", the largest of
the process and any child it waited for; `aggregator ingest` starts none) of
that one process. The warning the command prints (what was cut to the caps)
is reported with the figures.

**--compare REV** ingests every file with `aggregator/` as of git revision REV
("old", a `git archive` snapshot, `bench.ingest.snapshot`) and with the working
tree's ("new", copied when the run starts), alternating which goes first from
round to round; figures are medians over `--rounds`, and new / old is the
median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import Corpus
from bench.ingest import code_version, git_commit, machine, snapshot, write_report

MIB = 1024 * 1024
TIME = "/usr/bin/time"  # GNU time
SEED = 13_05
# The child runs the command line of the copy it starts in, and says which copy that was.
RUN_CLI = (
    "import os, sys, aggregator\n"
    "assert aggregator.__file__.startswith(os.getcwd()), aggregator.__file__\n"
    "from aggregator.cli.main import main\n"
    "sys.argv[0] = 'aggregator'\n"
    "main()\n"
)


def _word_stream(seed: int) -> Iterator[str]:
    """Words of running synthetic news text (Zipf vocabulary, function words), forever."""
    corpus = Corpus(1_000_000, seed=seed)
    for doc in corpus.documents():
        yield from doc.content.decode().lower().replace(".", "").split()


class _Writer:
    """Paragraphs of 5-40 words (one or two sentences) from a deterministic stream."""

    def __init__(self, seed: int) -> None:
        self._words = _word_stream(seed)
        self._rng = np.random.default_rng(seed)

    def sentence(self, n: int) -> str:
        text = " ".join(next(self._words) for _ in range(n))
        return text[0].upper() + text[1:] + "."

    def paragraph(self) -> str:
        n = int(self._rng.integers(5, 41))
        if n < 20:
            return self.sentence(n)
        first = int(self._rng.integers(5, n - 4))
        return self.sentence(first) + " " + self.sentence(n - first)


def _fill(limit: int, head: str, tail: str, sep: str, part: Callable[[], str]) -> str:
    """head + parts joined by sep + tail, as many parts as fit in `limit` UTF-8 bytes."""
    parts: list[str] = []
    size = len(head.encode()) + len(tail.encode())
    while True:
        piece = part()
        grown = size + len(piece.encode()) + (len(sep) if parts else 0)
        if grown > limit:
            return head + sep.join(parts) + tail
        parts.append(piece)
        size = grown


def generate(folder: Path, mib: int, seed: int = SEED) -> dict[str, Path]:
    """Write every variant into `folder`; name -> path, in report order."""
    w = _Writer(seed)
    big = mib * MIB
    files: dict[str, str] = {"tiny.txt": "A tiny article\n\n" + w.paragraph() + "\n"}
    for size in sorted({1, 3, mib}):
        files[f"short-{size}MB.txt"] = _fill(size * MIB, "", "\n", "\n\n", w.paragraph)
    files[f"lines-{mib}MB.txt"] = _fill(big, "", "\n", "\n", w.paragraph)
    files[f"one-paragraph-{mib}MB.txt"] = _fill(big, "", "", " ", w.paragraph)

    def long_line() -> str:
        return _fill(100_000, "", "", " ", w.paragraph)

    files[f"long-lines-{mib}MB.txt"] = _fill(big, "", "\n", "\n", long_line)
    counter = itertools.count()

    def markdown_block() -> str:
        i = next(counter)
        if i % 50 == 49:
            return "## " + w.sentence(6).rstrip(".")
        return ("- " if i % 10 == 9 else "") + w.paragraph()

    files[f"short-{mib}MB.md"] = _fill(
        big,
        "---\ntitle: A big Markdown file\ndate: 2026-12-01\n---\n\n# A big file\n\n",
        "\n",
        "\n\n",
        markdown_block,
    )
    head = "<!DOCTYPE html>\n<html><head><title>A big page</title></head><body><article>"
    files[f"short-{mib}MB.html"] = _fill(
        big,
        head + "<h1>A big page</h1>\n",
        "</article></body></html>\n",
        "\n",
        lambda: f"<p>{w.paragraph()}</p>",
    )
    paths = {}
    for name, text in files.items():
        paths[name] = folder / name
        paths[name].write_text(text, encoding="utf-8")
    several = folder / f"folder-6x{mib}MB"
    several.mkdir()
    for number in range(6):  # distinct texts: what is measured is the batch, not matching
        other = _Writer(seed + 1 + number)
        text = _fill(big, "", "", " ", other.paragraph)
        (several / f"one-paragraph-{number}.txt").write_text(text, encoding="utf-8")
    paths[several.name] = several
    return paths


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def run_one(source: Path, file: Path, db: Path) -> dict[str, Any]:
    """`aggregator --db DB ingest FILE` in a fresh process started in `source`, under
    GNU time: a process started straight from this one would report this one's peak
    RSS as its own floor (Linux keeps the larger `maxrss` across fork and exec)."""
    command = [sys.executable, "-c", RUN_CLI, "--db", str(db), "ingest", str(file)]
    with tempfile.TemporaryDirectory(prefix="bench-bigfile-run-") as scratch:
        figures = Path(scratch) / "time"
        timed = [TIME, "-f", "%e %U %S %M", "-o", str(figures), *command]
        done = subprocess.run(timed, cwd=source, capture_output=True, text=True, check=False)
        wall, user, system, kib = figures.read_text().split()[-4:]
    said = done.stdout + done.stderr
    marker = f"cut to the caps: {file}"
    warnings = [
        line.partition(marker)[2].split(": ", 1)[-1] for line in said.splitlines() if marker in line
    ]
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    if done.returncode != 0 and not errors:
        raise RuntimeError(f"{file.name}: exit {done.returncode}\n{said}")
    warning = "; ".join(errors) if errors else "-"
    if warnings:
        warning = warnings[0] if len(warnings) == 1 else f"{len(warnings)} files; {warnings[0]}"
    return {
        "wall": float(wall),
        "cpu": float(user) + float(system),
        "rss_mib": int(kib) / 1024,
        "warning": warning,
    }


def measure(
    files: dict[str, Path], sources: dict[str, Path], rounds: int, tmp: Path
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every file with every version, `rounds` times, alternating which version goes first."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    versions = list(sources)
    for name, path in files.items():
        results[name] = {v: [] for v in versions}
        for number in range(rounds):
            order = versions if number % 2 == 0 else list(reversed(versions))
            for version in order:
                print(f"{name} round {number + 1}/{rounds}: {version}", file=sys.stderr)
                db = tmp / f"{version}-{number}-{name}.db"
                results[name][version].append(run_one(sources[version], path, db))
                db.unlink(missing_ok=True)
    return results


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _ratio(runs: dict[str, list[dict[str, Any]]], key: str) -> str:
    ratios = [n[key] / o[key] for o, n in zip(runs["old"], runs["new"], strict=True)]
    return f"{statistics.median(ratios):.2f}"


def render(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    files: dict[str, Path],
    info: dict[str, str],
    command: str,
    rounds: int,
) -> str:
    """The Markdown report: one row per file and version, then new / old when comparing."""
    label = {"new": "new (working tree)", "old": f"old ({info.get('old_commit', '')})"}
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, "
        f"Python {info['python']}, {info['platform']}  ",
        f"Code: commit {info['commit']} ({info['aggregator_changes']} in aggregator/; "
        f"sources digest {info['new_code']})"
        + (f"; old: {info['old_commit']} (digest {info['old_code']})" if "old_code" in info else "")
        + "  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average "
        f"{info['load_start']} at the start, {info['load_end']} at the end; "
        f"median of {rounds} round(s)",
        "",
        "| File | Bytes | Version | Wall s | CPU s | Peak RSS MiB | What was cut (warning) |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for name, runs in results.items():
        size = _size(files[name])
        for version in ("old", "new"):
            if version not in runs:
                continue
            rows = runs[version]
            lines.append(
                f"| {name} | {size:,} | {label[version]} | {_median(rows, 'wall'):.2f} "
                f"| {_median(rows, 'cpu'):.2f} | {_median(rows, 'rss_mib'):,.0f} "
                f"| {rows[-1]['warning']} |"
            )
    if all("old" in runs for runs in results.values()):
        lines += [
            "",
            "New / old (median of the per-round ratios):",
            "",
            "| File | Wall | CPU | Peak RSS |",
            "|---|---:|---:|---:|",
        ]
        for name, runs in results.items():
            lines.append(
                f"| {name} | {_ratio(runs, 'wall')} | {_ratio(runs, 'cpu')} "
                f"| {_ratio(runs, 'rss_mib')} |"
            )
    return "\n".join(lines) + "\n"


def _loads() -> str:
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bigfile", description=__doc__)
    parser.add_argument("--mib", type=int, default=10, help="size of the big variants (MiB)")
    parser.add_argument("--variants", help="comma-separated file names (default: all)")
    parser.add_argument("--compare", metavar="REV", help="also run aggregator/ as of git REV")
    parser.add_argument("--rounds", type=int, default=1, help="runs per file and version")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    parser.add_argument("--tmp", type=Path, help="folder for the files and databases")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    command = "python -m bench.bigfile " + " ".join(argv if argv is not None else sys.argv[1:])
    info = machine()
    info["load_start"] = _loads()
    with tempfile.TemporaryDirectory(prefix="bench-bigfile-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "files").mkdir()
        files = generate(tmp / "files", args.mib)
        if args.variants:
            wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
            unknown = sorted(set(wanted) - set(files))
            if unknown:
                parser.error(f"unknown variants {unknown}; known: {', '.join(files)}")
            files = {name: files[name] for name in wanted}
        sources = {"new": snapshot(tmp / "new")}
        if args.compare:
            info["old_commit"] = git_commit(args.compare)
            sources["old"] = snapshot(tmp / "old", info["old_commit"])
        for version, source in sources.items():
            info[f"{version}_code"] = code_version(source)
            compileall.compile_dir(source, quiet=1)
        results = measure(files, sources, args.rounds, tmp)
        info["load_end"] = _loads()
        report = render(results, files, info, command, args.rounds)
    write_report(report, args.out, args.json, {"machine": info, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
