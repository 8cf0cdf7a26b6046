"""State: what the daemon last did, and the status report built from it.

The daemon writes a few keys to `service_state` as it works (when it
started, its last tick and scan, the last digest); `aggregator status` reads
them together with the sources' schedule, the database's size and its counts.
The reading and writing is storage's (`store.state`, `store.feeds.tally` and
`failing`); this module decides what the report says and what health it is.
Whether a daemon runs is not read from the table (a `kill -9` cannot clean
up after itself) but from the database lock, which the kernel releases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator.config import DaemonConfig, Database, PostgresURL
from aggregator.model import FailingFeed, parse_time
from aggregator.service.system import daemon_lock
from aggregator.storage.nodes import NodeRow, Nodes, Queue
from aggregator.storage.protocol import Store
from aggregator.storage.store import Store as SQLStore

JOBS = ("tick", "scan", "digest")

# `aggregator status` exit codes (documented in its help and the README), so that it
# can back a health check: 0 running and healthy, 3 not running (as LSB's
# `status`), 4 running but degraded (a job's last run failed, or the feed tick is
# overdue). Errors reading the status at all exit 1, like every command.
EXIT_HEALTHY, EXIT_NOT_RUNNING, EXIT_DEGRADED = 0, 3, 4


def one_line(text: str) -> str:
    """`text` on one line: what a job's failure is recorded and shown as."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a daemon job's last run ended: when it finished, ok or not, why not, how long."""

    at: str
    ok: bool
    error: str | None
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobOutcome | None:
        """The outcome recorded as `text`, or None if it is not one (never raises)."""
        try:
            raw = json.loads(text)
            return cls(str(raw["at"]), bool(raw["ok"]), raw.get("error"), float(raw["seconds"]))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True, slots=True)
class Status:
    """What `aggregator status` shows."""

    running: bool
    pid: int | None
    started_at: str | None
    last_tick_at: str | None
    last_tick: str | None
    last_scan_at: str | None
    last_digest_at: str | None
    feeds: int
    feeds_due: int
    feeds_failing: int
    failing_feeds: list[FailingFeed]  # the most recently failed first
    jobs: dict[str, JobOutcome | None]  # the last run of each daemon job; None: not yet
    health: str  # "healthy", "degraded" or "not running"
    problems: list[str]  # why degraded, one line each
    database: str
    database_bytes: int
    counts: dict[str, int]
    index_units: int | None = None  # units in the daemon's LSH index (None: not known)
    index_since: str | None = None  # first seen of the oldest article it holds; None: all
    # How many days back it reaches (None: it holds every stored unit) against the
    # match window: copies of articles between the two are missed.
    index_days: float | None = None
    window_days: float | None = None
    # Several nodes (PostgreSQL, `run --role`): the live ones, and the staged queue.
    nodes: list[NodeRow] = field(default_factory=list)
    queue: Queue | None = None


def status(
    store: Store, database: Database, daemon: DaemonConfig, now: datetime | None = None
) -> Status:
    """What `aggregator status` shows; `daemon`: the schedule the jobs are judged by."""
    state = store.state.read()
    pid = daemon_lock(database).held_elsewhere()
    now = now or datetime.now(UTC)
    jobs = {name: JobOutcome.from_json(state.get(f"job_{name}", "")) for name in JOBS}
    problems = degraded_by(jobs, state, daemon, now) if pid is not None else []
    nodes: list[NodeRow] = []
    queue = None
    if isinstance(database, PostgresURL) and isinstance(store, SQLStore):
        bookkeeping = Nodes(store)
        nodes = bookkeeping.live(3 * daemon.heartbeat_seconds + 1)
        queue = bookkeeping.queue()
        problems += nodes_degraded_by(nodes, queue, daemon) if nodes else []
    running = pid is not None or bool(nodes)
    health = "not running" if not running else "degraded" if problems else "healthy"
    tally = store.feeds.tally(now)
    size = (
        sum(
            p.stat().st_size
            for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm"))
            if p.exists()
        )
        if isinstance(database, Path)
        else store.size()
    )
    return Status(
        running=running,
        pid=pid if pid and pid > 0 else None,
        started_at=state.get("started_at") or None,
        last_tick_at=state.get("last_tick_at"),
        last_tick=state.get("last_tick"),
        last_scan_at=state.get("last_scan_at"),
        last_digest_at=state.get("last_digest_at"),
        feeds=tally.feeds,
        feeds_due=tally.due,
        feeds_failing=tally.failing,
        failing_feeds=store.feeds.failing(),
        jobs=jobs,
        health=health,
        problems=problems,
        database=str(database),
        database_bytes=size,
        counts=store.counts(),
        **_index_reach(state.get("index", ""), now),
        nodes=nodes,
        queue=queue,
    )


def nodes_degraded_by(nodes: list[NodeRow], queue: Queue, daemon: DaemonConfig) -> list[str]:
    """Why a deployment of several nodes is degraded: no writer, no fetch node, or a
    writer more than a lease behind the oldest staged batch."""
    problems = []
    if not any(n.role == "dedup" and n.state.startswith("writer") for n in nodes):
        problems.append(
            f"no dedup writer: {queue.batches} staged batches ({queue.articles} articles) wait"
        )
    if not any(n.role == "fetch" for n in nodes):
        problems.append("no fetch node: no feed is polled")
    lag = queue.oldest_age
    if lag is not None and lag > max(daemon.lease_seconds, 60.0):
        problems.append(f"the dedup writer is {lag:.0f} s behind the oldest staged batch")
    if queue.set_aside:
        problems.append(f"{queue.set_aside} staged batches set aside (unreadable payloads)")
    return problems


def _index_reach(stored: str, now: datetime) -> dict[str, Any]:
    """The daemon's last word on its index (`Daemon._index_reach`), if it left one."""
    try:
        reach = json.loads(stored) if stored else {}
    except ValueError:
        reach = {}
    if not isinstance(reach, dict) or not isinstance(reach.get("units"), int):
        return {}
    since = reach.get("since") or None
    window = reach.get("window_days")
    return {
        "index_units": reach["units"],
        "index_since": since,
        "index_days": index_days(since, now) if since else None,
        "window_days": float(window) if isinstance(window, int | float) else None,
    }


def index_days(since: str, now: datetime) -> float:
    """Days from the first sighting of the oldest article an index holds to `now`."""
    return max(0.0, (now - parse_time(since)).total_seconds() / 86400)


def index_record(units: int, since: str, window_days: float) -> str:
    """The daemon's index as it records it for `status` (`since`: "" if it holds all)."""
    return json.dumps({"units": units, "since": since, "window_days": window_days})


def short_reach(since: str, window_days: float, now: datetime) -> str | None:
    """What to log when an index reaching back to `since` misses part of the window."""
    if not since:
        return None
    days = index_days(since, now)
    if days >= window_days:
        return None
    return (
        f"LSH index reaches back {days:.1f} days (articles first seen since {since}), less "
        f"than the {window_days:g}-day match window: copies of older articles are missed; "
        "raise dedup.index_max_units (about 0.2 KiB a unit)"
    )


def exit_code(report: Status) -> int:
    """`aggregator status`'s exit code for `report` (see EXIT_HEALTHY)."""
    return {"healthy": EXIT_HEALTHY, "degraded": EXIT_DEGRADED}.get(report.health, EXIT_NOT_RUNNING)


def degraded_by(
    jobs: dict[str, JobOutcome | None], state: dict[str, str], daemon: DaemonConfig, now: datetime
) -> list[str]:
    """Why a running daemon is degraded: each job whose last run failed, and a feed
    tick that has not finished for longer than three ticks and a whole tick budget
    (a job stuck, or the scheduler stopped)."""
    problems = [
        f"job {name} failed at {outcome.at}: {outcome.error}"
        for name, outcome in jobs.items()
        if outcome is not None and not outcome.ok
    ]
    since = state.get("last_tick_at") or state.get("started_at")
    allowed = timedelta(seconds=3 * daemon.tick_seconds + daemon.tick_budget_seconds)
    if since and now - parse_time(since) > allowed:
        problems.append(
            f"no feed tick finished since {since} (expected every {daemon.tick_seconds} s)"
        )
    return problems
