"""Nodes benchmark (issue 17): the first poll of loopback feeds with 1, 2, 3 fetch nodes.

    python -m bench.nodes --feeds 1000 --entries 20 --fetchers 1,2,3
    python -m bench.nodes --feeds 1000 --entries 20 --fetchers 1,2,3 \
        --pages --hosts 500 --node-workers 1

What it measures:

* **The feeds**: bench/feeds.py's server (its own process): `--feeds` RSS
  documents of `--entries` items, full text in each item, a tenth of the
  stories syndicated by 2-5 feeds. With `--pages`, summary-only feeds: each
  item is a teaser linking to an article page on the server, which the
  fetching side must fetch and extract (trafilatura), the heavy part of a
  real fetch; `--hosts` spreads feeds and pages over that many loopback
  addresses, so one page a second per host (the fetcher's politeness) does
  not become the limit.
* **Fetch nodes' size**: `--node-workers N` gives each fetch node N parse and
  prepare processes (default: one per core, so that one node alone already
  uses every core of this machine). With 1, a node stands for a one-core
  machine, and the curve shows how the deployment grows as nodes add cores.
* **The baseline, in the same run**: `aggregator poll --all` in one process on
  a new PostgreSQL database: the wall time of the whole first poll.
* **Each node count**: a new database, the feeds subscribed, one dedup writer
  started and ready, then N fetch nodes started at once; the wall time runs
  from their start until every entry is stored and nothing is left staged.
  CPU seconds are read from /proc for each node's process tree (its parse
  pool included) and for the PostgreSQL server (bench/pgserver.py), so the
  report shows the writer's share of the CPU the deployment used, and where
  adding fetch nodes stops helping: on this machine's cores, or on the one
  writer.
* **`--apart`**: the stages one after the other instead, so each has the
  machine to itself: N fetch nodes alone until every feed is polled and
  staged (how the fetching side grows with the cores it has), then, once,
  the writer alone until the queue is empty (how fast the one serial stage
  stores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.feeds import ServeSpec, feed_server
from bench.pgserver import PgServer, pg_server
from bench.soak import AGGREGATOR, REPO, machine, subscribe_opml

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, its live descendants, and the children
    they reaped, from /proc."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / TICKS  # utime stime cutime cstime
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return total


def _config(path: Path, url: str, workers: int = 0, nice: int | None = None) -> Path:
    """A node's configuration; `workers` > 0: that many parse and prepare processes
    (0: the default, one per core); `nice`: daemon.fetch_nice (None: the default)."""
    pools = f"parse_workers = {workers}\n[ingest]\nworkers = {workers}\n" if workers else ""
    niceness = "" if nice is None else f"fetch_nice = {nice}\n"
    path.write_text(
        f'database = "{url}"\n'
        "[daemon]\ntick_seconds = 0.5\nbatch_size = 100\nheartbeat_seconds = 1\n"
        f'lease_seconds = 60\n{niceness}[feeds]\nallow = ["127.0.0.0/8"]\n{pools}',
        encoding="utf-8",
    )
    return path


UNPOLLED = "SELECT count(*) FROM sources WHERE kind = 'feed' AND last_checked_at IS NULL"


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def baseline(pg: PgServer, urls: list[str], entries: int, out: Path) -> dict[str, Any]:
    """One process: `aggregator poll --all`, timed whole."""
    url = pg.new_database("single")
    config = _config(out / "single.toml", url)
    subscribe_opml(config, urls, out / "feeds.opml")
    server_cpu = pg.cpu_seconds()
    started = time.monotonic()
    poll = subprocess.Popen(
        [str(AGGREGATOR), "--config", str(config), "poll", "--all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cpu = 0.0
    while poll.poll() is None:
        cpu = max(cpu, tree_cpu(poll.pid))
        time.sleep(0.2)
    seconds = time.monotonic() - started
    stored = _count(url, "SELECT count(*) FROM articles")
    after = pg.cpu_seconds()
    pg_cpu = None if server_cpu is None or after is None else after - server_cpu
    return {"seconds": seconds, "stored": stored, "expected": entries, "cpu": cpu, "pg_cpu": pg_cpu}


@dataclass(frozen=True)
class _Deployment:
    url: str
    config: Path  # the writer's
    fetch_config: Path
    logs: Path


def _deployment(
    pg: PgServer, urls: list[str], name: str, out: Path, workers: int, nice: int | None
) -> _Deployment:
    """A new database with the feeds subscribed, and the nodes' configurations."""
    url = pg.new_database(name)
    config = _config(out / f"{name}.toml", url)
    fetch_config = _config(out / f"{name}-fetch.toml", url, workers, nice)
    subscribe_opml(config, urls, out / "feeds.opml")
    return _Deployment(url, config, fetch_config, out / f"{name}.log")


def _start(config: Path, role: str, logs: Path) -> subprocess.Popen[bytes]:
    with logs.open("ab") as log:
        return subprocess.Popen(
            [str(AGGREGATOR), "--config", str(config), "run", "--role", role],
            stdout=log,
            stderr=log,
        )


def _until(check: Any, what: str, limit: float = 1800.0) -> float:
    """Seconds until `check()` is true (polled every 0.2 s); an error past `limit`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise RuntimeError(f"{what}: not after {limit:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass(frozen=True)
class Layout:
    """How many fetch nodes, each with `workers` pool processes (0: one per core),
    at daemon.fetch_nice `nice` (None: the configuration's default)."""

    fetchers: int
    workers: int = 0
    nice: int | None = None


def with_nodes(
    pg: PgServer, urls: list[str], entries: int, layout: Layout, out: Path
) -> dict[str, Any]:
    """One dedup writer and the layout's fetch nodes, from their start to an empty queue."""
    fetchers = layout.fetchers
    d = _deployment(pg, urls, f"nodes{fetchers}", out, layout.workers, layout.nice)
    url = d.url
    writer = _start(d.config, "dedup", d.logs)
    while "the writer now" not in d.logs.read_text(errors="replace"):
        time.sleep(0.1)
    server_cpu = pg.cpu_seconds()
    writer_cpu0 = tree_cpu(writer.pid)
    started = time.monotonic()
    fetches = [_start(d.fetch_config, "fetch", d.logs) for _ in range(fetchers)]
    cpu: dict[int, float] = {}
    fetched, stored = None, 0
    try:
        while True:
            for p in [writer, *fetches]:
                cpu[p.pid] = max(cpu.get(p.pid, 0.0), tree_cpu(p.pid))
            if fetched is None and _count(url, UNPOLLED) == 0:
                fetched = time.monotonic() - started  # every feed polled and staged
            # Counting a growing table costs the server: only once nothing is staged.
            if _count(url, "SELECT count(*) FROM staged") == 0:
                stored = _count(url, "SELECT count(*) FROM articles")
                if stored >= entries:
                    break
            if time.monotonic() - started > 1800:
                raise RuntimeError(f"{fetchers} fetch nodes: {stored} of {entries} after 30 min")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        after = pg.cpu_seconds()
    finally:
        for p in [*fetches, writer]:
            p.terminate()
        for p in [*fetches, writer]:
            p.wait(timeout=60)
    pg_cpu = None if server_cpu is None or after is None else after - server_cpu
    return {
        "fetchers": fetchers,
        "seconds": seconds,
        "fetched": fetched,
        "stored": stored,
        "writer_cpu": cpu[writer.pid] - writer_cpu0,
        "fetch_cpu": sum(cpu[p.pid] for p in fetches),
        "pg_cpu": pg_cpu,
    }


def apart(
    pg: PgServer, urls: list[str], entries: int, layout: Layout, out: Path, drain: bool
) -> dict[str, Any]:
    """The two stages one after the other: the layout's fetch nodes alone until every
    feed is polled and staged (nothing else running), then, if `drain`, the
    writer alone until the queue is empty."""
    fetchers = layout.fetchers
    d = _deployment(pg, urls, f"apart{fetchers}", out, layout.workers, layout.nice)
    url, config, logs = d.url, d.config, d.logs
    server_cpu = pg.cpu_seconds()
    fetches = [_start(d.fetch_config, "fetch", logs) for _ in range(fetchers)]
    cpu: dict[int, float] = {}

    def polled() -> bool:
        for p in fetches:
            cpu[p.pid] = max(cpu.get(p.pid, 0.0), tree_cpu(p.pid))
        return _count(url, UNPOLLED) == 0

    try:
        fetched = _until(polled, f"{fetchers} fetch nodes alone")
    finally:
        for p in fetches:
            p.terminate()
        for p in fetches:
            p.wait(timeout=60)
    middle = pg.cpu_seconds()
    report: dict[str, Any] = {
        "fetchers": fetchers,
        "fetched": fetched,
        "fetch_cpu": sum(cpu.values()),
        "fetch_pg_cpu": None if server_cpu is None or middle is None else middle - server_cpu,
    }
    if not drain:
        return report
    writer = _start(config, "dedup", logs)
    try:
        _until(lambda: "the writer now" in logs.read_text(errors="replace"), "the writer")
        writer_cpu0, middle = tree_cpu(writer.pid), pg.cpu_seconds()
        writer_cpu = 0.0

        def drained() -> bool:
            nonlocal writer_cpu
            writer_cpu = max(writer_cpu, tree_cpu(writer.pid))
            if _count(url, "SELECT count(*) FROM staged"):
                return False
            return _count(url, "SELECT count(*) FROM articles") >= entries

        report["drained"] = _until(drained, "the writer alone")
        after = pg.cpu_seconds()
    finally:
        writer.terminate()
        writer.wait(timeout=60)
    report["writer_cpu"] = writer_cpu - writer_cpu0
    report["drain_pg_cpu"] = None if middle is None or after is None else after - middle
    return report


def render_apart(report: dict[str, Any]) -> str:
    """The table of the stages apart (`--apart`)."""
    entries, cores = report["entries"], int(report["machine"]["nproc"])
    runs = report["apart"]
    one = runs[0]["fetched"]
    lines = [
        "Fetch nodes alone (no writer running), until every feed is polled and staged:",
        "",
        "| Fetch nodes | Every feed polled s | vs 1 node | Fetch CPU s | PostgreSQL CPU s "
        "| Cores busy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        total = r["fetch_cpu"] + (r["fetch_pg_cpu"] or 0.0)
        lines.append(
            f"| {r['fetchers']} | {r['fetched']:.1f} | {one / r['fetched']:.2f}x | "
            f"{r['fetch_cpu']:.1f} | {r['fetch_pg_cpu'] or 0:.1f} | "
            f"{100 * total / (r['fetched'] * cores):.0f}% |"
        )
    first = runs[0]
    if "drained" in first:
        lines += [
            "",
            f"Then the writer alone: {entries:,} entries stored in {first['drained']:.1f} s "
            f"({entries / first['drained']:,.0f} entries/s), writer CPU "
            f"{first['writer_cpu']:.1f} s, PostgreSQL CPU {first['drain_pg_cpu'] or 0:.1f} s.",
        ]
    return "\n".join(lines) + "\n"


def render(report: dict[str, Any]) -> str:
    base = report["baseline"]
    entries = base["expected"]
    nice = report.get("fetch_nice")
    niced = "" if nice is None else f", at daemon.fetch_nice {nice}"
    lines = [
        f"Command: `python -m bench.nodes {' '.join(report['argv'])}`  ",
        f"Machine: {report['machine']['nproc']} CPUs ({report['machine']['cpu']}), Python "
        f"{report['machine']['python']}, load before {report['machine']['load_before']}  ",
        f"Run at: {report['at']}",
        "",
        f"{report['feeds']:,} feeds, {entries:,} entries"
        f"{' (summary only: each article page fetched and extracted)' if report['pages'] else ''}"
        f"; fetch nodes with {report['node_workers'] or 'the default'} pool processes each"
        f"{niced}. "
        f"One process (`aggregator poll "
        f"--all`): {base['seconds']:.1f} s, {entries / base['seconds']:,.0f} entries/s, "
        f"{base['cpu']:.1f} CPU s (+ PostgreSQL {base['pg_cpu'] or 0:.1f}).",
        "",
        "| Fetch nodes | Wall s | Every feed polled s | Entries/s | vs 1 node | vs one process "
        "| Writer CPU s | Fetch CPU s | PostgreSQL CPU s | Writer's share of CPU | Cores busy |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    one = report["runs"][0]["seconds"]
    cores = int(report["machine"]["nproc"])
    for r in report["runs"]:
        total = r["writer_cpu"] + r["fetch_cpu"] + (r["pg_cpu"] or 0.0)
        polled = "" if r.get("fetched") is None else f"{r['fetched']:.1f}"
        lines.append(
            f"| {r['fetchers']} | {r['seconds']:.1f} | {polled} | {entries / r['seconds']:,.0f} | "
            f"{one / r['seconds']:.2f}x | {base['seconds'] / r['seconds']:.2f}x | "
            f"{r['writer_cpu']:.1f} | {r['fetch_cpu']:.1f} | {r['pg_cpu'] or 0:.1f} | "
            f"{100 * r['writer_cpu'] / total:.0f}% | {100 * total / (r['seconds'] * cores):.0f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--fetchers", default="1,2,3")
    parser.add_argument(
        "--pages",
        action="store_true",
        help="summary-only feeds: every entry's article page is fetched and extracted",
    )
    parser.add_argument(
        "--hosts",
        type=int,
        default=1,
        help="loopback addresses the feeds and pages are served from",
    )
    parser.add_argument(
        "--node-workers",
        type=int,
        default=0,
        help="parse and prepare processes per fetch node (default: one per core)",
    )
    parser.add_argument(
        "--fetch-nice",
        type=int,
        help="daemon.fetch_nice of the fetch nodes (default: the configuration's default)",
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="instead: fetch nodes alone until every feed is staged, then the writer alone",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/nodes-bench"))
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"argv": argv if argv is not None else sys.argv[1:]}
    report.update(
        feeds=args.feeds,
        pages=args.pages,
        node_workers=args.node_workers,
        fetch_nice=args.fetch_nice,
        machine=machine(),
        at=time.strftime("%Y-%m-%d %H:%M UTC"),
    )
    with (
        feed_server(
            REPO, ServeSpec(args.feeds, args.entries, 7, hosts=args.hosts, pages=args.pages)
        ) as info,
        pg_server(None) as pg,
    ):
        urls, entries = info["urls"], info["entries"]
        if args.apart:
            report["entries"], report["apart"] = entries, []
            for k, n in enumerate(int(x) for x in args.fetchers.split(",")):
                layout = Layout(n, args.node_workers, args.fetch_nice)
                run = apart(pg, urls, entries, layout, out, drain=k == 0)
                report["apart"].append(run)
                print(f"{n} fetch nodes alone: {run['fetched']:.1f} s", file=sys.stderr)
            (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
            print(render_apart(report))
            return 0
        report["baseline"] = baseline(pg, urls, entries, out)
        print(f"one process: {report['baseline']['seconds']:.1f} s", file=sys.stderr)
        report["runs"] = []
        for n in (int(x) for x in args.fetchers.split(",")):
            run = with_nodes(pg, urls, entries, Layout(n, args.node_workers, args.fetch_nice), out)
            report["runs"].append(run)
            print(f"{n} fetch nodes: {report['runs'][-1]['seconds']:.1f} s", file=sys.stderr)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
