"""State: what the daemon last did, and the status report built from it.

The daemon writes a few keys to `service_state` as it works (when it
started, its last tick and scan, the last digest); `aggregator status` reads
them together with the sources' schedule, the database's size and its counts.
Whether a daemon runs is not read from the table (a `kill -9` cannot clean
up after itself) but from the database lock, which the kernel releases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator.model import format_time, utcnow
from aggregator.service import DatabaseLock
from aggregator.store import Store


def write_state(store: Store, **values: str) -> None:
    """Record daemon state keys, in one small transaction."""
    now = utcnow()
    with store.write():
        store.conn.executemany(
            "INSERT INTO service_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at",
            [(key, value, now) for key, value in values.items()],
        )


def read_state(store: Store) -> dict[str, str]:
    return dict(store.execute("SELECT key, value FROM service_state").fetchall())


@dataclass(frozen=True, slots=True)
class FailingFeed:
    """An enabled feed whose last poll failed: its one-line error, and since when
    it last succeeded."""

    id: int
    name: str
    location: str
    error_count: int
    last_error: str
    last_success_at: str | None


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
    database: str
    database_bytes: int
    counts: dict[str, int]


def status(store: Store, database: Path, now: datetime | None = None) -> Status:
    state = read_state(store)
    pid = DatabaseLock(database).held_elsewhere()
    stamp = format_time(now or datetime.now(UTC))
    feeds, due, failing = store.execute(
        "SELECT count(*), "
        "coalesce(sum(next_check_at IS NULL OR next_check_at <= ?), 0), "
        "coalesce(sum(error_count > 0), 0) "
        "FROM sources WHERE kind = 'feed' AND enabled = 1",
        (stamp,),
    ).fetchone()
    failing_feeds = [
        FailingFeed(int(i), name, location, int(count), error or "", success)
        for i, name, location, count, error, success in store.execute(
            "SELECT id, name, location, error_count, last_error, last_success_at "
            "FROM sources WHERE kind = 'feed' AND enabled = 1 AND error_count > 0 "
            "ORDER BY last_checked_at DESC, id"
        )
    ]
    size = sum(
        p.stat().st_size
        for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm"))
        if p.exists()
    )
    return Status(
        running=pid is not None,
        pid=pid if pid and pid > 0 else None,
        started_at=state.get("started_at") or None,
        last_tick_at=state.get("last_tick_at"),
        last_tick=state.get("last_tick"),
        last_scan_at=state.get("last_scan_at"),
        last_digest_at=state.get("last_digest_at"),
        feeds=int(feeds),
        feeds_due=int(due),
        feeds_failing=int(failing),
        failing_feeds=failing_feeds,
        database=str(database),
        database_bytes=size,
        counts=store.counts(),
    )
