"""Ingest benchmark: end-to-end `Ingester.ingest` throughput, memory, store size and recall.

Run from the repository root:

    python -m bench.ingest --sizes 1000,10000,100000 --out /tmp/ingest.md

For every size N the benchmark generates the same deterministic synthetic corpus
(seeded) and, each in a fresh subprocess so that peak RSS belongs to one
measurement only:

* **ingest**: N plain-text articles through `Ingester.ingest` into a new SQLite
  database in a temporary folder (extract, segment, sign, look up, verify,
  cluster, one transaction per article). Reported: wall time, articles/s,
  milliseconds per article, peak RSS, database size, and the recall of the
  planted near-duplicate passages (a planted pair counts as found when a
  found passage joins the two articles: a `passage_matches` row before schema 6,
  two carriers of one `passages` group since);
* **restart**: re-opening the finished database and building a new `Ingester`
  (which loads the band keys of every stored unit into the in-memory index);
* **naive baseline** (for sizes up to `--baseline-max`): whole paragraphs,
  datasketch `MinHash(num_perm=128)` updated once per word 3-gram shingle
  (default sha1 hash), queried against and then inserted into an in-memory
  `MinHashLSH(threshold=0.5, num_perm=128)`.

The corpus is generated while it is consumed (so it never sits in memory and
does not inflate peak RSS); the time spent inside the generator is measured and
subtracted from the wall time, so only the work of the system under test counts.

Workers run a copy of `aggregator/` and `bench/` taken when the run starts, so
edits to the checkout during a long run cannot mix two versions in one table.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import SEED, Corpus, Timed, location

ROOT = Path(__file__).resolve().parent.parent


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    with Path("/proc/self/status").open() as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def code_version(root: Path = ROOT) -> str:
    """A digest of the aggregator sources, to tell whether they changed between workers."""
    digest = hashlib.sha256()
    for path in sorted((root / "aggregator").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _context() -> dict[str, Any]:
    """Facts recorded by every worker: the code it imported and the machine's load."""
    return {"code": code_version(), "load_start": os.getloadavg()[0]}


# -- workers (each runs in its own process) ----------------------------------------------


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def work_ingest(size: int, db: Path, seed: int, profile: Path | None) -> dict[str, Any]:
    from aggregator.config import Config
    from aggregator.pipeline import Ingester
    from aggregator.store import Store

    context = _context()
    cfg = Config(database=db)
    store = Store(cfg.database, cfg.dedup.minhash)
    ingester = Ingester(store, cfg)
    corpus = Corpus(size, seed=seed)
    docs = Timed(corpus.documents(), progress_every=size // 10 if size >= 20_000 else 0)
    rss_before = _rss_mb()
    statuses: dict[str, int] = {}
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for outcome in ingester.ingest(docs):
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    peak = _peak_rss_mb()
    index_size, index_runs = ingester.index.size, ingester.index.runs
    store.close()
    if profiler and profile:
        profiler.dump_stats(profile)

    conn = sqlite3.connect(db)
    ids = dict(conn.execute("SELECT identity, id FROM articles"))
    found = _found_pairs(conn)
    counts = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("articles", "paragraphs", "units", "cluster_members")
    }
    counts["passage_matches"] = _match_rows(conn)
    counts["clusters"] = conn.execute(
        "SELECT count(*) FROM clusters WHERE merged_into IS NULL"
    ).fetchone()[0]
    words = conn.execute("SELECT sum(word_count) FROM units").fetchone()[0] or 0
    conn.close()

    hits = {"paragraph": 0, "spliced": 0}
    planted = {"paragraph": 0, "spliced": 0}
    for plant in corpus.plants:
        a = int(ids[location(plant.target, plant.target_source)])
        b = int(ids[location(plant.source, plant.source_source)])
        planted[plant.mode] += 1
        hits[plant.mode] += (min(a, b), max(a, b)) in found
    return {
        "kind": "ingest",
        "size": size,
        **context,
        "load_end": os.getloadavg()[0],
        "seconds": wall - docs.seconds,
        "generator_seconds": docs.seconds,
        "statuses": statuses,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "db_bytes": _db_bytes(db),
        "counts": counts,
        "unit_words": words,
        "index_size": index_size,
        "index_runs": index_runs,
        "planted": planted,
        "found": hits,
        "profiled": profile is not None,
    }


def work_restart(db: Path) -> dict[str, Any]:
    from aggregator.config import Config
    from aggregator.pipeline import Ingester
    from aggregator.store import Store

    context = _context()
    cfg = Config(database=db)
    rss_before = _rss_mb()
    started = time.perf_counter()
    store = Store(cfg.database, cfg.dedup.minhash)
    ingester = Ingester(store, cfg)
    seconds = time.perf_counter() - started
    result = {
        "kind": "restart",
        **context,
        "load_end": os.getloadavg()[0],
        "seconds": seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "index_size": ingester.index.size,
    }
    store.close()
    return result


_WORD = re.compile(r"\w+")


def work_baseline(size: int, seed: int) -> dict[str, Any]:
    from datasketch import MinHash, MinHashLSH

    context = _context()
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    corpus = Corpus(size, seed=seed)
    docs = Timed(corpus.documents(), progress_every=size // 10 if size >= 20_000 else 0)
    found: set[tuple[int, int]] = set()
    started = time.perf_counter()
    for index, doc in enumerate(docs):
        paragraphs = doc.content.decode("utf-8").split("\n")[1:]
        for position, paragraph in enumerate(paragraphs):
            words = _WORD.findall(paragraph.lower())
            shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
            m = MinHash(num_perm=128)
            for shingle in shingles:
                m.update(shingle.encode())
            for other, _ in lsh.query(m):
                if other != index:
                    found.add((other, index))
            lsh.insert((index, position), m)
    wall = time.perf_counter() - started
    hits = {"paragraph": 0, "spliced": 0}
    planted = {"paragraph": 0, "spliced": 0}
    for plant in corpus.plants:
        planted[plant.mode] += 1
        hits[plant.mode] += (plant.source, plant.target) in found
    return {
        "kind": "baseline",
        "size": size,
        **context,
        "load_end": os.getloadavg()[0],
        "seconds": wall - docs.seconds,
        "generator_seconds": docs.seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "planted": planted,
        "found": hits,
    }


def work_generate(size: int, seed: int) -> dict[str, Any]:
    corpus = Corpus(size, seed=seed)
    started = time.perf_counter()
    n_bytes = sum(len(doc.content) for doc in corpus.documents())
    return {
        "kind": "generate",
        "size": size,
        "seconds": time.perf_counter() - started,
        "bytes": n_bytes,
        "plants": len(corpus.plants),
        "peak_rss_mb": _peak_rss_mb(),
    }


# -- the driver -------------------------------------------------------------------------


def snapshot(dest: Path) -> Path:
    """Copy the aggregator and bench sources, so that every worker runs the same code.

    Workers start with the copy as their working directory, which comes first on
    `sys.path`; edits made to the checkout during a long run do not reach them.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "out", "*.db")
    for package in ("aggregator", "bench"):
        shutil.copytree(ROOT / package, dest / package, ignore=skip)
    return dest


def _run_worker(args: list[str], source: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.ingest", "--worker", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=source)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> dict[str, str]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return "unknown"
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "aggregator")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "aggregator_changes": "uncommitted changes" if dirty else "clean",
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _recall(result: dict[str, Any]) -> str:
    planted, found = result["planted"], result["found"]
    total = sum(planted.values())
    if total == 0:
        return "n/a"
    parts = "/".join(
        f"{found[m] / planted[m]:.1%}" if planted[m] else "n/a" for m in ("paragraph", "spliced")
    )
    return f"{sum(found.values()) / total:.1%} ({parts})"


def render(results: dict[int, dict[str, Any]], command: str, info: dict[str, str]) -> str:
    """The Markdown report: corpus, our pipeline, the naive baseline, the targets."""
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}, NumPy {info['numpy']}  ",
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']}) when the run "
        f"started; every worker ran a copy taken then (aggregator sources digest {info['code']})  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "Corpus (per size; generator time excluded from every figure below):",
        "",
        "| Articles | Paragraphs | Units | Words/article | Planted passages | Generator s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in results.items():
        ing = r["ingest"]
        c = ing["counts"]
        lines.append(
            f"| {size:,} | {c['paragraphs']:,} | {c['units']:,} | "
            f"{ing['unit_words'] / size:.0f} | {sum(ing['planted'].values()):,} | "
            f"{ing['generator_seconds']:.1f} |"
        )
    lines += [
        "",
        "Ingest through `Ingester.ingest` (fresh SQLite database, one transaction per article):",
        "",
        "| Articles | Ingest s | Articles/s | ms/article | Peak RSS MB | DB MB | DB KB/article "
        "| Passage matches | Clusters | Planted recall (own para/spliced) | Restart s "
        "| Restart peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for size, r in results.items():
        ing, rs = r["ingest"], r["restart"]
        db_mb = ing["db_bytes"] / 1e6
        lines.append(
            f"| {size:,} | {ing['seconds']:.1f} | {size / ing['seconds']:,.0f} | "
            f"{1000 * ing['seconds'] / size:.2f} | {ing['peak_rss_mb']:,.0f} | {db_mb:,.1f} | "
            f"{ing['db_bytes'] / 1024 / size:.1f} | {ing['counts']['passage_matches']:,} | "
            f"{ing['counts']['clusters']:,} | {_recall(ing)} | {rs['seconds']:.2f} | "
            f"{rs['peak_rss_mb']:,.0f} |"
        )
    with_baseline = {s: r for s, r in results.items() if "baseline" in r}
    if with_baseline:
        lines += [
            "",
            "Naive baseline (whole paragraphs, datasketch `MinHash(num_perm=128)` per word "
            "3-gram, in-memory `MinHashLSH(threshold=0.5)`, query then insert), same documents:",
            "",
            "| Articles | Naive articles/s | Ours articles/s | Ours / naive "
            "| Naive planted recall (own para/spliced) | Naive peak RSS MB |",
            "|---:|---:|---:|---:|---|---:|",
        ]
        for size, r in with_baseline.items():
            ours = size / r["ingest"]["seconds"]
            naive = size / r["baseline"]["seconds"]
            lines.append(
                f"| {size:,} | {naive:,.0f} | {ours:,.0f} | {ours / naive:.1f}x | "
                f"{_recall(r['baseline'])} | {r['baseline']['peak_rss_mb']:,.0f} |"
            )
    loads = ", ".join(
        f"{size:,}: {r['ingest']['load_start']:.1f} -> {r['ingest']['load_end']:.1f}"
        for size, r in results.items()
    )
    lines += ["", f"1-minute load average at the start and end of each ingest run: {loads}."]
    digests = {
        w["code"]
        for r in results.values()
        for key in ("ingest", "restart", "baseline")
        if (w := r.get(key)) is not None
    }
    if digests != {info["code"]}:
        lines.append(
            "**WARNING: the aggregator sources changed during this run "
            f"(digests {', '.join(sorted(digests | {info['code']}))}); "
            "the rows do not all measure the same code.**"
        )
    lines += ["", "Targets:", ""]
    for size, r in with_baseline.items():
        ratio = r["baseline"]["seconds"] / r["ingest"]["seconds"]
        verdict = "met" if ratio >= 10 else "MISSED"
        lines.append(f"* >= 10x the naive baseline at {size:,}: {ratio:.1f}x, {verdict}")
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        cost = {s: results[s]["ingest"]["seconds"] / s for s in (small, large)}
        growth = cost[large] / cost[small]
        verdict = "met" if growth <= 1.5 else "MISSED"
        lines.append(
            f"* per-article cost at {large:,} within 1.5x of {small:,}: "
            f"{1000 * cost[large]:.2f} ms vs {1000 * cost[small]:.2f} ms = {growth:.2f}x, {verdict}"
        )
    largest = results[sizes[-1]]
    peak = max(largest["ingest"]["peak_rss_mb"], largest["restart"]["peak_rss_mb"])
    verdict = "met" if peak < 1024 else "MISSED"
    lines.append(
        f"* peak RSS at {sizes[-1]:,} under 1 GB (ingest and restart): {peak:,.0f} MB, {verdict}"
    )
    lines.append(
        f"* database size at {sizes[-1]:,}: {largest['ingest']['db_bytes'] / 1e6:,.1f} MB "
        "(reported)"
    )
    if any(r["ingest"]["profiled"] for r in results.values()):
        lines += ["", "**Profiled run: timings include cProfile overhead.**"]
    return "\n".join(lines) + "\n"


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: float(r["seconds"]))


def _measure(
    size: int, seed: int, repeat: int, source: Path, tmp_root: Path | None, profile: list[str]
) -> dict[str, Any]:
    """Ingest `size` articles `repeat` times, then restart on the fastest run's database."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=tmp_root) as tmp:
        runs = []
        for attempt in range(repeat):
            db = Path(tmp) / f"bench-{attempt}.db"
            print(f"ingest {size:,} (run {attempt + 1}/{repeat})", file=sys.stderr)
            worker = ["ingest", "--size", str(size), "--db", str(db), "--seed", str(seed)]
            runs.append(_run_worker(worker + profile, source))
        best = _best(runs)
        db = Path(tmp) / f"bench-{runs.index(best)}.db"
        print(f"restart {size:,}", file=sys.stderr)
        restarts = [_run_worker(["restart", "--db", str(db)], source) for _ in range(repeat)]
    return {"ingest": best, "ingest_runs": runs, "restart": _best(restarts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated article counts")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--baseline-max", type=int, default=10_000, help="largest size to run the baseline at"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest counts")
    parser.add_argument("--tmp", type=Path, help="folder for the temporary databases")
    parser.add_argument("--profile", type=Path, help="cProfile the ingest (one size only)")
    parser.add_argument("--worker", choices=["ingest", "restart", "baseline", "generate"])
    parser.add_argument("--size", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.worker == "ingest":
            result = work_ingest(args.size, args.db, args.seed, args.profile)
        elif args.worker == "restart":
            result = work_restart(args.db)
        elif args.worker == "baseline":
            result = work_baseline(args.size, args.seed)
        else:
            result = work_generate(args.size, args.seed)
        print(json.dumps(result))
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.profile and len(sizes) != 1:
        parser.error("--profile needs exactly one size")
    command = "python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:])
    tmp_root = args.tmp.resolve() if args.tmp else None
    profile = ["--profile", str(args.profile.resolve())] if args.profile else []
    info = machine()
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-src-", dir=tmp_root) as src:
        source = snapshot(Path(src))
        info["code"] = code_version(source)
        for size in sizes:
            results[size] = _measure(size, args.seed, args.repeat, source, tmp_root, profile)
            if size <= args.baseline_max:
                print(f"naive baseline {size:,}", file=sys.stderr)
                baselines = [
                    _run_worker(["baseline", "--size", str(size), "--seed", str(args.seed)], source)
                    for _ in range(args.repeat)
                ]
                results[size]["baseline"] = _best(baselines)
    report = render(results, command, info)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _grouped(conn: sqlite3.Connection) -> bool:
    """Is this a database with passage groups (schema 6+), not N x N pair rows?"""
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'passage_carriers'"
        ).fetchone()
    )


def _found_pairs(conn: sqlite3.Connection) -> set[tuple[int, int]]:
    """Article pairs that share a found passage (every two carriers of one group)."""
    if not _grouped(conn):
        return {
            (min(a, b), max(a, b))
            for a, b in conn.execute("SELECT article_id, other_article_id FROM passage_matches")
        }
    groups: dict[int, set[int]] = {}
    for passage, article in conn.execute("SELECT passage_id, article_id FROM passage_carriers"):
        groups.setdefault(passage, set()).add(article)
    return {(a, b) for members in groups.values() for a in members for b in members if a < b}


def _match_rows(conn: sqlite3.Connection) -> int:
    """Stored passage match rows: carrier rows (schema 6+) or pair rows (before)."""
    table = "passage_carriers" if _grouped(conn) else "passage_matches"
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
