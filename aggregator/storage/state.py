"""Service state: the keys the daemon writes as it works and `status` reads.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give plain values. The table is a
small key-value store (started_at, stopped_at, last_tick_at, last_tick,
last_scan_at, last_digest_at, job_<name>): each key is one row, rewritten in
place with the time it was written, so the table never grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aggregator.model import format_time

if TYPE_CHECKING:
    from aggregator.storage.store import Store


class SQLState:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.state`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def write(self, values: Mapping[str, str], now: datetime | None = None) -> None:
        """Record these keys, stamped `now`, in one small transaction."""
        stamp = format_time(now or datetime.now(UTC))
        with self._store.write():
            for key, value in values.items():
                self._store.execute(
                    "INSERT INTO service_state (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "value = excluded.value, updated_at = excluded.updated_at",
                    (key, value, stamp),
                )

    def read(self) -> dict[str, str]:
        """Every key with its value."""
        return dict(self._store.execute("SELECT key, value FROM service_state").fetchall())
