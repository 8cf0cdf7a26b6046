"""What one statement costs the writer on PostgreSQL: binding and pipelining (issue 17).

    python -m bench.pgstatements --statements 10000

The writer sends a few dozen small statements per article, so their fixed cost
is most of what storing costs on PostgreSQL (docs/benchmarks.md, "Several
nodes"). This loop measures that cost on a throwaway server (bench/pgserver.py,
PostgreSQL's defaults) in the four ways psycopg can send it, in one transaction
as the writer does: an INSERT of three values, and every fifth statement a
SELECT whose result is read, as the writer reads the ids an INSERT returns.

* client-side binding (`ClientCursor`: values inside the statement text, so
  the server parses and plans every statement) or server-side binding (values
  sent apart, so psycopg prepares a statement it has sent five times);
* each statement waiting for its answer, or pipeline mode (statements whose
  result nobody reads go out without waiting; a read waits for everything
  before it).

Per statement: the wall time, this process's CPU, and the server's CPU (from
/proc). Each variant runs `--rounds` times, alternating, and the medians are
reported, since the machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Any

from bench.pgserver import PgServer, pg_server

VARIANTS = (("client", False), ("client", True), ("server", False), ("server", True))


def _one(pg: PgServer, url: str, binding: str, pipelined: bool, count: int) -> dict[str, float]:
    import psycopg

    factory: Any = psycopg.ClientCursor if binding == "client" else psycopg.Cursor
    with psycopg.connect(url, autocommit=True, cursor_factory=factory) as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, a text, b bigint, c text)")
        server = pg.cpu_seconds() or 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        with conn.pipeline() if pipelined else nullcontext(), conn.transaction():
            for i in range(count):
                conn.execute(
                    "INSERT INTO t (a, b, c) VALUES (%s, %s, %s)", ("x" * 50, i, "y" * 200)
                )
                if i % 5 == 0:
                    conn.execute("SELECT count(*) FROM t WHERE id = %s", (i,)).fetchone()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = (pg.cpu_seconds() or 0.0) - server
    statements = count + (count + 4) // 5
    micro = 1e6 / statements
    return {"wall_us": wall * micro, "client_us": cpu * micro, "server_us": server * micro}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[tuple[str, bool], list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with pg_server(None) as pg:
        url = pg.new_database("statements")
        for _ in range(args.rounds):
            for binding, pipelined in VARIANTS:
                results[(binding, pipelined)].append(
                    _one(pg, url, binding, pipelined, args.statements)
                )
    print(f"Command: `python -m bench.pgstatements {' '.join(sys.argv[1:])}`\n")
    print("| Binding | Pipeline | Wall us/statement | Client CPU us | Server CPU us |")
    print("|---|---|---:|---:|---:|")
    for (binding, pipelined), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"| {binding} | {'yes' if pipelined else 'no'} | {med['wall_us']:.0f} | "
            f"{med['client_us']:.0f} | {med['server_us']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
