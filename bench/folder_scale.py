"""Folder scale benchmark: one folder of N small files through the folder source.

Run from the repository root:

    .venv/bin/python -m bench.folder_scale --sizes 10000,100000 --out bench/out/folder-scale.md

For every size N, in a fresh process (so that peak RSS belongs to one size),
N small text files (~500 bytes: the title and first two paragraphs of an
article of the ingest benchmark's corpus) are written into ONE folder of a
temporary directory. After a pause of 2.1 s (so that no file is within the
watcher's 2 s racy window, which would make the second scan read it again),
these are timed, each on a warm page cache (the walk and the scans best of 3):

* **discover**: `list(discover([folder]))`, the walk alone;
* **scan 1**: `FolderWatcher.scan()` on a new watcher: walk, stat and read
  every file (what the daemon's first scan does before the pipeline);
* **scan 2**: the same watcher again, nothing changed: walk and stat only
  (every later scan of an idle folder);
* **ingest**: `aggregator -q ingest FOLDER` run in process into a new database
  (discover, read, extract, sign, match, store: everything the command does);
* **re-ingest**: the same command again: every file read, hashed and skipped.

Reported per phase: wall seconds, microseconds per file, and the ratio of the
per-file cost at the largest size to that at the smallest (1.0 means linear;
above 1 means each file costs more in a bigger folder). Also the worker's peak
RSS. The figures are machine- and load-dependent; the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import Corpus

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("discover", "scan 1", "scan 2", "ingest", "re-ingest")
RACY_PAUSE = 2.1


def _write_files(folder: Path, size: int) -> int:
    """N small articles in one folder; returns their total bytes."""
    folder.mkdir()
    total = 0
    for n, doc in enumerate(Corpus(size).documents()):
        content = b"\n".join(doc.content.split(b"\n")[:3]) + b"\n"
        (folder / f"f{n:06d}.txt").write_bytes(content)
        total += len(content)
    return total


def _ingest(config: Path, folder: Path) -> None:
    from aggregator.cli.main import cli

    try:
        cli.main(["--config", str(config), "ingest", "-q", str(folder)], standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise RuntimeError(f"ingest exited with {e.code}") from e


def work(size: int, scratch: Path) -> dict[str, Any]:
    """Runs in its own process: generate, then time every phase."""
    from aggregator.config import Config
    from aggregator.service.watch import FolderWatcher
    from aggregator.sources.folder import FileTask, discover

    folder = scratch / "news"
    started = time.perf_counter()
    total_bytes = _write_files(folder, size)
    generate = time.perf_counter() - started
    time.sleep(RACY_PAUSE)
    extensions = Config().ingest.extensions
    seconds: dict[str, float] = {}

    def best(phase: str, run: Any, repeat: int = 3) -> Any:
        """Best of `repeat` runs (the walk and the scans change nothing on disk)."""
        times, value = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            value = run()
            times.append(time.perf_counter() - started)
        seconds[phase] = min(times)
        return value

    tasks = best("discover", lambda: list(discover([folder], extensions)))
    assert sum(isinstance(t, FileTask) for t in tasks) == size, "every file found once"

    max_bytes = Config().ingest.max_file_bytes
    first = best(
        "scan 1", lambda: sum(1 for _ in FolderWatcher([folder], extensions, max_bytes).scan())
    )
    watcher = FolderWatcher([folder], extensions, max_bytes)
    sum(1 for _ in watcher.scan())
    second = best("scan 2", lambda: sum(1 for _ in watcher.scan()))
    assert (first, second) == (size, 0), (first, second)

    config = scratch / "aggregator.toml"
    config.write_text('database = "bench.db"\nfolders = []\n', encoding="utf-8")
    for phase in ("ingest", "re-ingest"):
        print(f"  {size:,} files: {phase} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        _ingest(config, folder)
        seconds[phase] = time.perf_counter() - started
    return {
        "files": size,
        "bytes": total_bytes,
        "generate_seconds": round(generate, 2),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "us_per_file": {k: round(v / size * 1e6, 1) for k, v in seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_start": round(os.getloadavg()[0], 2),
    }


def _run_worker(size: int, tmp: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="folder-scale-", dir=tmp) as scratch:
        result = subprocess.run(
            [sys.executable, "-m", "bench.folder_scale", "--worker", str(size), scratch],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
    measured: dict[str, Any] = json.loads(result.stdout)
    return measured


def _table(results: list[dict[str, Any]]) -> str:
    small, large = results[0], results[-1]
    head = [f"{r['files']:,} files: s (µs/file)" for r in results]
    ratio = f"per-file ratio {large['files'] // small['files']}x files"
    lines = [
        "| phase | " + " | ".join(head) + f" | {ratio} |",
        "|---" * (len(results) + 2) + "|",
    ]
    for phase in PHASES:
        cells = [f"{r['seconds'][phase]:.2f} ({r['us_per_file'][phase]:.0f})" for r in results]
        factor = large["us_per_file"][phase] / small["us_per_file"][phase]
        lines.append(f"| {phase} | " + " | ".join(cells) + f" | {factor:.2f} |")
    lines.append(
        "| peak RSS MB | " + " | ".join(f"{r['peak_rss_mb']:.0f}" for r in results) + " | |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated file counts")
    parser.add_argument("--tmp", type=Path, help="where the temporary folders go")
    parser.add_argument("--out", type=Path, help="also write the table here (and .json beside)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("scratch", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(work(args.worker, args.scratch)))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results = []
    for size in sizes:
        print(f"{size:,} files ...", file=sys.stderr, flush=True)
        results.append(_run_worker(size, args.tmp))
    header = (
        f"Folder scale: {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}; command: python -m bench.folder_scale "
        f"--sizes {','.join(map(str, sizes))}"
    )
    report = f"{header}\n\n{_table(results)}\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
