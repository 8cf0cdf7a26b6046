"""Ingest benchmark: end-to-end `Ingester.ingest` throughput, memory, store size and recall.

Run from the repository root:

    python -m bench.ingest --sizes 1000,10000,100000 --out /tmp/ingest.md
    python -m bench.ingest --sizes 10000 --compare 4911f45 --rounds 5 --out /tmp/cmp.md
    python -m bench.ingest --sizes 10000 --engines sqlite,postgresql --rounds 3

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

The ingest worker also records its process CPU time (user + sys of all its
threads, `time.process_time`) over the same span, minus the CPU time spent in the
generator; the ingest runs in the worker's own process (no worker pools), so
that is all the CPU it costs. The driver adds each worker's whole-process CPU
time (start-up, corpus, ingest, counting) from `getrusage(RUSAGE_CHILDREN)`.

**--compare REV** measures the cost of a change instead: `aggregator/` as of git
revision REV ("old") against the working tree's ("new"), on the same corpus in
the same run. Only the ingest runs (no restart, no baseline). For every size,
each of `--rounds` rounds (default 5) ingests once with each version, each in a
fresh process and a new database, alternating which version goes first (old
first in odd rounds). Reported per version: CPU ms per article and wall ms per
article (median over rounds, min-max), worker process CPU, peak RSS, stored
match rows (`passage_matches` pair rows before schema 6, `passage_carriers`
rows since; the table is named) and planted recall; then new / old of CPU per
article, wall per article and peak RSS as the median of the per-round ratios
(min-max), with whether CPU per article stays within +15% (issue 11). The
machine (a shared, noisy one: hence rounds and per-round ratios) and the load
average at the start and end of the run are printed with it.

Workers run a copy of `aggregator/` and `bench/` taken when the run starts, so
edits to the checkout during a long run cannot mix two versions in one table.
With --compare, both copies hold the working tree's `bench/` (so both versions
are counted by the same code, which reads either schema); only `aggregator/`
differs, the old one extracted with `git archive`.

**--engines sqlite,postgresql** ingests the same corpus into each engine's store
instead: a new SQLite file, or a new database on PostgreSQL (`postgresql`: the
server's defaults, a commit waits for its WAL flush; `postgresql-async`: the same
with `synchronous_commit = off` set on that database, a crash may lose the last
commits but never corrupts, much as SQLite's `synchronous = NORMAL`). The
PostgreSQL server is the one `--pg URL` names (its user must be allowed to
create databases; each run gets a database of its own, dropped afterwards) or,
without it, a throwaway server started for the run (bench/pgserver.py; its
defaults, plus any `--pg-option name=value`). `--pg URL` alone means
`--engines postgresql`. Each of `--rounds` rounds ingests once per engine, each
in a fresh process and a new database, the order rotated every round, then
restarts on that database (the index load from that engine). Reported per
engine: articles/s and wall ms per article, the worker's CPU per article and,
on the throwaway server, the server's CPU per article too (all its processes,
over the ingest worker's life), the worker's peak RSS, database size (SQLite:
the file; PostgreSQL: tables, indexes and TOAST of the database's own schema),
restart time and planted recall; then each engine / SQLite of articles/s as the
median of the per-round ratios (min-max). No naive baseline in this mode.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import cProfile
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.corpus import SEED, Corpus, Timed, location

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


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


def _is_url(db: str | Path) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def _database(db: str | Path) -> Any:
    """What `Config(database=...)` takes: a Path, or a PostgresURL for a URL.

    PostgresURL is imported only for a URL, so that --compare can still run an
    `aggregator/` from before the PostgreSQL store on SQLite.
    """
    if not _is_url(db):
        return Path(db)
    from aggregator.config import PostgresURL

    return PostgresURL(str(db))


def _connect(db: str | Path) -> Any:
    """A plain client connection to the finished database, for counting (either engine)."""
    if not _is_url(db):
        return sqlite3.connect(db)
    import psycopg

    return psycopg.connect(str(db), autocommit=True)


def _grouped(conn: Any) -> bool:
    """Is this a database with passage groups (schema 6+), not N x N pair rows?"""
    if not isinstance(conn, sqlite3.Connection):  # PostgreSQL: always the current schema
        return bool(
            conn.execute("SELECT to_regclass('passage_carriers') IS NOT NULL").fetchone()[0]
        )
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'passage_carriers'"
        ).fetchone()
    )


def _found_pairs(conn: Any) -> set[tuple[int, int]]:
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


def _match_rows(conn: Any) -> int:
    """Stored passage match rows: carrier rows (schema 6+) or pair rows (before)."""
    table = "passage_carriers" if _grouped(conn) else "passage_matches"
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- workers (each runs in its own process) ----------------------------------------------


class CpuMeter:
    """Adds up the process CPU time spent inside an iterator (the corpus generator)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, inner: Iterator[T]) -> Iterator[T]:
        while True:
            started = time.process_time()
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                self.seconds += time.process_time() - started
            yield item


_PG_BYTES = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')"
)


def _db_bytes(db: str | Path) -> int:
    """SQLite: the file (and any WAL); PostgreSQL: tables with their indexes and TOAST."""
    if _is_url(db):
        with _connect(db) as conn:
            return int(conn.execute(_PG_BYTES).fetchone()[0])
    db = Path(db)
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def work_ingest(size: int, db: str | Path, seed: int, profile: Path | None) -> dict[str, Any]:
    from aggregator.config import Config
    from aggregator.ingest.pipeline import Ingester
    from aggregator.storage.store import Store
    from bench.proccpu import TreeMeter, become_subreaper

    context = _context()
    cfg = Config(database=_database(db))
    store = Store(cfg.database, cfg.dedup.minhash)
    ingester = Ingester(store, cfg)
    # The preparing pool's workers are the fork server's children: read from /proc.
    become_subreaper()
    meter = TreeMeter()
    tree_started = meter.sample()
    corpus = Corpus(size, seed=seed)
    docs = Timed(corpus.documents(), progress_every=size // 10 if size >= 20_000 else 0)
    generator_cpu = CpuMeter()
    rss_before = _rss_mb()
    statuses: dict[str, int] = {}
    profiler = cProfile.Profile() if profile else None
    cpu_started = time.process_time()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for outcome in ingester.ingest(generator_cpu.wrap(docs)):
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    pool_cpu = TreeMeter.between(tree_started, meter.sample()).children
    peak = _peak_rss_mb()
    index_size, index_runs = ingester.index.size, ingester.index.runs
    index_bytes = getattr(ingester.index, "nbytes", 0)  # older code (--compare) has neither
    if hasattr(ingester, "close"):
        ingester.close()
    store.close()
    if profiler and profile:
        profiler.dump_stats(profile)

    conn = _connect(db)
    ids = dict(conn.execute("SELECT identity, id FROM articles").fetchall())
    found = _found_pairs(conn)
    counts = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("articles", "paragraphs", "units", "cluster_members")
    }
    counts["passage_matches"] = _match_rows(conn)
    match_table = "passage_carriers" if _grouped(conn) else "passage_matches"
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
        "cpu_seconds": cpu - generator_cpu.seconds + pool_cpu,
        "pool_cpu_seconds": pool_cpu,
        "generator_cpu_seconds": generator_cpu.seconds,
        "statuses": statuses,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "db_bytes": _db_bytes(db),
        "counts": counts,
        "match_table": match_table,
        "unit_words": words,
        "index_size": index_size,
        "index_runs": index_runs,
        "index_bytes": index_bytes,
        "planted": planted,
        "found": hits,
        "profiled": profile is not None,
    }


def work_restart(db: str | Path) -> dict[str, Any]:
    from aggregator.config import Config
    from aggregator.ingest.pipeline import Ingester
    from aggregator.storage.store import Store

    context = _context()
    cfg = Config(database=_database(db))
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
        "open_stories": (
            0 if ingester.recorder.stories is None else len(ingester.recorder.stories.index.stories)
        ),
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
    generator_cpu = CpuMeter()
    found: set[tuple[int, int]] = set()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for index, doc in enumerate(generator_cpu.wrap(docs)):
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
    cpu = time.process_time() - cpu_started - generator_cpu.seconds
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
        "cpu_seconds": cpu,
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


def snapshot(dest: Path, ref: str | None = None) -> Path:
    """Copy the aggregator and bench sources, so that every worker runs the same code.

    Workers start with the copy as their working directory, which comes first on
    `sys.path`; edits made to the checkout during a long run do not reach them.
    `bench/` always comes from the checkout; `aggregator/` too, or from git
    revision `ref` when one is given.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "out", "*.db")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "bench", dest / "bench", ignore=skip)
    if ref is None:
        shutil.copytree(ROOT / "aggregator", dest / "aggregator", ignore=skip)
        return dest
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "aggregator"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def git_commit(ref: str) -> str:
    """The short commit id `ref` names now (so that a moving HEAD cannot change it mid-run)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _run_worker(args: list[str], source: Path) -> dict[str, Any]:
    """Run one worker in a fresh process; add the CPU time (user + sys) that process used."""
    command = [sys.executable, "-m", "bench.ingest", "--worker", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=source)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
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
        "| Restart peak RSS MB | Open stories loaded |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for size, r in results.items():
        ing, rs = r["ingest"], r["restart"]
        db_mb = ing["db_bytes"] / 1e6
        lines.append(
            f"| {size:,} | {ing['seconds']:.1f} | {size / ing['seconds']:,.0f} | "
            f"{1000 * ing['seconds'] / size:.2f} | {ing['peak_rss_mb']:,.0f} | {db_mb:,.1f} | "
            f"{ing['db_bytes'] / 1024 / size:.1f} | {ing['counts']['passage_matches']:,} | "
            f"{ing['counts']['clusters']:,} | {_recall(ing)} | {rs['seconds']:.2f} | "
            f"{rs['peak_rss_mb']:,.0f} | {rs.get('open_stories', 0):,} |"
        )
    with_baseline = {s: r for s, r in results.items() if "baseline" in r}
    if with_baseline:
        lines += [
            "",
            "Naive baseline (whole paragraphs, datasketch `MinHash(num_perm=128)` per word "
            "3-gram, in-memory `MinHashLSH(threshold=0.5)`, query then insert), same documents:",
            "",
            "| Articles | Naive articles/s | Ours articles/s | Ours / naive "
            "| Naive CPU ms/article | Ours CPU ms/article (of it the preparing pool) "
            "| Naive / ours CPU | Naive planted recall (own para/spliced) | Naive peak RSS MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for size, r in with_baseline.items():
            ours = size / r["ingest"]["seconds"]
            naive = size / r["baseline"]["seconds"]
            ing, base = r["ingest"], r["baseline"]
            lines.append(
                f"| {size:,} | {naive:,.0f} | {ours:,.0f} | {ours / naive:.1f}x | "
                f"{_ms(base, 'cpu_seconds', size)} | {_ms(ing, 'cpu_seconds', size)} "
                f"({_ms(ing, 'pool_cpu_seconds', size)}) | {_cpu_ratio(r)} | "
                f"{_recall(base)} | {base['peak_rss_mb']:,.0f} |"
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
    lines += [
        "",
        "Index (in memory, after the ingest): "
        + "; ".join(
            f"{size:,} articles: {r['ingest']['index_size']:,} units, "
            f"{r['ingest'].get('index_bytes', 0) / max(r['ingest']['index_size'], 1):.0f} B "
            "of arrays per unit"
            for size, r in results.items()
        )
        + ". Resident memory per unit at window scale: `python -m bench.indexsize`.",
    ]
    lines += ["", "Targets:", ""]
    for size, r in with_baseline.items():
        ratio = r["baseline"]["seconds"] / r["ingest"]["seconds"]
        verdict = "met" if ratio >= 10 else "MISSED"
        lines.append(f"* >= 10x the naive baseline at {size:,} (wall): {ratio:.1f}x, {verdict}")
        cpu = _cpu_ratio(r)
        if cpu != "-":
            met = "met" if float(cpu.rstrip("x")) >= 6 else "MISSED"
            lines.append(f"* >= 6x less CPU than the naive baseline at {size:,}: {cpu}, {met}")
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        cost = {s: results[s]["ingest"]["seconds"] / s for s in (small, large)}
        growth = cost[large] / cost[small]
        verdict = "met" if growth <= 1.3 else "MISSED"
        lines.append(
            f"* per-article cost at {large:,} within 1.3x of {small:,}: "
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


def _ms(run: dict[str, Any], key: str, size: int) -> str:
    return f"{1000 * run[key] / size:.2f}" if key in run else "-"


def _cpu_ratio(result: dict[str, Any]) -> str:
    """Naive CPU / ours (ours with the preparing pool), or '-' for older runs."""
    base, ing = result["baseline"], result["ingest"]
    if "cpu_seconds" not in base or "pool_cpu_seconds" not in ing:
        return "-"
    return f"{base['cpu_seconds'] / ing['cpu_seconds']:.1f}x"


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


# -- --compare: a git revision against the working tree, round by round ----------------

VERSIONS = ("old", "new")
LIMIT = 1.15  # issue 11: ingest CPU per article no worse than +15%


def measure_compare(
    size: int, seed: int, rounds: int, sources: dict[str, Path], tmp_root: Path | None
) -> dict[str, Any]:
    """Ingest `size` articles once per version per round, alternating which goes first."""
    runs: dict[str, list[dict[str, Any]]] = {version: [] for version in VERSIONS}
    order: list[list[str]] = []
    for number in range(rounds):
        first_old = number % 2 == 0
        versions = list(VERSIONS) if first_old else list(reversed(VERSIONS))
        order.append(versions)
        for version in versions:
            print(f"ingest {size:,} round {number + 1}/{rounds}: {version}", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=tmp_root) as tmp:
                db = Path(tmp) / "bench.db"
                worker = ["ingest", "--size", str(size), "--db", str(db), "--seed", str(seed)]
                runs[version].append(_run_worker(worker, sources[version]))
    return {"runs": runs, "order": order}


def _loads() -> str:
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())


def _spread(values: list[float], digits: int = 2) -> str:
    """Median (min-max) of `values`."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def _same(values: list[str]) -> str:
    """The value every round gave, or all of them when the rounds disagree."""
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else "varies: " + " / ".join(distinct)


def _per_article_ms(run: dict[str, Any], key: str) -> float:
    return 1000 * float(run[key]) / int(run["size"])


def _ratios(result: dict[str, Any], key: str) -> list[float]:
    """New / old of `key`, round by round."""
    old, new = result["runs"]["old"], result["runs"]["new"]
    return [float(n[key]) / float(o[key]) for o, n in zip(old, new, strict=True)]


def render_compare(
    results: dict[int, dict[str, Any]],
    command: str,
    info: dict[str, str],
) -> str:
    """The Markdown report of a --compare run: each version per size, then new / old."""
    rounds = max(len(r["order"]) for r in results.values())

    lines = [
        f"Command: `{command}`  ",
        machine_line(info),
        f"Old: `aggregator/` from git {info['old_ref']} = {info['old_commit']} "
        f"(sources digest {info['old_code']})  ",
        f"New: `aggregator/` of the working tree at commit {info['commit']} "
        f"({info['aggregator_changes']}; sources digest {info['new_code']})  ",
        "Both ran the same `bench/` (the working tree's), copied when the run started.  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Load average (1 / 5 / 15 min): {info['load_start']} at the start, "
        f"{info['load_end']} at the end",
        "",
        f"{rounds} rounds per size; each round ingests the same corpus once with each version, "
        "each in a fresh process and a new database, the old version first in odd rounds and "
        "the new first in even ones. CPU: the worker process's CPU time (user + sys, all "
        "threads) during `Ingester.ingest`, with the CPU spent generating the corpus "
        "subtracted; wall: the same span's wall time, generator time subtracted. "
        "Median over rounds (min-max).",
        "",
        "| Articles | Version | CPU ms/article | Wall ms/article | Worker process CPU s "
        "| Peak RSS MB | Match rows (table) | Planted recall (own para/spliced) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    label = {"old": f"old ({info['old_commit']})", "new": "new (working tree)"}
    for size, r in results.items():
        for version in VERSIONS:
            runs = r["runs"][version]
            matches = _same(
                [f"{w['counts']['passage_matches']:,} ({w['match_table']})" for w in runs]
            )
            lines.append(
                f"| {size:,} | {label[version]} "
                f"| {_spread([_per_article_ms(w, 'cpu_seconds') for w in runs], 3)} "
                f"| {_spread([_per_article_ms(w, 'seconds') for w in runs], 3)} "
                f"| {_spread([w['process_cpu_seconds'] for w in runs], 1)} "
                f"| {statistics.median(w['peak_rss_mb'] for w in runs):,.0f} "
                f"| {matches} | {_same([_recall(w) for w in runs])} |"
            )
    lines += [
        "",
        "New / old, the median of the per-round ratios (min-max):",
        "",
        "| Articles | CPU per article | Wall per article | Peak RSS | CPU within +15% |",
        "|---:|---:|---:|---:|---|",
    ]
    for size, r in results.items():
        cpu = _ratios(r, "cpu_seconds")
        verdict = "yes" if statistics.median(cpu) <= LIMIT else "**NO**"
        lines.append(
            f"| {size:,} | {_spread(cpu)} | {_spread(_ratios(r, 'seconds'))} "
            f"| {_spread(_ratios(r, 'peak_rss_mb'))} | {verdict} |"
        )
    expected = {"old": info["old_code"], "new": info["new_code"]}
    for version in VERSIONS:
        seen = {w["code"] for r in results.values() for w in r["runs"][version]}
        if seen != {expected[version]}:
            lines.append(
                f"\n**WARNING: the {version} workers ran aggregator sources with digests "
                f"{', '.join(sorted(seen))}, not {expected[version]}.**"
            )
    return "\n".join(lines) + "\n"


def run_compare(
    rev: str, sizes: list[int], rounds: int, seed: int, tmp_root: Path | None
) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """--compare: both snapshots taken first, then the rounds of every size."""
    info = machine()
    info["load_start"] = _loads()
    info["old_ref"] = rev
    info["old_commit"] = git_commit(rev)  # HEAD may move during the run
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-src-", dir=tmp_root) as src:
        sources = {
            "old": snapshot(Path(src) / "old", info["old_commit"]),
            "new": snapshot(Path(src) / "new"),
        }
        for version, source in sources.items():
            info[f"{version}_code"] = code_version(source)
            # Byte-compile up front, so that the first round does not pay for it.
            compileall.compile_dir(source, quiet=1)
        for size in sizes:
            results[size] = measure_compare(size, seed, rounds, sources, tmp_root)
    info["load_end"] = _loads()
    return results, info


# -- --engines: the same corpus into SQLite and PostgreSQL, round by round -------------

ENGINES = ("sqlite", "postgresql", "postgresql-async")
# Per-database settings of each PostgreSQL engine (ALTER DATABASE ... SET).
PG_SETTINGS: dict[str, dict[str, str]] = {
    "postgresql": {},
    "postgresql-async": {"synchronous_commit": "off"},
}


def _engine_run(
    engine: str, size: int, seed: int, source: Path, tmp: Path, server: Any
) -> dict[str, Any]:
    """One ingest and one restart of `size` articles into a new database of `engine`."""
    if engine == "sqlite":
        db = str(tmp / f"bench-{engine}.db")
    else:
        db = server.new_database("bench_ingest", PG_SETTINGS[engine])
    try:
        server_cpu = server.cpu_seconds() if server else None
        worker = ["ingest", "--size", str(size), "--db", db, "--seed", str(seed)]
        run = _run_worker(worker, source)
        if server_cpu is not None and engine != "sqlite":
            time.sleep(0.5)  # the backend has exited; let the postmaster reap it
            run["server_cpu_seconds"] = server.cpu_seconds() - server_cpu
        run["restart"] = _run_worker(["restart", "--db", db], source)
    finally:
        if engine == "sqlite":
            for path in tmp.glob(f"bench-{engine}.db*"):
                path.unlink()
        else:
            server.drop_database(db)
    run["engine"] = engine
    return run


def measure_engines(
    size: int,
    seed: int,
    rounds: int,
    engines: list[str],
    source: Path,
    tmp_root: Path | None,
    server: Any,
) -> dict[str, Any]:
    """Ingest `size` articles once per engine per round, rotating which goes first."""
    runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in engines}
    order: list[list[str]] = []
    for number in range(rounds):
        turn = number % len(engines)
        ordered = engines[turn:] + engines[:turn]
        order.append(ordered)
        for engine in ordered:
            print(f"ingest {size:,} round {number + 1}/{rounds}: {engine}", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=tmp_root) as tmp:
                runs[engine].append(_engine_run(engine, size, seed, source, Path(tmp), server))
    return {"runs": runs, "order": order}


def _match_count(run: dict[str, Any]) -> int:
    return int(run["counts"]["passage_matches"])


def _engine_ratios(result: dict[str, Any], engine: str) -> list[float]:
    """Articles/s of `engine` / SQLite's, round by round (both ran in every round)."""
    base, other = result["runs"]["sqlite"], result["runs"][engine]
    return [float(b["seconds"]) / float(o["seconds"]) for b, o in zip(base, other, strict=True)]


def machine_line(info: dict[str, str]) -> str:
    """The machine a report was measured on, as its header line."""
    return (
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}, NumPy {info['numpy']}, "
        f"{info['platform']}  "
    )


def write_report(report: str, out: Path | None, raw: Path | None, data: dict[str, Any]) -> None:
    """The Markdown report to `out` (if given) and stdout; `data` as JSON to `raw`."""
    if out:
        out.write_text(report, encoding="utf-8")
    if raw:
        raw.write_text(json.dumps(data, indent=1))
    print(report)


def render_engines(results: dict[int, dict[str, Any]], command: str, info: dict[str, str]) -> str:
    """The Markdown report of an --engines run: each engine per size, then engine / SQLite."""
    rounds = max(len(r["order"]) for r in results.values())
    lines = [
        f"Command: `{command}`  ",
        machine_line(info),
        f"PostgreSQL: {info.get('pg', 'not used')}  ",
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']}); every worker "
        f"ran a copy taken when the run started (sources digest {info['code']})  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Load average (1 / 5 / 15 min): {info['load_start']} at the start, "
        f"{info['load_end']} at the end",
        "",
        f"{rounds} rounds per size; each round ingests the same corpus once per engine, each in "
        "a fresh process and a new database, the order rotated every round. Wall and worker CPU "
        "exclude the corpus generator; server CPU is every process of the throwaway server over "
        "the ingest worker's life. Median over rounds (min-max).",
        "",
        "| Articles | Engine | Articles/s | Wall ms/article | Worker CPU ms/article "
        "| Server CPU ms/article | Worker peak RSS MB | DB MB | Restart s | Match rows "
        "| Planted recall (own para/spliced) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size, r in results.items():
        for engine, runs in r["runs"].items():
            server = [
                1000 * w["server_cpu_seconds"] / size for w in runs if "server_cpu_seconds" in w
            ]
            lines.append(
                f"| {size:,} | {engine} "
                f"| {_spread([size / w['seconds'] for w in runs], 0)} "
                f"| {_spread([_per_article_ms(w, 'seconds') for w in runs], 3)} "
                f"| {_spread([_per_article_ms(w, 'cpu_seconds') for w in runs], 3)} "
                f"| {_spread(server, 3) if server else 'n/a'} "
                f"| {statistics.median(w['peak_rss_mb'] for w in runs):,.0f} "
                f"| {statistics.median(w['db_bytes'] / 1e6 for w in runs):,.1f} "
                f"| {_spread([w['restart']['seconds'] for w in runs], 2)} "
                f"| {_same([f'{_match_count(w):,}' for w in runs])} "
                f"| {_same([_recall(w) for w in runs])} |"
            )
    others = [e for e in next(iter(results.values()))["runs"] if e != "sqlite"]
    if "sqlite" in next(iter(results.values()))["runs"] and others:
        lines += [
            "",
            "Articles/s of each engine / SQLite's, the median of the per-round ratios (min-max):",
            "",
            "| Articles | " + " | ".join(f"{e} / sqlite" for e in others) + " |",
            "|---:|" + "---:|" * len(others),
        ]
        for size, r in results.items():
            cells = " | ".join(_spread(_engine_ratios(r, e)) for e in others)
            lines.append(f"| {size:,} | {cells} |")
    seen = {w["code"] for r in results.values() for runs in r["runs"].values() for w in runs}
    if seen != {info["code"]}:
        lines.append(f"\n**WARNING: workers ran aggregator sources {', '.join(sorted(seen))}.**")
    return "\n".join(lines) + "\n"


def run_engines(
    engines: list[str],
    sizes: list[int],
    rounds: int,
    seed: int,
    tmp_root: Path | None,
    pg_url: str | None,
    pg_options: list[str],
) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """--engines: one snapshot, the server (if any engine needs one), the rounds of every size."""
    from bench.pgserver import pg_server

    info = machine()
    info["load_start"] = _loads()
    results: dict[int, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        server = None
        if any(e != "sqlite" for e in engines):
            server = stack.enter_context(pg_server(pg_url, pg_options))
            names = ["fsync", "synchronous_commit", "shared_buffers"]
            shown = server.settings(names + [o.split("=")[0] for o in pg_options])
            where = "given by --pg" if pg_url else "throwaway server on 127.0.0.1"
            info["pg"] = (
                f"{server.version()} ({where}; "
                + ", ".join(f"{k} {v}" for k, v in shown.items())
                + ")"
            )
        src = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-src-", dir=tmp_root))
        source = snapshot(Path(src))
        info["code"] = code_version(source)
        compileall.compile_dir(source, quiet=1)
        for size in sizes:
            results[size] = measure_engines(size, seed, rounds, engines, source, tmp_root, server)
    info["load_end"] = _loads()
    return results, info


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
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="compare the ingest of aggregator/ as of git REV with the working tree's",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="with --compare or --engines: rounds per size (default 5)",
    )
    parser.add_argument(
        "--engines",
        help=f"comma-separated stores to ingest into, each round ({', '.join(ENGINES)})",
    )
    parser.add_argument(
        "--pg",
        metavar="URL",
        help="PostgreSQL server for the postgresql engines (default: a throwaway one)",
    )
    parser.add_argument(
        "--pg-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the throwaway PostgreSQL server (repeatable)",
    )
    parser.add_argument("--worker", choices=["ingest", "restart", "baseline", "generate"])
    parser.add_argument("--size", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)  # a file path or a URL
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
    if args.compare and args.profile:
        parser.error("--compare does not profile")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    engines = [e.strip() for e in (args.engines or "").split(",") if e.strip()]
    if not engines and args.pg:
        engines = ["postgresql"]
    if any(e not in ENGINES for e in engines) or len(set(engines)) != len(engines):
        parser.error(f"--engines: a comma-separated list of distinct {', '.join(ENGINES)}")
    by_engines = bool(engines) and engines != ["sqlite"]
    if by_engines and (args.compare or args.profile):
        parser.error("--engines does not combine with --compare or --profile")
    command = "python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:])
    tmp_root = args.tmp.resolve() if args.tmp else None
    if by_engines:
        results, info = run_engines(
            engines, sizes, args.rounds, args.seed, tmp_root, args.pg, args.pg_option
        )
        report = render_engines(results, command, info)
        raw: dict[str, Any] = {"machine": info, "engines": results}
    elif args.compare:
        results, info = run_compare(args.compare, sizes, args.rounds, args.seed, tmp_root)
        report = render_compare(results, command, info)
        raw = {"machine": info, "compare": results}
    else:
        profile = ["--profile", str(args.profile.resolve())] if args.profile else []
        info = machine()
        results = {}
        with tempfile.TemporaryDirectory(prefix="bench-src-", dir=tmp_root) as src:
            source = snapshot(Path(src))
            info["code"] = code_version(source)
            for size in sizes:
                results[size] = _measure(size, args.seed, args.repeat, source, tmp_root, profile)
                if size <= args.baseline_max:
                    print(f"naive baseline {size:,}", file=sys.stderr)
                    worker = ["baseline", "--size", str(size), "--seed", str(args.seed)]
                    baselines = [_run_worker(worker, source) for _ in range(args.repeat)]
                    results[size]["baseline"] = _best(baselines)
        report = render(results, command, info)
        raw = {"machine": info, "results": results}
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
