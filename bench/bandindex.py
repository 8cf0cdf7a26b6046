"""Band-key look-up: the in-memory `BandIndex` against a day-partitioned PostgreSQL table.

    python -m bench.bandindex --sizes 10000,100000,1000000 --out /tmp/bi.md --json /tmp/bi.json

(the default sizes; 7 minutes on 2 vCPUs, most of it loading 1M units into PostgreSQL).
Results and the decision they support: docs/benchmarks.md, "Band-key index".

For each index size N: seeded random uint32 keys (`--bands` 32 per unit) for
units 1..N spread in id order over `--days` days, and `--queries` query units
(a tenth copy 1 to all bands of a random stored unit) in articles of
`--article-units`. A brute-force NumPy oracle lists the (query unit, stored
unit) pairs sharing a band key; each side's pairs must equal it.

* Memory (fresh processes running a copy of aggregator/ taken at the start):
  `BandIndex.add` in batches of `--batch-units` (1,280 = the pipeline's 64
  articles x 20 units), the arrays' bytes and the RSS growth; `lookup_runs` for
  the whole batch and per article (median of `--repeat`); `keep_newest` dropping
  the oldest day. Start-up: `Articles.units_since` over a PostgreSQL
  `unit_signatures` table (unit id, 512-byte minhash, band-key blob), through a
  client-side binding cursor as the engine reads it, into `add_chunks`.
* PostgreSQL (`--pg URL`, or a throwaway server with its defaults; a database
  per size): `band_keys (key int8, unit_id int8, day date)` partitioned by RANGE
  (day), a partition per day, a B-tree on key in each, key = band << 32 | key.
  Insert: a binary COPY per batch (32 rows per unit), each committed, with the
  index in place, then VACUUM ANALYZE. Look-up: `WHERE key = ANY(%s)` with the
  distinct keys, one round trip per batch and one per article, rows mapped back
  to query units in NumPy inside the timing. Size: tables and indexes of all
  partitions. The oldest day: DETACH + DROP PARTITION against a DELETE of
  another day's rows and the VACUUM that reclaims them.

Markdown (and --json): each figure on both sides and PostgreSQL / memory, with
the machine, the command and the load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.bandtable import (
    LAYOUTS,
    articles,
    clock,
    digest,
    encode,
    load_tables,
    make_data,
    measure_drop,
    measure_lookups,
    oracle,
    peak_mb,
    reset_peak,
    timed,
)
from bench.ingest import _loads, _rss_mb, code_version, machine, snapshot, write_report
from bench.pgserver import pg_server

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


def work_memory(args: argparse.Namespace, n: int) -> dict[str, Any]:
    from aggregator.dedup.index import BandIndex

    keys, days, queries = make_data(args, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    rss = reset_peak()
    index = BandIndex(args.bands)

    def add_batches() -> None:  # as the pipeline adds each batch's stored units
        for i in range(0, n, args.batch_units):
            index.add(ids[i : i + args.batch_units], keys[i : i + args.batch_units])

    build, _ = clock(add_batches)
    held = sum(a.nbytes for run in index._runs for a in (*run.keys, *run.ids))
    grown = _rss_mb() - rss

    def batch() -> I64:
        return encode(*index.lookup_runs(queries))

    def per_article() -> I64:
        parts = [encode(*index.lookup_runs(queries[s])) + (s.start << 32) for s in articles(args)]
        return np.concatenate(parts)

    batch_s, found = timed(args.repeat, batch)
    article_s, by_article = timed(args.repeat, per_article)
    keep = n - int((days == 0).sum())
    drop_s, dropped = clock(lambda: index.keep_newest(keep))
    return {
        "build_s": build,
        "bytes": held,
        "rss_growth_mb": grown,
        "peak_growth_mb": peak_mb() - rss,
        "runs": index.runs,
        "batch_s": batch_s,
        "article_s": article_s,
        "drop_s": drop_s,
        "dropped": dropped,
        "pairs": len(found),
        "digest": digest(found),
        "article_digest": digest(by_article),
    }


def work_load(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Start-up: `units_since` from PostgreSQL's unit_signatures into `add_chunks`."""
    import psycopg

    from aggregator.dedup.index import BandIndex
    from aggregator.storage.articles import SQLArticles
    from aggregator.storage.engine import to_pyformat

    rss = _rss_mb()
    started = time.perf_counter()
    conn = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    store = SimpleNamespace(  # what `units_since` uses of a Store
        params=SimpleNamespace(bands=args.bands),
        execute=lambda sql, a=(): conn.execute(to_pyformat(sql), a),
    )
    index = BandIndex(args.bands)
    index.add_chunks(SQLArticles(store).units_since(0))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    conn.close()
    return {"load_s": seconds, "load_units": index.size, "load_rss_mb": _rss_mb() - rss}


# -- the PostgreSQL table (in the driver) ------------------------------------------------


# -- the driver --------------------------------------------------------------------------

START = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.0f} s] {message}", file=sys.stderr)


SHARED = ("bands", "days", "queries", "article_units", "batch_units", "repeat", "seed")


def run_worker(args: argparse.Namespace, source: Path, *extra: str) -> dict[str, Any]:
    """A worker in a fresh process, running the snapshot's code."""
    shared = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in SHARED]
    command = [sys.executable, "-m", "bench.bandindex", *shared, "--worker", *extra]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=source)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_size(args: argparse.Namespace, n: int, server: Any, source: Path) -> dict[str, Any]:
    import psycopg

    keys, days, queries = make_data(args, n)
    expected = oracle(keys, queries)
    url = server.new_database("bench_bandindex")
    try:
        # No server-side prepared statements: every look-up is planned for its own array.
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            say(f"{n:,}: PostgreSQL tables")
            pg = load_tables(conn, args, keys, days)
            del keys
            say(f"{n:,}: memory")
            memory = run_worker(args, source, "memory", str(n))
            memory.update(run_worker(args, source, "load", url))
            say(f"{n:,}: PostgreSQL look-ups")
            for layout, table in LAYOUTS.items():
                pg[layout].update(measure_lookups(conn, args, queries, table))
            pg["partitioned"].update(measure_drop(conn))
    finally:
        server.drop_database(url)
    say(f"{n:,}: done")
    return {
        "oracle": {"pairs": len(expected), "digest": digest(expected)},
        "per_day": int((days == 0).sum()),
        "memory": memory,
        "pg": pg,
    }


def _table(title: str, header: str, rows: list[str], align: str) -> list[str]:
    """A Markdown table from '|'-separated cells; `align` is 'l' or 'r' per column."""
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    lines = ["", title, "", f"| {header.replace('|', ' | ')} |", rule]
    return lines + [f"| {row.replace('|', ' | ')} |" for row in rows]


def _yes(side: dict[str, Any], expected: dict[str, Any]) -> str:
    same = {side["digest"], side["article_digest"]} == {expected["digest"]}
    return f"{'yes' if same else '**NO**'} ({side['pairs']:,} of {expected['pairs']:,})"


def render(
    results: dict[int, dict[str, Any]], args: argparse.Namespace, info: dict[str, Any]
) -> str:
    q = args.queries
    lines = [
        f"Command: `{info['command']}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM, Python "
        f"{info['python']}, NumPy {info['numpy']}, {info['platform']}  ",
        f"PostgreSQL: {info['pg']}  ",
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']}), workers ran "
        f"a copy taken at the start (digest {info['code']})  ",
        f"Load average (1 / 5 / 15 min): {info['load_start']} at the start, "
        f"{info['load_end']} at the end",
        "",
        f"{args.bands} bands, {args.days} days, {q:,} query units ({q // 10} planted) in "
        f"articles of {args.article_units}; inserts in batches of {args.batch_units:,} units; "
        f"look-ups the median of {args.repeat} after a warm-up.",
    ]
    look, store, drop = [], [], []
    for n, r in results.items():
        m, o, part = r["memory"], r["oracle"], r["pg"]["partitioned"]
        mb, ma = 1e6 * m["batch_s"] / q, 1e6 * m["article_s"] / q
        build, arrays = 1e6 * m["build_s"] / n, m["bytes"] / n
        look.append(f"{n:,}|memory|{mb:,.1f}|1|{ma:,.1f}|1|{_yes(m, o)}|")
        store.append(
            f"{n:,}|memory|{build:.2f}|1|{arrays:,.0f} (RSS growth "
            f"{2**20 * m['rss_growth_mb'] / n:,.0f}, peak {2**20 * m['peak_growth_mb'] / n:,.0f})"
            f"|1|{m['load_s']:.2f} (RSS growth {m['load_rss_mb']:,.0f} MB)"
        )
        for layout in LAYOUTS:
            p = r["pg"][layout]
            pb, pa = 1e6 * p["batch_s"] / q, 1e6 * p["article_s"] / q
            look.append(
                f"{n:,}|PG {layout}|{pb:,.1f}|{pb / mb:,.0f}|{pa:,.1f}|{pa / ma:,.0f}|"
                f"{_yes(p, o)}|{p['plan']}"
            )
            pg_bytes = (p["table_bytes"] + p["index_bytes"]) / n
            store.append(
                f"{n:,}|PG {layout}|{p['insert_us']:.1f} (last tenth "
                f"{p['insert_last_tenth_us']:.1f})|{p['insert_us'] / build:,.0f}|{pg_bytes:,.0f} "
                f"(index {p['index_bytes'] / n:,.0f})|{pg_bytes / arrays:.1f}|none "
                f"(VACUUM ANALYZE after the load: {p['vacuum_s']:.1f})"
            )
        drop.append(
            f"{n:,}|{r['per_day']:,}|{1000 * m['drop_s']:,.1f}|{1000 * part['drop_s']:,.1f}|"
            f"{1000 * part['delete_s']:,.1f}|{1000 * part['delete_vacuum_s']:,.1f}|"
            f"{part['delete_s'] / part['drop_s']:,.0f}"
        )
    lines += _table(
        f"Look-up, microseconds per query unit: a batch of {q:,} in one call or round trip, "
        f"and one per article of {args.article_units} (x = / memory):",
        "Units N|Index|Batch, us/unit|x|Per article, us/unit|x|Pairs = oracle|"
        "Plan (batch / article)",
        look,
        "rlrrrrll",
    )
    lines += _table(
        "Insert (memory: `add` per batch; PG: a binary COPY per batch, committed), bytes held "
        "per unit (memory: the arrays; PG: tables and indexes), start-up (x = / memory):",
        "Units N|Index|Insert, us/unit|x|Bytes per unit|x|Start-up load, s",
        store,
        "rlrrrrl",
    )
    lines += _table(
        "Dropping the oldest day, milliseconds (PG: the partitioned table):",
        "Units N|Units per day|Memory `keep_newest`|PG DETACH + DROP partition|"
        "PG DELETE of a day's rows|PG VACUUM after it|DELETE / DROP",
        drop,
        "rrrrrrr",
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bandindex", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="units in the index")
    parser.add_argument("--bands", type=int, default=32)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--queries", type=int, default=1000, help="query units per batch")
    parser.add_argument("--article-units", type=int, default=20)
    parser.add_argument("--batch-units", type=int, default=1280, help="units per insert batch")
    parser.add_argument("--repeat", type=int, default=5, help="timed look-ups (the median)")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL server (default: a throwaway one)")
    parser.add_argument("--pg-option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # kind, size or URL
    args = parser.parse_args(argv)

    if args.worker:
        kind, value = args.worker
        result = work_memory(args, int(value)) if kind == "memory" else work_load(args, value)
        print(json.dumps(result))
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    info: dict[str, Any] = dict(machine())
    info["command"] = "python -m bench.bandindex " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    info["load_start"] = _loads()
    results: dict[int, dict[str, Any]] = {}
    with pg_server(args.pg, args.pg_option) as server, tempfile.TemporaryDirectory() as src:
        names = ["shared_buffers", "fsync", "synchronous_commit", "random_page_cost"]
        shown = server.settings(names + [o.split("=")[0] for o in args.pg_option])
        where = "given by --pg" if args.pg else "throwaway server on 127.0.0.1"
        settings = ", ".join(f"{k} {v}" for k, v in shown.items())
        info["pg"] = f"{server.version()} ({where}; {settings})"
        source = snapshot(Path(src))
        info["code"] = code_version(source)
        for n in sizes:
            results[n] = measure_size(args, n, server, source)
    info["load_end"] = _loads()
    report = render(results, args, info)
    write_report(report, args.out, args.json, {"machine": info, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
