"""Band-key look-up: the in-memory `BandIndex` against a day-partitioned PostgreSQL table.

    python -m bench.bandindex --sizes 10000,100000,1000000 --out /tmp/bi.md --json /tmp/bi.json

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
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.ingest import _loads, _rss_mb, code_version, machine, snapshot
from bench.pgserver import binary_copy, pg_server, plan_nodes

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
EPOCH_2026 = 9497  # 2026-01-01 as PostgreSQL's binary date (days since 2000-01-01)
MINHASH = bytes(512)  # 128 uint32: only its size matters (inline, not compressed)


def make_data(args: argparse.Namespace, n: int) -> tuple[U32, I64, U32]:
    """Stored keys (n, bands), each unit's day (0..days-1), query keys (Q, bands)."""
    rng = np.random.default_rng([args.seed, n])
    keys = rng.integers(0, 2**32, size=(n, args.bands), dtype=np.uint32)
    days = np.arange(n, dtype=np.int64) * args.days // n
    queries = rng.integers(0, 2**32, size=(args.queries, args.bands), dtype=np.uint32)
    for row in rng.choice(args.queries, args.queries // 10, replace=False):
        shared = rng.choice(args.bands, int(rng.integers(1, args.bands + 1)), replace=False)
        queries[row, shared] = keys[int(rng.integers(n)), shared]
    return keys, days, queries


def composite(keys: U32) -> I64:
    """band << 32 | key, the one-column form of (band, key), per row and band."""
    return keys.astype(np.int64) | (np.arange(keys.shape[1], dtype=np.int64) << 32)


def encode(rows: I64, unit_ids: I64) -> I64:
    """Distinct (query row, unit id) pairs as sorted int64 codes."""
    return np.unique((rows.astype(np.int64) << 32) | unit_ids.astype(np.int64))


def oracle(keys: U32, queries: U32) -> I64:
    """Every (query row, unit id) sharing a band key, by brute force over each band."""
    rows: list[I64] = []
    ids: list[I64] = []
    for band in range(keys.shape[1]):
        for stored in np.flatnonzero(np.isin(keys[:, band], queries[:, band])):
            matching = np.flatnonzero(queries[:, band] == keys[stored, band])
            rows.append(matching)
            ids.append(np.full(len(matching), stored + 1, dtype=np.int64))
    if not rows:
        return np.zeros(0, dtype=np.int64)
    return encode(np.concatenate(rows), np.concatenate(ids))


def digest(codes: I64) -> str:
    return hashlib.sha256(codes.tobytes()).hexdigest()[:16]


def reset_peak() -> float:
    """Reset the process's peak RSS (VmHWM) to its current RSS, which is returned (MB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _rss_mb()


def peak_mb() -> float:
    """The peak RSS (VmHWM) since the last `reset_peak`, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def clock(work: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of `work` takes, and its result."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def timed(repeat: int, work: Callable[[], I64]) -> tuple[float, I64]:
    """Median seconds of `repeat` calls after one warm-up, and the last result."""
    runs = [clock(work) for _ in range(repeat + 1)][1:]
    return statistics.median(r[0] for r in runs), runs[-1][1]


def articles(args: argparse.Namespace) -> list[slice]:
    step = args.article_units
    return [slice(i, min(i + step, args.queries)) for i in range(0, args.queries, step)]


# -- the in-memory index (worker processes) ----------------------------------------------


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
    drop_s, dropped = clock(lambda: index.keep_newest(n - int((days == 0).sum())))
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


def copy(conn: Any, table: str, columns: list[npt.NDArray[Any]]) -> None:
    """One binary COPY of the rows `columns` make into `table`, committed (autocommit)."""
    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as stream:
        stream.write(binary_copy(columns))


LAYOUTS = {"partitioned": "band_keys", "one table": "band_keys_one"}
COLUMNS = "key bigint NOT NULL, unit_id bigint NOT NULL, day date NOT NULL"


def create_tables(conn: Any, days: int) -> None:
    """band_keys partitioned by day; band_keys_one, the same rows unpartitioned."""
    conn.execute(f"CREATE TABLE band_keys ({COLUMNS}) PARTITION BY RANGE (day)")
    for day in range(days):
        conn.execute(
            f"CREATE TABLE band_keys_{day:03d} PARTITION OF band_keys FOR VALUES "
            f"FROM (DATE '2026-01-01' + {day}) TO (DATE '2026-01-01' + {day + 1})"
        )
    conn.execute(f"CREATE TABLE band_keys_one ({COLUMNS})")
    for table in LAYOUTS.values():
        conn.execute(f"CREATE INDEX {table}_key ON {table} (key)")


def load_tables(conn: Any, args: argparse.Namespace, keys: U32, days: I64) -> dict[str, Any]:
    """The unit_signatures blobs (set-up for the start-up load), then both layouts, batch by
    batch in turn so that both see the same conditions; seconds per unit, table bytes."""
    n, bands = keys.shape
    ids = np.arange(1, n + 1, dtype=np.int64)
    conn.execute(
        "CREATE TABLE unit_signatures (unit_id bigint PRIMARY KEY, minhash bytea NOT NULL, "
        "band_keys bytea NOT NULL)"
    )
    minhash = np.frombuffer(MINHASH, dtype=f"V{len(MINHASH)}")
    for i in range(0, n, 50_000):
        blobs = np.ascontiguousarray(keys[i : i + 50_000]).view(f"V{4 * bands}").ravel()
        copy(conn, "unit_signatures", [ids[i : i + 50_000], np.repeat(minhash, len(blobs)), blobs])
    create_tables(conn, args.days)
    flat, step = composite(keys), args.batch_units
    batches: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}  # s/unit per batch
    for i in range(0, n, step):
        part = slice(i, i + step)
        batch_days = np.repeat(days[part] + EPOCH_2026, bands).astype(np.int32)
        columns = [flat[part].ravel(), np.repeat(ids[part], bands), batch_days]
        for layout, table in LAYOUTS.items():
            seconds = clock(partial(copy, conn, table, columns))[0]
            batches[layout].append(seconds / len(ids[part]))
    results: dict[str, Any] = {}
    for layout, table in LAYOUTS.items():
        vacuum_s, _ = clock(partial(conn.execute, f"VACUUM ANALYZE {table}"))
        table_bytes, index_bytes = conn.execute(
            "SELECT sum(pg_table_size(r)), sum(pg_indexes_size(r)) FROM (SELECT relid AS r "
            "FROM pg_partition_tree(%s::regclass) UNION SELECT %s::regclass) AS parts",
            (table, table),
        ).fetchone()
        tail = batches[layout][-max(1, len(batches[layout]) // 10) :]
        results[layout] = {
            "insert_us": 1e6 * statistics.fmean(batches[layout]),
            "insert_last_tenth_us": 1e6 * statistics.fmean(tail),
            "vacuum_s": vacuum_s,
            "table_bytes": int(table_bytes),
            "index_bytes": int(index_bytes),
        }
    return results


def pg_lookup(cursor: Any, table: str, queries: U32) -> I64:
    """One round trip for all of `queries`' keys; (row, unit id) codes."""
    flat = composite(queries).ravel()
    order = np.argsort(flat, kind="stable")
    wanted, rows = flat[order], order // queries.shape[1]
    cursor.execute(
        f"SELECT key, unit_id FROM {table} WHERE key = ANY(%s::bigint[])",
        (np.unique(flat).tolist(),),
    )
    found = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    lo = np.searchsorted(wanted, found[:, 0], side="left")
    counts = np.searchsorted(wanted, found[:, 0], side="right") - lo
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    picked = rows[starts + np.arange(int(counts.sum()))]
    return encode(picked, np.repeat(found[:, 1], counts))


def measure_lookups(
    conn: Any, args: argparse.Namespace, queries: U32, table: str
) -> dict[str, Any]:
    """Batch and per-article look-ups in `table`, and the plans PostgreSQL chose for them."""
    cursor = conn.cursor()
    first = queries[articles(args)[0]]
    plans = [
        plan_nodes(
            conn,
            f"SELECT key, unit_id FROM {table} WHERE key = ANY(%s::bigint[])",
            (np.unique(composite(part)).tolist(),),
        )
        for part in (queries, first)
    ]
    batch_s, found = timed(args.repeat, lambda: pg_lookup(cursor, table, queries))
    article_s, by_article = timed(
        args.repeat,
        lambda: np.concatenate(
            [pg_lookup(cursor, table, queries[s]) + (s.start << 32) for s in articles(args)]
        ),
    )
    return {
        "plan": " / ".join(plans),
        "batch_s": batch_s,
        "article_s": article_s,
        "pairs": len(found),
        "digest": digest(found),
        "article_digest": digest(by_article),
    }


def measure_drop(conn: Any) -> dict[str, Any]:
    """DELETE of day 1's rows (and the VACUUM that reclaims them), DETACH + DROP of day 0."""
    delete_s, deleted = clock(
        lambda: conn.execute("DELETE FROM band_keys WHERE day = DATE '2026-01-02'").rowcount
    )
    vacuum_s, _ = clock(lambda: conn.execute("VACUUM band_keys_001"))
    drop_s, _ = clock(
        lambda: [
            conn.execute("ALTER TABLE band_keys DETACH PARTITION band_keys_000"),
            conn.execute("DROP TABLE band_keys_000"),
        ]
    )
    return {"drop_s": drop_s, "delete_s": delete_s, "deleted": deleted, "delete_vacuum_s": vacuum_s}


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


def _table(title: str, header: str, rows: list[str], text: int = 0) -> list[str]:
    """A Markdown table from '|'-separated cells; the last `text` columns are left-aligned."""
    width = header.count("|") + 1
    align = "|" + "---:|" * (width - text) + "---|" * text
    lines = ["", title, "", f"| {header.replace('|', ' | ')} |", align]
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
        text=2,
    )
    lines += _table(
        "Insert (memory: `add` per batch; PG: a binary COPY per batch, committed), bytes held "
        "per unit (memory: the arrays; PG: tables and indexes), start-up (x = / memory):",
        "Units N|Index|Insert, us/unit|x|Bytes per unit|x|Start-up load, s",
        store,
        text=1,
    )
    lines += _table(
        "Dropping the oldest day, milliseconds (PG: the partitioned table):",
        "Units N|Units per day|Memory `keep_newest`|PG DETACH + DROP partition|"
        "PG DELETE of a day's rows|PG VACUUM after it|DELETE / DROP",
        drop,
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
        shown = server.settings(["shared_buffers", "fsync", "synchronous_commit"])
        where = "given by --pg" if args.pg else "throwaway server on 127.0.0.1"
        settings = ", ".join(f"{k} {v}" for k, v in shown.items())
        info["pg"] = f"{server.version()} ({where}; {settings})"
        source = snapshot(Path(src))
        info["code"] = code_version(source)
        for n in sizes:
            results[n] = measure_size(args, n, server, source)
    info["load_end"] = _loads()
    report = render(results, args, info)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
