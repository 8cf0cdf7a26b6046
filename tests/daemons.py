"""The daemon as a real subprocess, for the tests that run it, and how they wait for it.

Waiting rules (a test must give the same verdict on a quiet machine and on a loaded
one, where every step can take ten times as long):

* Wait for the event itself: a row in the database, a line in the daemon's log, the
  content of a file. Never sleep for a while and then look.
* A deadline only bounds a hang, so it is generous (`DEADLINE`); a wait that follows
  long work (thousands of files) fails when the work *stops progressing* for that
  long (`wait_for_progress`), not when it is slower than on the machine that wrote
  the test.
* Every failure says what it waited for and what it saw last (the daemon's log).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from aggregator.config import Database, PostgresURL
from tests.conftest import AGGREGATOR

# Bounds a hang, never a verdict: a loaded 2-core machine can be 10x slower than a quiet one.
DEADLINE = 120.0
POLL_SECONDS = 0.1

WORDS = (
    "minister council harbour vote market storm court rail union price river summit grain "
    "border police energy school doctor budget strike coast airport village election tariff "
    "museum bridge factory harvest treaty senate garden hospital festival bank report"
).split()

# Ticks every half second and folder scans every 0.6 s: fast, and still real scheduling.
FAST = "[daemon]\ntick_seconds = 0.5\nscan_minutes = 0.01\n"
FAST_FEEDS = "min_interval_minutes = 0.01\ndefault_interval_minutes = 0.01\n"


def article(rng: random.Random, n: int) -> str:
    """A plain-text article: a title line, then 3-6 paragraphs of 30-60 words."""
    title = f"Report number {n} on {rng.choice(WORDS)}"
    paragraphs = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))).capitalize() + "."
        for _ in range(rng.randint(3, 6))
    ]
    return title + "\n" + "\n".join(paragraphs) + "\n"


def write_articles(folder: Path, count: int, seed: int = 7, first: int = 0) -> None:
    """Files a{first:05d}.txt ... in FOLDER (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for n in range(first, first + count):
        (folder / f"a{n:05d}.txt").write_text(article(rng, n), encoding="utf-8")


def write_config(path: Path, body: str, database: Database | None = None) -> Path:
    """A configuration file at PATH: `database` (news.db beside it by default; a
    PostgresURL is written as its real URL), then BODY."""
    where = database.url if isinstance(database, PostgresURL) else (database or "news.db")
    path.write_text(f'database = "{where}"\n{body}', encoding="utf-8")
    return path


def query(db: Database, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows of a read-only query; none while the database or the table does not exist yet.
    SQL uses `?` placeholders on both engines."""
    if isinstance(db, PostgresURL):
        return _pg_query(db, sql, args)
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


def _pg_query(db: PostgresURL, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
    import psycopg  # the postgres extra; only the PostgreSQL tests need it

    try:
        conn = psycopg.connect(db.url, connect_timeout=30)
    except psycopg.OperationalError:
        return []  # the database is not there (yet)
    try:
        conn.read_only = True  # one read-only transaction, rolled back by close()
        # Client-side: `?` becomes `%s`, a literal `%` is doubled (psycopg's own syntax).
        return conn.execute(sql.replace("%", "%%").replace("?", "%s"), args).fetchall()
    except psycopg.errors.UndefinedTable:
        return []  # not created yet
    finally:
        conn.close()


def wait_for(
    check: Callable[[], bool],
    what: str | Callable[[], str],
    timeout: float = DEADLINE,
) -> None:
    """Return as soon as `check()` holds; fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {said}")
        time.sleep(POLL_SECONDS)


def wait_for_progress(
    measure: Callable[[], int],
    target: int,
    what: str | Callable[[], str],
    stall: float = DEADLINE,
) -> None:
    """Return once `measure()` reaches `target`; fail only when it has not grown for
    `stall` seconds (slow work is fine, stuck work is not)."""
    best = measure()
    moved = time.monotonic()
    while best < target:
        time.sleep(POLL_SECONDS)
        now = measure()
        if now > best:
            best, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            said = what() if callable(what) else what
            raise AssertionError(f"no progress for {stall:.0f} s at {best}/{target}: {said}")


class Daemon:
    """`aggregator run` in a subprocess, its stderr in a file next to its config."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        db: Database | None = None,
        args: tuple[str, ...] = ("run",),
    ) -> None:
        """`args`: the command after `--config` (`run --role fetch` for a node)."""
        self.config = config
        self.log = config.with_suffix(".log")
        self.db: Database = config.parent / "news.db" if db is None else db
        # Several daemons may share the log: this one's lines start here.
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(AGGREGATOR), "--config", str(config), *args],
                stderr=log,
                stdout=log,
                env={**os.environ, **(env or {})},
            )

    @classmethod
    def attach(cls, process: subprocess.Popen[bytes], log: Path, db: Database) -> Daemon:
        """A daemon the caller started itself (as a unit's ExecStart would), logging
        to `log` from its start, on database `db`."""
        daemon = cls.__new__(cls)
        daemon.config, daemon.log, daemon.db, daemon.offset = log, log, db, 0
        daemon.process = process
        return daemon

    def text(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode("utf-8", errors="replace")

    def said(self, what: str) -> Callable[[], str]:
        """A failure message for a wait: what was awaited and the log so far."""
        return lambda: f"{what}; daemon log:\n{self.text()[-4000:]}"

    def wait_for_log(self, line: str, count: int = 1, timeout: float = DEADLINE) -> None:
        """Wait until the log holds `line` at least `count` times; fail at once if the
        process ended first."""

        def seen() -> bool:
            if self.text().count(line) >= count:
                return True
            if self.process.poll() is not None:
                raise AssertionError(self.said(f"{line!r} (the process exited)")())
            return False

        wait_for(seen, self.said(repr(line)), timeout)

    def wait_started(self, timeout: float = DEADLINE) -> None:
        self.wait_for_log("started:", timeout=timeout)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = DEADLINE) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def articles(self) -> int:
        rows = query(self.db, "SELECT count(*) FROM articles")
        return int(str(rows[0][0])) if rows else 0

    def state(self, key: str) -> str | None:
        rows = query(self.db, "SELECT value FROM service_state WHERE key = ?", key)
        return str(rows[0][0]) if rows else None
