"""A real PostgreSQL server for the test session, on 127.0.0.1, never a mock.

`PostgresServer.start()` makes a cluster in a new temporary folder (`initdb`,
trust authentication for one superuser, `aggregator`), starts it on a free port
with `pg_ctl` (listening on 127.0.0.1 and a socket in that folder only; fsync
off: a test database need not survive a power cut) and waits until it accepts
connections; `stop()` stops it and removes the folder. PostgreSQL refuses to
run as root, so as root every command runs as the `postgres` user (`runuser`),
which owns the folder. `database()` creates a new, empty database per test.

The binaries are found on PATH or under /usr/lib/postgresql/*/bin (Debian's
`postgresql` package); `.ci/run` installs them where missing, and there a
PostgreSQL test that cannot find them fails instead of skipping
(AGGREGATOR_REQUIRE_TOOLS, as for Chromium).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "aggregator"


def find_bin(name: str) -> str | None:
    """`name` (initdb, pg_ctl) on PATH, or in the newest Debian PostgreSQL."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


INITDB = find_bin("initdb")
PG_CTL = find_bin("pg_ctl")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, for the test session."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="aggregator-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        as_root = os.geteuid() == 0
        argv = ["runuser", "-u", "postgres", "--", *command] if as_root else list(command)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        made = self._run(
            str(INITDB),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        assert made.returncode == 0, made.stdout + made.stderr
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        log = str(self.folder / "server.log")
        started = self._run(
            str(PG_CTL), "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60", "start"
        )
        assert started.returncode == 0, started.stdout + started.stderr + self.log()

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self._run(str(PG_CTL), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg  # the postgres extra; only the PostgreSQL tests need it

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
