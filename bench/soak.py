"""Soak: the real daemon against the fault-injecting feed farm, with readers beside it.

    python -m bench.soak --feeds 1000 --minutes 30 --out bench/out/soak

What it runs, and what it decides:

* **The farm** (`bench/farm.py`) in its own process, its feeds subscribed with
  `aggregator sources import-opml`; **the daemon** `aggregator -v run` as a
  subprocess with a configuration for a fast, hostile world: `tick_seconds`
  1, `min_interval_minutes` small (feeds re-polled every few seconds),
  `deadline_seconds` 2 (the farm's drips last longer), `max_bytes` 1 MiB (the
  farm's oversized bodies and gzip bombs pass it), `max_interval_hours` small
  (so back-off after a run of faults stays short), `per_host` = `concurrency`
  (every feed is on 127.0.0.1). Its stderr is timestamped line by line into
  `daemon.log`.
* **The database**: `soak.db` in `--out` (made anew), another SQLite file, or
  an empty PostgreSQL database (`--db postgresql://...`).
* **Readers**: `--readers` threads, each running in turn `aggregator clusters
  --json`, `aggregator status`, `sqlite-utils tables DB --counts` and a
  `sqlite-utils query`, as separate processes, for the whole run. On
  PostgreSQL the aggregator commands also get `--db URL`, and `aggregator
  stats --json` and the same query run by a psycopg client process take the
  sqlite-utils ones' places. Each invocation's exit status, time and stderr
  are kept; a non-zero exit, output that is not what the command promises, or
  "locked" on stderr is a failure.
* **Samples** every second: the resident memory of the daemon and its
  children (the parse pool), summed from /proc; the WAL file's size (on
  PostgreSQL the database's size, `pg_database_size`: the server's memory and
  WAL are its own).
* **Tick duration.** The daemon logs a tick's result, not its start, and has
  no duration of its own; it does speak the systemd notify protocol, so the
  soak listens on `NOTIFY_SOCKET`: a tick that polls says `STATUS=polling ...`
  when it starts and `STATUS=idle; last tick: ...` when it ends. The duration
  is the time between the two (ticks with nothing due are not counted).
* **The end.** After `--minutes`, the farm is told `quiet` (no more changes or
  faults; gone feeds come back). The soak then waits until every enabled feed
  has `last_success_at` later than the farm's first complete answer to it
  after `quiet` (timestamps are whole seconds, so strictly later: the daemon
  has then stored the final state of every feed, since one feed is never
  fetched twice at once). Then the readers stop, the daemon gets SIGTERM and
  must exit 0, and the farm hands over its ledger.
* **The ledger check** (sources matched by their subscribed URL, entries by
  GUID = `articles.identity`): *lost*: served intact, not stored; *twice*: one
  GUID stored as more than one article of a feed (an identity equal to the
  GUID or starting with it and a space, the duplicate-GUID form); *phantom*:
  stored, but never sent by the farm even in a damaged body; *stale*: an entry
  of a feed's final document whose stored title is not its final title. A feed
  the daemon disabled after a 410 (by design) keeps what it stored before; its
  final document is not expected: it stays disabled until `sources add`
  subscribes it again.
* **Memory** (`--steady-minutes`): RSS is fitted against the stored unit count
  (sampled once a minute) to give MiB per 1,000 units while the index grows;
  then, with the farm quiet and every feed caught up, the daemon runs on for
  the steady phase, where the index cannot grow: RSS flat there means the
  growth before was the index, not a leak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from aggregator.config import Database, PostgresURL, database_location
from bench.farm import FAULT_KINDS, parse_mix

BIN = Path(sys.executable).parent
AGGREGATOR = BIN / "aggregator"
SQLITE_UTILS = BIN / "sqlite-utils"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class SoakConfig:
    out: Path
    # None: `soak.db` in `out`, made anew. Otherwise a SQLite file or an empty
    # PostgreSQL database (the ledger check counts everything stored in it).
    database: Database | None = None
    feeds: int = 20
    seconds: float = 45.0
    faults: str = "default"
    seed: int = 6
    readers: int = 2
    change_seconds: float = 6.0
    window: int = 15
    min_interval_minutes: float = 0.03
    max_interval_hours: float = 0.004
    deadline_seconds: float = 2.0
    concurrency: int = 16
    tick_seconds: float = 1.0
    final_timeout: float = 60.0
    # The soak phase goes on past `seconds` until the farm has injected every fault kind
    # of its mix (a loaded machine polls less often in the same time), for at most this
    # many times `seconds`; 0 ends it at `seconds` whatever was injected.
    until_every_fault: float = 0.0
    reader_pause: float = 0.5
    # After the final polls: this long more with the farm quiet (every poll a 200 or a
    # 304 of content already stored), so memory is watched while the index cannot grow.
    steady_seconds: float = 0.0
    index_max_units: int = 1_000_000  # the daemon's dedup.index_max_units


@dataclass(slots=True)
class Samples:
    # (t, rss MiB, bytes): the WAL file's size, or the PostgreSQL database's size
    rows: list[tuple[float, float, int]] = field(default_factory=list)
    units: list[tuple[float, float, int]] = field(default_factory=list)  # (t, rss MiB, units)
    ticks: list[float] = field(default_factory=list)
    notify: list[tuple[float, str]] = field(default_factory=list)


@dataclass(slots=True)
class ReaderStats:
    runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    locked: int = 0
    seconds: list[float] = field(default_factory=list)


def _database_setting(database: Database | None) -> str:
    """The configuration's `database` value: soak.db beside it, a file, or the URL."""
    if database is None:
        return "soak.db"
    if isinstance(database, PostgresURL):
        return database.url
    return str(database.resolve())


def _config_text(cfg: SoakConfig) -> str:
    return f"""database = "{_database_setting(cfg.database)}"
folders = []

[dedup]
index_max_units = {cfg.index_max_units}

[feeds]
allow = ["127.0.0.0/8"]
min_interval_minutes = {cfg.min_interval_minutes}
default_interval_minutes = {cfg.min_interval_minutes}
max_interval_hours = {cfg.max_interval_hours}
max_bytes = 1048576
deadline_seconds = {cfg.deadline_seconds}
concurrency = {cfg.concurrency}
per_host = {cfg.concurrency}

[daemon]
tick_seconds = {cfg.tick_seconds}
batch_size = 500
tick_budget_seconds = 60
scan_minutes = 600
stop_grace_seconds = 10
"""


def _opml(urls: list[str], path: Path) -> None:
    outlines = "".join(
        f'<outline type="rss" text="farm {i}" xmlUrl="{u}"/>' for i, u in enumerate(urls)
    )
    path.write_text(
        f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>',
        encoding="utf-8",
    )


def subscribe_opml(config: Path, urls: list[str], opml: Path) -> None:
    """Subscribe `urls` with `aggregator sources import-opml` (written to `opml`)."""
    _opml(urls, opml)
    command = [str(AGGREGATOR), "--config", str(config), "sources", "import-opml", str(opml)]
    subprocess.run(command, check=True, capture_output=True)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return total / 1024


class Farm:
    """The farm process and its stdin/stdout command protocol."""

    def __init__(self, cfg: SoakConfig) -> None:
        command = [
            sys.executable,
            "-m",
            "bench.farm",
            "--feeds",
            str(cfg.feeds),
            "--seconds",
            str(cfg.seconds + 5),
            "--grace",
            str(cfg.final_timeout + cfg.steady_seconds + 120),
            "--faults",
            cfg.faults,
            "--seed",
            str(cfg.seed),
            "--change-seconds",
            str(cfg.change_seconds),
            "--window",
            str(cfg.window),
            "--drip-seconds",
            str(cfg.deadline_seconds + 2),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, text=True
        )
        line = self._out.readline()
        if not line:
            raise RuntimeError("the feed farm did not start")
        self.urls: list[str] = json.loads(line)["urls"]

    @property
    def _out(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self._out.readline())
        return reply

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


_ERROR = re.compile(r"feed error source=(\d+) url=\S+: (.*)$")


def error_kind(reason: str) -> str:
    """A daemon error message as one of a few kinds (for the report)."""
    rules = (
        ("HTTP 500", "HTTP 500"),
        ("HTTP 429", "HTTP 429"),
        ("reset by peer", "connection reset"),
        ("byte cap", "body over max_bytes"),
        ("without sending complete", "body cut short"),
        ("deadline", "deadline (slow drip)"),
        ("timed out", "deadline (slow drip)"),
        ("redirects", "too many redirects"),
        ("redirect loop", "redirect loop"),
        ("invalid JSON", "parse: invalid JSON"),
        ("no entries", "parse: no entries"),
        ("parse took longer", "parse deadline (pool stalled)"),
        ("parser process died", "parser process died"),
        ("internal error", "INTERNAL ERROR"),
    )
    for needle, kind in rules:
        if needle in reason:
            return kind
    return "other: " + reason[:80]


class DaemonLog(threading.Thread):
    """Copies the daemon's stderr to daemon.log with times, and counts what it says."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.path = path
        self.errors: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.problems: list[str] = []  # tracebacks, ERROR lines, "locked"
        self.lines = 0

    def run(self) -> None:
        with self.path.open("w", encoding="utf-8") as out:
            for raw in self.stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self.lines += 1
                out.write(f"{time.time():.3f} {line}\n")
                if match := _ERROR.search(line):
                    self.errors[error_kind(match.group(2))] += 1
                elif "feed parsed with problems" in line:
                    self.warnings["parsed with problems (bozo)"] += 1
                if " ERROR " in line or "Traceback" in line or "locked" in line:
                    self.problems.append(line[:300])
        self.stream.close()


class Notify(threading.Thread):
    """A NOTIFY_SOCKET listener: tick start and end from the daemon's STATUS messages."""

    def __init__(self, path: Path, samples: Samples) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.samples = samples
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.done = threading.Event()

    def run(self) -> None:
        started: float | None = None
        while not self.done.is_set():
            try:
                data = self.sock.recv(4096).decode("utf-8", errors="replace")
            except TimeoutError:
                continue
            except OSError:
                break
            now = time.monotonic()
            for line in data.splitlines():
                if not line.startswith("STATUS="):
                    continue
                status = line[7:]
                self.samples.notify.append((now, status))
                if status.startswith("polling") and started is None:
                    started = now
                elif status.startswith("idle") and started is not None:
                    self.samples.ticks.append(now - started)
                    started = None
        self.sock.close()


# The sqlite-utils query's counterpart on PostgreSQL: a client process of its own,
# its rows printed as JSON objects.
_PG_READER = """
import json, sys, psycopg
from psycopg.rows import dict_row
with psycopg.connect(sys.argv[1], row_factory=dict_row) as conn:
    conn.read_only = True
    print(json.dumps(conn.execute(sys.argv[2]).fetchall(), default=str))
"""


def _reader_commands(config: Path, db: Database) -> list[tuple[str, list[str]]]:
    agg = [str(AGGREGATOR), "--config", str(config)]
    query = (
        "select s.location, count(a.id) as n, max(a.version) as v from sources s "
        "left join articles a on a.source_id = s.id group by s.id"
    )
    if isinstance(db, PostgresURL):
        agg += ["--db", db.url]
        return [
            ("clusters --json", [*agg, "clusters", "--json"]),
            ("status", [*agg, "status"]),
            ("stats --json", [*agg, "stats", "--json"]),
            ("psycopg query", [sys.executable, "-c", _PG_READER, db.url, query]),
        ]
    return [
        ("clusters --json", [*agg, "clusters", "--json"]),
        ("status", [*agg, "status"]),
        ("sqlite-utils tables", [str(SQLITE_UTILS), "tables", str(db), "--counts"]),
        ("sqlite-utils query", [str(SQLITE_UTILS), "query", str(db), query]),
    ]


def _reader(
    commands: list[tuple[str, list[str]]], stats: ReaderStats, stop: threading.Event, pause: float
) -> None:
    lock = threading.Lock()
    turn = 0
    while not stop.is_set():
        name, command = commands[turn % len(commands)]
        turn += 1
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            with lock:
                stats.failures.append(f"{name}: timed out after 120 s")
            continue
        problem = ""
        if done.returncode != 0:
            problem = f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
        elif name != "status":
            try:
                json.loads(done.stdout)
            except json.JSONDecodeError:
                problem = f"output is not JSON: {done.stdout[:200]!r}"
        elif "daemon" not in done.stdout:
            problem = f"status without a daemon line: {done.stdout[:200]!r}"
        with lock:
            stats.runs[name] += 1
            stats.seconds.append(time.monotonic() - started)
            if "locked" in done.stderr.lower():
                stats.locked += 1
            if problem:
                stats.failures.append(f"{name}: {problem}")
        stop.wait(pause)


class NotReadyError(Exception):
    """The database could not answer a read yet (not created, a table missing, locked)."""


def _query(db: Database, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of a read-only query (`?` placeholders) on either engine."""
    if isinstance(db, PostgresURL):
        return _pg_query(db, sql, args)
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as e:
        raise NotReadyError(f"{db}: {e}") from e


def _pg_query(db: PostgresURL, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
    import psycopg  # the postgres extra: only a soak on PostgreSQL needs it

    try:
        with psycopg.connect(db.url, connect_timeout=30) as conn:
            conn.read_only = True
            # `?` becomes `%s`; a literal `%` is doubled (psycopg's own syntax).
            return conn.execute(sql.replace("%", "%%").replace("?", "%s"), args).fetchall()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable) as e:
        raise NotReadyError(f"{db}: {e}") from e


def _database_bytes(db: Database) -> int:
    """The store's size on disk: the SQLite file, or the PostgreSQL database."""
    if isinstance(db, PostgresURL):
        return int(_query(db, "SELECT pg_database_size(current_database())")[0][0])
    return db.stat().st_size


def _wal_path(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def _stamp(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _feed_index(location: str) -> int:
    return int(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1])


def waiting_feeds(db: Database, answered: dict[str, float]) -> list[str]:
    """Enabled feeds whose final state the daemon has not stored yet (empty: all done)."""
    rows = _query(
        db, "SELECT location, enabled, last_success_at, last_error FROM sources WHERE kind='feed'"
    )
    missing = []
    for location, enabled, success, error in rows:
        if not enabled:
            continue
        first = answered.get(str(_feed_index(location)))
        if first is None or _stamp(success) <= first:
            missing.append(f"{location} (last success {success}, last error {error})")
    return missing


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def check_ledger(db: Database, ledger: dict[str, Any]) -> dict[str, Any]:
    """Served against stored; see the module docstring for what each list means."""
    sources = {
        _feed_index(loc): (sid, bool(enabled), err)
        for sid, loc, enabled, err in _query(
            db, "SELECT id, location, enabled, last_error FROM sources WHERE kind='feed'"
        )
    }
    by_source: dict[int, int] = {sid: i for i, (sid, _, _) in sources.items()}
    stored: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for sid, identity, title, version in _query(
        db, "SELECT source_id, identity, title, version FROM articles"
    ):
        guid = str(identity).split(" ", 1)[0]
        stored.setdefault((by_source[sid], guid), []).append((str(title), int(version)))
    served = {(int(r["feed"]), str(r["guid"])): r for r in ledger["served"]}
    exposed = {(int(f), str(g)) for f, g in ledger["exposed"]}
    lost = sorted(f"feed {f} {g}" for f, g in served if (f, g) not in stored)
    twice = sorted(
        f"feed {f} {g}: {len(rows)} rows" for (f, g), rows in stored.items() if len(rows) > 1
    )
    phantom = sorted(f"feed {f} {g}" for f, g in stored if (f, g) not in exposed)
    stale = []
    disabled = [i for i, (_, enabled, _) in sources.items() if not enabled]
    for index, final in ledger["final"].items():
        if not sources[int(index)][1]:
            continue
        for guid, (version, title) in final.items():
            rows = stored.get((int(index), guid))
            if rows and rows[0][0] != title:
                stale.append(
                    f"feed {index} {guid}: stored {rows[0][0]!r}, final {title!r} (v{version})"
                )
    versions_served = sum(len(r["versions"]) for r in served.values())
    edited = sum(1 for r in served.values() if len(r["versions"]) > 1)
    stored_versions = _query(db, "SELECT count(*) FROM article_versions")[0][0]
    return {
        "served_entries": len(served),
        "served_versions": versions_served,
        "served_edited_entries": edited,
        "stored_articles": sum(len(r) for r in stored.values()),
        "stored_versions": int(stored_versions),
        "exposed_only_in_damaged_bodies": len(exposed - set(served)),
        "lost": lost,
        "twice": twice,
        "phantom": phantom,
        "stale": stale,
        "feeds_disabled_after_410": sorted(disabled),
        "gone_sent": ledger["gone_sent"],
        "clusters_with_several_articles": _query(
            db,
            "SELECT count(*) FROM (SELECT cluster_id FROM cluster_members m JOIN clusters c "
            "ON c.id = m.cluster_id WHERE c.merged_into IS NULL GROUP BY cluster_id "
            "HAVING count(*) > 1) AS shared",
        )[0][0],
    }


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def run_soak(cfg: SoakConfig, progress: IO[str] | None = None) -> dict[str, Any]:
    """Run one soak; the report (also written to cfg.out / report.json)."""
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    config = out / "aggregator.toml"
    config.write_text(_config_text(cfg), encoding="utf-8")
    db: Database = out / "soak.db" if cfg.database is None else cfg.database
    stale_files = [out / "notify.sock"]
    if cfg.database is None:  # made anew; a database given must be empty
        stale_files += [out / "soak.db", out / "soak.db-wal", out / "soak.db-shm"]
    for stale in stale_files:
        stale.unlink(missing_ok=True)
    with contextlib.suppress(NotReadyError):
        if _query(db, "SELECT count(*) FROM sources")[0][0]:
            raise RuntimeError(f"{db}: not empty (the soak needs a database of its own)")
    report: dict[str, Any] = {"config": {k: str(v) for k, v in asdict(cfg).items()}}
    report["store"] = "postgresql" if isinstance(db, PostgresURL) else "sqlite"
    report["machine"] = machine()

    def say(text: str) -> None:
        if progress is not None:
            print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=progress, flush=True)

    samples = Samples()
    readers = ReaderStats()
    stop_readers = threading.Event()
    farm = Farm(cfg)
    notify: Notify | None = None
    daemon: subprocess.Popen[bytes] | None = None
    try:
        notify = Notify(out / "notify.sock", samples)
        subscribe_opml(config, farm.urls, out / "farm.opml")
        notify.start()
        env = {**os.environ, "NOTIFY_SOCKET": str(out / "notify.sock")}
        env.pop("JOURNAL_STREAM", None)
        daemon = subprocess.Popen(
            [str(AGGREGATOR), "--config", str(config), "-v", "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert daemon.stderr is not None
        log = DaemonLog(daemon.stderr, out / "daemon.log")
        log.start()
        started = time.monotonic()
        say(f"daemon {daemon.pid} and farm {farm.process.pid} started, {cfg.feeds} feeds")
        threads = [
            threading.Thread(
                target=_reader,
                args=(_reader_commands(config, db), readers, stop_readers, cfg.reader_pause),
                daemon=True,
            )
            for _ in range(cfg.readers)
        ]
        for t in threads:
            t.start()
        next_say = started + 60

        def sample(elapsed: float) -> None:
            """One row a second; the stored unit count (the index's size) once a minute."""
            nonlocal next_say
            assert daemon is not None
            if isinstance(db, PostgresURL):
                size = 0
                with contextlib.suppress(NotReadyError):
                    size = _database_bytes(db)
                what = "database"
            else:
                wal = _wal_path(db)
                size = wal.stat().st_size if wal.exists() else 0
                what = "WAL"
            rss = round(tree_rss_mib(daemon.pid), 1)
            samples.rows.append((round(elapsed, 1), rss, size))
            if time.monotonic() >= next_say:
                next_say += 60
                with contextlib.suppress(NotReadyError):
                    [(units,)] = _query(db, "SELECT count(*) FROM unit_signatures")
                    samples.units.append((round(elapsed, 1), rss, units))
                say(f"{elapsed:.0f} s: RSS {rss} MiB, {what} {size >> 10} KiB")

        def soaking(elapsed: float) -> bool:
            if elapsed < cfg.seconds:
                return True
            if elapsed >= cfg.seconds * cfg.until_every_fault:
                return False
            injected = farm.ask("status")["counts"]
            return any(not injected.get(kind) for kind in farm_kinds)

        farm_kinds = [k for k in FAULT_KINDS if parse_mix(cfg.faults).get(k, 0) > 0]
        while soaking(elapsed := time.monotonic() - started):
            if daemon.poll() is not None:
                break
            sample(elapsed)
            time.sleep(1.0)
        report["soak_seconds"] = round(time.monotonic() - started, 1)
        quiet_at = farm.ask("quiet")["quiet_at"]
        say("farm quiet; waiting for the daemon's final polls")
        # Ends when no feed has caught up for `final_timeout` s: a slow machine is given
        # the time it needs, a stuck daemon is not.
        deadline = time.monotonic() + cfg.final_timeout
        missing = ["(not checked yet)"]
        fewest = len(missing) + 1
        while daemon.poll() is None and time.monotonic() < deadline:
            answered = farm.ask("status")["final_answered"]
            with contextlib.suppress(NotReadyError):
                missing = waiting_feeds(db, answered)
            if not missing:
                break
            if len(missing) < fewest:
                fewest, deadline = len(missing), time.monotonic() + cfg.final_timeout
            time.sleep(1.0)
        report["final_wait_seconds"] = round(time.time() - quiet_at, 1)
        report["final_wait_missing"] = missing
        if cfg.steady_seconds > 0 and not missing:
            say(f"steady: {cfg.steady_seconds:.0f} s more with the farm quiet")
            next_say = time.monotonic()  # a unit count at the start of the steady phase
            steady_from = time.monotonic()
            report["steady_from_s"] = round(steady_from - started, 1)
            while daemon.poll() is None and time.monotonic() - steady_from < cfg.steady_seconds:
                sample(time.monotonic() - started)
                time.sleep(1.0)
            next_say = time.monotonic()
            sample(time.monotonic() - started)
        stop_readers.set()
        for t in threads:
            t.join(timeout=150)
        report["daemon_alive_at_end"] = daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        try:
            report["daemon_exit"] = daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            report["daemon_exit"] = f"killed after 30 s: {daemon.wait()}"
        log.join(timeout=10)
        steady_ran = cfg.steady_seconds if "steady_from_s" in report else 0.0
        report["phase_seconds"] = {
            "soak": round(cfg.seconds, 1),
            "final_wait": report["final_wait_seconds"],
            "steady": steady_ran,
            "readers_and_stop": round(
                time.monotonic()
                - started
                - cfg.seconds
                - report["final_wait_seconds"]
                - steady_ran,
                1,
            ),
        }
        say(f"daemon exited {report['daemon_exit']}")
        farm.ask(f"ledger {out / 'ledger.json'}")
        ledger = json.loads((out / "ledger.json").read_text(encoding="utf-8"))
        report["ledger"] = check_ledger(db, ledger)
        report["faults_injected"] = {
            k: v for k, v in sorted(ledger["counts"].items()) if k not in ("ok", "200", "304")
        }
        report["responses"] = {k: ledger["counts"].get(k, 0) for k in ("200", "304")}
        report["farm_requests"] = ledger["requests"]
        report["daemon_errors"] = dict(log.errors.most_common())
        report["daemon_warnings"] = dict(log.warnings)
        report["daemon_problems"] = log.problems[:50]
        report["sources_last_error"] = dict(
            Counter(
                error_kind(str(e)) if not str(e).startswith("gone") else "gone (HTTP 410)"
                for (e,) in _query(
                    db, "SELECT last_error FROM sources WHERE last_error IS NOT NULL"
                )
            )
        )
        report["ticks"] = {
            "count": len(samples.ticks),
            "p50_s": round(_percentile(samples.ticks, 50), 3),
            "p99_s": round(_percentile(samples.ticks, 99), 3),
            "max_s": round(max(samples.ticks, default=0.0), 3),
            "mean_s": round(statistics.fmean(samples.ticks), 3) if samples.ticks else 0.0,
        }
        report["samples"] = samples.rows
        report["memory"] = memory_figures(samples, report.get("steady_from_s"))
        report["readers"] = {
            "runs": dict(readers.runs),
            "total": sum(readers.runs.values()),
            "failures": readers.failures[:50],
            "failure_count": len(readers.failures),
            "locked": readers.locked,
            "p50_s": round(_percentile(readers.seconds, 50), 2),
            "max_s": round(max(readers.seconds, default=0.0), 2),
        }
        report["db_bytes"] = _database_bytes(db)
        report["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        stop_readers.set()
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if notify is not None:
            notify.done.set()
            if notify.ident is not None:
                notify.join(timeout=5)
            else:
                notify.sock.close()
        farm.close()
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.md").write_text(render(report), encoding="utf-8")
    return report


def memory_figures(samples: Samples, steady_from: float | None) -> dict[str, Any]:
    """What memory did: MiB per 1,000 units stored while the index grew (a least-squares
    slope of RSS over the unit count, after the first two minutes of warm-up), and the
    RSS at the start and the end of the steady phase, when it could not grow."""
    grow = [
        (u, rss) for t, rss, u in samples.units if t >= 120 and (not steady_from or t < steady_from)
    ]
    figures: dict[str, Any] = {"units_samples": samples.units}
    if len(grow) >= 3 and grow[-1][0] > grow[0][0]:
        mean_u = statistics.fmean(u for u, _ in grow)
        mean_r = statistics.fmean(r for _, r in grow)
        num = sum((u - mean_u) * (r - mean_r) for u, r in grow)
        den = sum((u - mean_u) ** 2 for u, _ in grow)
        figures["mib_per_1000_units"] = round(1000 * num / den, 3)
    if steady_from:
        steady = [(t, rss) for t, rss, _ in samples.rows if t >= steady_from]
        units = [u for t, _, u in samples.units if t >= steady_from]
        if steady and units:
            tail = [rss for t, rss in steady if t >= steady[-1][0] - 60]
            head = [rss for t, rss in steady if t <= steady[0][0] + 60]
            figures["steady"] = {
                "seconds": round(steady[-1][0] - steady[0][0], 1),
                "rss_first_minute_median_mib": statistics.median(head),
                "rss_last_minute_median_mib": statistics.median(tail),
                "units_start": units[0],
                "units_end": units[-1],
            }
    return figures


def _sample_rows(rows: list[tuple[float, float, int]], count: int = 10) -> Iterator[str]:
    if not rows:
        return
    step = max(1, len(rows) // count)
    picked = rows[::step]
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    for t, rss, size in picked:
        yield f"| {t:.0f} | {rss:.1f} | {size / 1024:.0f} |"


def _memory_lines(memory: dict[str, Any]) -> list[str]:
    lines = ["| memory | value |", "| --- | --- |"]
    if "mib_per_1000_units" in memory:
        lines.append(f"| RSS growth per 1,000 units stored | {memory['mib_per_1000_units']} MiB |")
    if steady := memory.get("steady"):
        lines.append(
            f"| steady phase ({steady['seconds']:.0f} s, units {steady['units_start']} -> "
            f"{steady['units_end']}) | RSS {steady['rss_first_minute_median_mib']} -> "
            f"{steady['rss_last_minute_median_mib']} MiB (first and last minute medians) |"
        )
    return [*lines, ""] if len(lines) > 2 else []


def render(report: dict[str, Any]) -> str:
    """The report as Markdown (the tables docs/reliability.md quotes)."""
    ledger = report.get("ledger", {})
    ticks = report["ticks"]
    lines = [
        "| figure | value |",
        "| --- | --- |",
        f"| feeds | {report['config']['feeds']} |",
        f"| soak seconds (then quiet) | {report['config']['seconds']} |",
        f"| farm requests | {report.get('farm_requests')} |",
        f"| responses 200 / 304 | {report.get('responses')} |",
        f"| entries served intact | {ledger.get('served_entries')} |",
        f"| versions served (entries edited) | {ledger.get('served_versions')} "
        f"({ledger.get('served_edited_entries')}) |",
        f"| articles stored / versions stored | {ledger.get('stored_articles')} / "
        f"{ledger.get('stored_versions')} |",
        f"| lost / stored twice / phantom / stale | {len(ledger.get('lost', []))} / "
        f"{len(ledger.get('twice', []))} / {len(ledger.get('phantom', []))} / "
        f"{len(ledger.get('stale', []))} |",
        f"| feeds disabled after a 410 | {len(ledger.get('feeds_disabled_after_410', []))} |",
        f"| story clusters with 2+ articles | {ledger.get('clusters_with_several_articles')} |",
        f"| final wait after quiet | {report.get('final_wait_seconds')} s |",
        f"| daemon alive at end / exit on SIGTERM | {report.get('daemon_alive_at_end')} / "
        f"{report.get('daemon_exit')} |",
        f"| ticks: count, p50, p99, max | {ticks['count']}, {ticks['p50_s']} s, "
        f"{ticks['p99_s']} s, {ticks['max_s']} s |",
        f"| reader runs / failures / 'locked' | {report['readers']['total']} / "
        f"{report['readers']['failure_count']} / {report['readers']['locked']} |",
        f"| reader runs by command | {report['readers']['runs']} |",
        f"| database size | {report.get('db_bytes', 0) / 1048576:.1f} MiB |",
        "",
        "| fault injected | count |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in report.get("faults_injected", {}).items()),
        "",
        "| daemon error (log) | count |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in report.get("daemon_errors", {}).items()),
        *(f"| {k} (warning) | {v} |" for k, v in report.get("daemon_warnings", {}).items()),
        "",
        *_memory_lines(report.get("memory", {})),
        "| seconds | RSS daemon + children (MiB) | "
        + ("database (KiB) |" if report.get("store") == "postgresql" else "WAL (KiB) |"),
        "| --- | --- | --- |",
        *_sample_rows(report.get("samples", [])),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--faults", default="default")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--change-seconds", type=float, default=60.0)
    parser.add_argument("--min-interval-minutes", type=float, default=0.25)
    parser.add_argument("--max-interval-hours", type=float, default=0.02)
    parser.add_argument(
        "--final-timeout",
        type=float,
        default=600,
        help="after the soak, give up when no feed has caught up for this many seconds",
    )
    parser.add_argument(
        "--until-every-fault",
        type=float,
        default=0,
        metavar="FACTOR",
        help="run on past --minutes until every fault kind was injected, up to FACTOR x as long",
    )
    parser.add_argument(
        "--index-max-units",
        type=int,
        default=1_000_000,
        help="the daemon's dedup.index_max_units (a small value shows memory with a full index)",
    )
    parser.add_argument(
        "--steady-minutes",
        type=float,
        default=0,
        help="after the final polls, this long more with the farm quiet (memory with no growth)",
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "soak")
    parser.add_argument(
        "--db",
        metavar="FILE|URL",
        help="an empty SQLite file or PostgreSQL database (postgresql://...) instead of "
        "OUT/soak.db, made anew",
    )
    args = parser.parse_args(argv)
    cfg = SoakConfig(
        out=args.out.resolve(),
        database=None if args.db is None else database_location(args.db),
        feeds=args.feeds,
        seconds=args.minutes * 60,
        faults=args.faults,
        seed=args.seed,
        readers=args.readers,
        change_seconds=args.change_seconds,
        min_interval_minutes=args.min_interval_minutes,
        max_interval_hours=args.max_interval_hours,
        final_timeout=args.final_timeout,
        until_every_fault=args.until_every_fault,
        steady_seconds=args.steady_minutes * 60,
        index_max_units=args.index_max_units,
    )
    try:
        report = run_soak(cfg, sys.stderr)
    except RuntimeError as e:  # a database not empty, a farm that did not start
        print(f"soak: {e}", file=sys.stderr)
        return 2
    print(render(report))
    ledger = report["ledger"]
    ok = (
        not (ledger["lost"] or ledger["twice"] or ledger["phantom"] or ledger["stale"])
        and report["daemon_exit"] == 0
        and report["readers"]["locked"] == 0
        and not report["final_wait_missing"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
