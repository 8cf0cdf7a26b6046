"""The band keys of `bench.bandindex`: the generated data and its oracle, the timing
helpers, and the PostgreSQL table layouts (day-partitioned and one table), their
loading, look-ups and the drop of the oldest day. What is measured, and why:
`bench/bandindex.py`."""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.ingest import _rss_mb
from bench.pgserver import copy_rows, plan_nodes, relation_bytes

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
        copy_rows(
            conn, "unit_signatures", [ids[i : i + 50_000], np.repeat(minhash, len(blobs)), blobs]
        )
    create_tables(conn, args.days)
    flat, step = composite(keys), args.batch_units
    batches: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}  # s/unit per batch
    for i in range(0, n, step):
        part = slice(i, i + step)
        batch_days = np.repeat(days[part] + EPOCH_2026, bands).astype(np.int32)
        columns = [flat[part].ravel(), np.repeat(ids[part], bands), batch_days]
        turns = list(LAYOUTS.items())  # which layout goes first alternates batch by batch
        for layout, table in turns if i // step % 2 == 0 else reversed(turns):
            seconds = clock(partial(copy_rows, conn, table, columns))[0]
            batches[layout].append(seconds / len(ids[part]))
    results: dict[str, Any] = {}
    for layout, table in LAYOUTS.items():
        vacuum_s, _ = clock(partial(conn.execute, f"VACUUM ANALYZE {table}"))
        table_bytes, index_bytes = relation_bytes(conn, table)
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
