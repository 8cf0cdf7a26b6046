"""PostgreSQL for the benchmarks: a given server, or a throwaway one started for the run.

`pg_server(url, options)` yields a `PgServer`: with a URL, the server it names
(its user must be allowed to create databases); without one, a new cluster made
with `initdb` in a temporary folder and started with `pg_ctl` on a free port of
127.0.0.1, stopped and removed when the block ends. `new_database()` creates an
empty database and returns its URL; `drop_database(url)` removes it.

Unlike the test server (tests/postgres.py, fsync off), the throwaway server runs
with PostgreSQL's own defaults (fsync on, synchronous_commit on, shared_buffers
128MB), so that a figure measured on it is what an untuned installation gives;
`options` (`name=value`, e.g. `shared_buffers=1GB`) are passed as `-c` settings.
PostgreSQL refuses to run as root, so as root the server's commands run as the
`postgres` user (`runuser`), which owns the folder.

`binary_copy(columns)` turns fixed-width NumPy columns (int4, int8, fixed-size
bytea) into a `COPY ... FROM STDIN (FORMAT BINARY)` payload without a Python
loop per row, so a bulk load (`copy_rows`) measures the server rather than the
client; `relation_bytes` and `plan_nodes` report a table's size and a plan.

`cpu_seconds()` is the CPU time (user + sys) the throwaway server has used so
far: the postmaster's own and its reaped children's (`cutime`, `cstime`) plus
that of its live children (backends, WAL writer, checkpointer, autovacuum), from
/proc. The difference over a span is what the server spent serving it; None on
a server given by URL, whose processes cannot be seen.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

USER = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


def _binary(name: str) -> str:
    """`name` on PATH, or in the newest /usr/lib/postgresql/*/bin (Debian)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise SystemExit(f"{name} not found: install PostgreSQL or give --pg URL")
    return str(candidates[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one(row: tuple[object, ...] | None) -> object:
    """The single value of a one-row, one-column result."""
    assert row is not None
    return row[0]


def _stat_ticks(pid: int, fields: Sequence[int]) -> int:
    """The sum of the given /proc/PID/stat fields (1-based, as proc(5) numbers them)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    after_name = text.rsplit(")", 1)[1].split()  # field 3 onwards
    return sum(int(after_name[f - 3]) for f in fields)


class PgServer:
    """A PostgreSQL server the benchmark may create databases on."""

    def __init__(self, url: str, folder: Path | None = None) -> None:
        self.admin_url = url
        self.folder = folder  # the throwaway cluster's folder; None for a given server
        self._names = itertools.count(1)

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    def settings(self, names: Sequence[str]) -> dict[str, str]:
        """The server's current values of the named settings."""
        import psycopg

        with psycopg.connect(self.admin_url) as conn:
            return {name: str(_one(conn.execute(f"SHOW {name}").fetchone())) for name in names}

    def new_database(self, prefix: str = "bench", settings: dict[str, str] | None = None) -> str:
        """A new empty database (with per-database `settings`, e.g. synchronous_commit); its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            for key, value in (settings or {}).items():
                conn.execute(f'ALTER DATABASE "{name}" SET {key} = {value}')
        return urlsplit(self.admin_url)._replace(path=f"/{name}").geturl()

    def drop_database(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cpu_seconds(self) -> float | None:
        """CPU seconds the throwaway server has used so far (None for a given server)."""
        if self.folder is None:
            return None
        pid_file = self.folder / "data" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        ticks = _stat_ticks(postmaster, (14, 15, 16, 17))  # utime stime cutime cstime
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        for child in children.read_text().split():
            ticks += _stat_ticks(int(child), (14, 15))
        return ticks / TICKS


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no extension
_COPY_TRAILER = b"\xff\xff"


def binary_copy(columns: Sequence[npt.NDArray[np.generic]]) -> bytes:
    """COPY FROM STDIN (FORMAT BINARY) data for rows of fixed-width columns, in order.

    int32 columns are sent as int4 (or date: days since 2000-01-01), int64 as
    int8, and void columns (`V<n>`, e.g. a (rows, k) uint32 array viewed as one
    `V<4k>` per row) as bytea of n bytes each.
    """
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for number, column in enumerate(columns):
        if column.dtype.kind == "V":
            kind = f"V{column.dtype.itemsize}"
        elif column.dtype.itemsize in (4, 8) and column.dtype.kind in "iu":
            kind = f">i{column.dtype.itemsize}"
        else:
            raise TypeError(f"column {number}: no binary COPY form for {column.dtype}")
        fields += [(f"length{number}", ">i4"), (f"value{number}", kind)]
    rows = np.empty(len(columns[0]), dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for number, column in enumerate(columns):
        rows[f"length{number}"] = column.dtype.itemsize
        rows[f"value{number}"] = column
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def copy_rows(conn: Any, table: str, columns: Sequence[npt.NDArray[Any]]) -> None:
    """One binary COPY into `table` of the rows `columns` make (see `binary_copy`)."""
    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as stream:
        stream.write(binary_copy(columns))


def relation_bytes(conn: Any, table: str) -> tuple[int, int]:
    """Bytes of `table` (and of all its partitions, if partitioned): (table, indexes)."""
    row = conn.execute(
        "SELECT sum(pg_table_size(r)), sum(pg_indexes_size(r)) FROM (SELECT relid AS r "
        "FROM pg_partition_tree(%s::regclass) UNION SELECT %s::regclass) AS parts",
        (table, table),
    ).fetchone()
    return int(row[0]), int(row[1])


def plan_nodes(conn: Any, sql: str, params: Sequence[Any]) -> str:
    """The distinct node types of the plan chosen for `sql`, e.g. 'Append, Index Scan'."""
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
    nodes: set[str] = set()
    stack = [row[0][0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.add(node["Node Type"])
        stack += node.get("Plans", [])
    return ", ".join(sorted(nodes))


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a server command, as the postgres user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def throwaway_server(options: Sequence[str] = ()) -> Iterator[PgServer]:
    """A new cluster on 127.0.0.1 for the block; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    initdb = [_binary("initdb"), "-D", str(data), "-U", USER, "--auth=trust"]
    made = _run([*initdb, "-E", "UTF8", "--locale=C.UTF-8"])
    if made.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise SystemExit(f"initdb failed: {made.stdout}{made.stderr}")
    settings = " ".join(f"-c {option}" for option in options)
    server_options = f"-h 127.0.0.1 -p {port} -k {folder} {settings}"
    log = folder / "server.log"
    pg_ctl = _binary("pg_ctl")
    started = _run(
        [pg_ctl, "-D", str(data), "-o", server_options, "-l", str(log), "-w", "-t", "60", "start"]
    )
    try:
        if started.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise SystemExit(f"pg_ctl start failed: {started.stdout}{started.stderr}{text}")
        yield PgServer(f"postgresql://{USER}@127.0.0.1:{port}/postgres", folder)
    finally:
        _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def pg_server(url: str | None, options: Sequence[str] = ()) -> Iterator[PgServer]:
    """The server at `url`, or a throwaway one (started with `options`) when None."""
    if url is not None:
        yield PgServer(url)
        return
    with throwaway_server(options) as server:
        yield server
