"""Nodes: the processes of one deployment on one PostgreSQL database, and what they share.

`aggregator run --role fetch|dedup|scheduler` (service/roles.py) splits the
daemon over processes on any number of machines. Every statement about their
bookkeeping (schema version 3, pgschema.py) is here:

* **Nodes** register themselves (host, pid, role) and beat every few
  seconds; `status` lists the live ones. Heartbeats, leases and the claim's
  "due" are read on the server's clock (`now()`), so nodes need not agree on
  the time for any of them (a feed's `next_check_at` is still written by the
  node that polled it, from its own clock: skew moves a check, nothing more).
* **Feed leases.** A fetch node claims due feeds with `FOR UPDATE SKIP
  LOCKED` (two nodes never take the same feed) and a lease: a row in
  `feed_leases` with a token from a sequence and an expiry the node's
  heartbeat keeps moving. A node killed mid-poll stops beating, its leases
  run out, and another node claims those feeds. The feeds table is the
  queue: a feed's `next_check_at` is its place in it, so there is no job row
  to keep in step with the schedule (docs/architecture.md says why no job
  library).
* **Fencing.** A poll's result is written (`finish`) only while the node still
  holds the lease with its token, in one transaction with the feed's new
  state (ETag, Last-Modified, body hash) and the staged entries: a node
  whose lease ran out and was claimed again writes nothing, so the feed's
  conditional-GET state never goes back to an older poll's, and entries are
  never staged without the state that says they were seen.
* **Staged entries** are the handoff (ingest/handoff.py) from fetch nodes to
  the one dedup writer, which reads them in id order and deletes them once
  stored. A payload it cannot read is set aside with the reason, not deleted:
  `status` counts them as a problem, for a person to look at. An entry the
  database refused (`refused`) makes the writer forget its feed's body hash
  and validators, so the next poll fetches and stages it again, as the
  single-process poll does.

These writes take no part in the writers' lock (`write(serialised=False)`):
they touch no article, so a fetch node never waits for the dedup writer's
transaction, nor it for theirs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.model import FeedSource, FeedUpdate, format_time
from aggregator.storage.feeds import feed_columns, feed_from_row

if TYPE_CHECKING:
    from aggregator.storage.store import Store

ROLES = ("all", "fetch", "dedup", "scheduler")
# The server's time as stored times are written (text, whole seconds, UTC).
_SERVER_NOW_SQL = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


class LeaseLost(Exception):
    """The node no longer holds the feed's lease: its poll is dropped."""


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A node as `status` shows it."""

    id: int
    host: str
    pid: int
    role: str
    state: str
    started_at: str
    heartbeat_age: float  # seconds since its last heartbeat, by the server's clock
    feeds_in_flight: int


@dataclass(frozen=True, slots=True)
class Queue:
    """The staged entries waiting for the dedup writer."""

    batches: int
    articles: int
    oldest_age: float | None  # seconds the oldest has waited: the writer's lag
    set_aside: int


class Nodes:
    """Node bookkeeping on a PostgreSQL store (`Nodes(store)`)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def register(self, role: str) -> int:
        with self._store.write(serialised=False):
            row = self._store.execute(
                "INSERT INTO nodes (host, pid, role) VALUES (?, ?, ?) RETURNING id",
                (socket.gethostname(), os.getpid(), role),
            ).fetchone()
        return int(row[0])

    def heartbeat(
        self, node_id: int, state: str, lease_seconds: float, tokens: list[int] | None = None
    ) -> None:
        """The node is alive: its heartbeat, and the leases of the polls it is still
        working on (`tokens`; None: all of its leases) moved on. A lease whose poll
        ended without a result (an error cut it short) is not moved, and runs out."""
        with self._store.write(serialised=False):
            self._store.execute(
                "UPDATE nodes SET heartbeat_at = now(), state = ? WHERE id = ?", (state, node_id)
            )
            if tokens is None:
                self._store.execute(
                    "UPDATE feed_leases SET until = now() + make_interval(secs => ?) "
                    "WHERE node_id = ?",
                    (lease_seconds, node_id),
                )
            elif tokens:
                self._store.execute(
                    "UPDATE feed_leases SET until = now() + make_interval(secs => ?) "
                    "WHERE node_id = ? AND token = ANY(?)",
                    (lease_seconds, node_id, tokens),
                )

    def stopped(self, node_id: int) -> None:
        """The node ends: its leases are given back, its row says when it stopped."""
        with self._store.write(serialised=False):
            self._store.execute("DELETE FROM feed_leases WHERE node_id = ?", (node_id,))
            self._store.execute(
                "UPDATE nodes SET stopped_at = now(), state = 'stopped' WHERE id = ?", (node_id,)
            )

    def claim(
        self, node_id: int, now: datetime | None, limit: int, lease_seconds: float
    ) -> list[tuple[FeedSource, int]]:
        """Up to `limit` feeds due by `now` (None: the server's clock) that no live
        lease holds, leased to this node: (feed, token)."""
        columns = feed_columns("s")
        with self._store.write(serialised=False):
            rows = self._store.execute(
                "WITH due AS ("
                " SELECT s.id FROM sources s LEFT JOIN feed_leases l ON l.source_id = s.id"
                " WHERE s.kind = 'feed' AND s.enabled = 1"
                " AND (s.next_check_at IS NULL"
                f" OR s.next_check_at <= coalesce(CAST(? AS text), {_SERVER_NOW_SQL}))"
                " AND (l.until IS NULL OR l.until < now())"
                " ORDER BY s.next_check_at NULLS FIRST, s.id LIMIT ?"
                " FOR UPDATE OF s SKIP LOCKED),"
                " taken AS ("
                " INSERT INTO feed_leases (source_id, node_id, token, until)"
                " SELECT id, ?, nextval('lease_tokens'), now() + make_interval(secs => ?)"
                " FROM due"
                " ON CONFLICT (source_id) DO UPDATE SET node_id = excluded.node_id,"
                " token = excluded.token, until = excluded.until"
                " WHERE feed_leases.until < now()"
                " RETURNING source_id, token)"
                f" SELECT {columns}, t.token FROM taken t JOIN sources s ON s.id = t.source_id"
                " ORDER BY s.next_check_at NULLS FIRST, s.id",
                (None if now is None else format_time(now), limit, node_id, lease_seconds),
            ).fetchall()
        return [(feed_from_row(tuple(r[:-1])), int(r[-1])) for r in rows]

    def finish(
        self, feed_id: int, token: int, update: FeedUpdate, payloads: Iterable[tuple[int, bytes]]
    ) -> None:
        """Write a poll's result: the staged entries (articles, payload) and the feed's new
        state, and give the lease back; LeaseLost (nothing written) if it is not ours."""
        with self._store.write(serialised=False):
            held = self._store.execute(
                "DELETE FROM feed_leases WHERE source_id = ? AND token = ? RETURNING node_id",
                (feed_id, token),
            ).fetchone()
            if held is None:
                raise LeaseLost(f"feed {feed_id}: lease {token} is no longer this node's")
            for articles, payload in payloads:
                self._store.execute(
                    "INSERT INTO staged (source_id, node_id, articles, payload) "
                    "VALUES (?, ?, ?, ?)",
                    (feed_id, int(held[0]), articles, payload),
                )
            self._store.feeds.apply(feed_id, update)
            self._store.execute("NOTIFY aggregator_staged")

    def release(self, feed_id: int, token: int) -> None:
        """Give a lease back without a result (the poll was abandoned)."""
        with self._store.write(serialised=False):
            self._store.execute(
                "DELETE FROM feed_leases WHERE source_id = ? AND token = ?", (feed_id, token)
            )

    def waiting(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest staged entries not set aside: (id, payload), in id order."""
        return [(i, p) for i, _, p in self.waiting_from(limit)]

    def waiting_from(self, limit: int) -> list[tuple[int, int | None, bytes]]:
        """As `waiting`, with the feed each came from: (id, source id, payload)."""
        rows = self._store.execute(
            "SELECT id, source_id, payload FROM staged WHERE set_aside IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(i), None if f is None else int(f), bytes(p)) for i, f, p in rows]

    def refused(self, feed_id: int, reason: str) -> None:
        """The database refused an entry of the feed: its next poll fetches the whole
        document again (no validators, no body hash) and stages the entry again."""
        with self._store.write(serialised=False):
            self._store.execute(
                "UPDATE sources SET etag = NULL, last_modified = NULL, body_hash = NULL, "
                "last_error = ? WHERE id = ?",
                (reason, feed_id),
            )

    def done(self, ids: list[int]) -> None:
        """Staged entries now stored: gone."""
        with self._store.write(serialised=False):
            self._store.execute("DELETE FROM staged WHERE id = ANY(?)", (ids,))

    def set_aside(self, staged_id: int, why: str) -> None:
        with self._store.write(serialised=False):
            self._store.execute("UPDATE staged SET set_aside = ? WHERE id = ?", (why, staged_id))

    def live(self, within_seconds: float) -> list[NodeRow]:
        """The nodes that beat within the last `within_seconds`, oldest first."""
        rows = self._store.execute(
            "SELECT n.id, n.host, n.pid, n.role, n.state, "
            "to_char(n.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "extract(epoch FROM now() - n.heartbeat_at)::float8, "
            "(SELECT count(*) FROM feed_leases l WHERE l.node_id = n.id AND l.until >= now()) "
            "FROM nodes n WHERE n.stopped_at IS NULL "
            "AND n.heartbeat_at >= now() - make_interval(secs => ?) ORDER BY n.id",
            (within_seconds,),
        ).fetchall()
        return [
            NodeRow(
                int(r[0]),
                str(r[1]),
                int(r[2]),
                str(r[3]),
                str(r[4]),
                str(r[5]),
                float(r[6]),
                int(r[7]),
            )
            for r in rows
        ]

    def queue(self) -> Queue:
        row = self._store.execute(
            "SELECT count(*) FILTER (WHERE set_aside IS NULL), "
            "coalesce(sum(articles) FILTER (WHERE set_aside IS NULL), 0), "
            "extract(epoch FROM now() - min(staged_at) FILTER (WHERE set_aside IS NULL))::float8, "
            "count(*) FILTER (WHERE set_aside IS NOT NULL) FROM staged"
        ).fetchone()
        oldest = None if row[2] is None else float(row[2])
        return Queue(int(row[0]), int(row[1]), oldest, int(row[3]))
