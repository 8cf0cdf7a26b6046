"""Roles: one deployment's work split over processes and machines (`run --role`).

`aggregator run` is one process doing everything (`--role all`, the
default, on SQLite or PostgreSQL). On PostgreSQL the same work can be split
(docs/architecture.md has the picture):

* **fetch** (any number, on any machines): claims due feeds under a lease,
  polls them and prepares their entries (ingest/fetchnode.py), and stages
  them in the database. It never loads the LSH index.
* **scheduler** (one active, any number standing by, as dedup): the daily
  digest and the stories feed, once for the deployment, in the scheduler
  node's `digest.directory`. Fetch nodes need no central pass over due
  feeds: each claims what is due itself.
* **dedup** (one active, any number standing by): the only writer of
  articles. It holds the dedup advisory lock; a standby asks for it every
  `STANDBY_SECONDS` and takes over when the holder's connection ends (the
  server ends it the moment the process dies, `kill -9` included). The new
  writer loads the index from what is committed and goes on with the oldest
  staged batch: a batch stored and not yet deleted when the last writer
  died is found stored, unchanged, so nothing is stored twice.

Every node has a row in `nodes` and beats every `daemon.heartbeat_seconds`
on a thread with its own connection, which also moves its leases on; a
node that stops cleanly gives its leases back. A role refuses to start
beside a single-process daemon (`--role all`) on the same database: both
would poll the same feeds.

What stays serial is what must be deterministic: which passages match, the
clusters and their canonical copies are decided by the one writer, in the
order batches were staged.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from aggregator.config import Config, Database, PostgresURL
from aggregator.configfile import find_config, load_config
from aggregator.dedup.signature import Signatures
from aggregator.digest.publish import digest_due, publish_day, write_stories_feed
from aggregator.errors import AlreadyRunningError, ConfigError, DigestError, StoreError
from aggregator.ingest.feeds import sync_config_feeds
from aggregator.ingest.fetchnode import FetchPoller
from aggregator.ingest.handoff import HandoffError, decode
from aggregator.ingest.pipeline import Ingester
from aggregator.ingest.record import ReadyArticle
from aggregator.model import format_time, parse_time
from aggregator.storage.nodes import Nodes
from aggregator.storage.store import Store

if TYPE_CHECKING:
    from aggregator.storage.postgres import PostgresRoleLock

log = logging.getLogger(__name__)

STANDBY_SECONDS = 1.0  # how often a standby asks for its role's lock
# How long the writer, with no batch staged, waits for a fetch node's NOTIFY before it
# looks again anyway (the staged table, not the notification, is what it trusts).
IDLE_SECONDS = 1.0
BATCHES_PER_LOOK = 8


class Node:
    """What every role shares: its store, its row in `nodes`, a heartbeat, the stop."""

    role = ""

    def __init__(self, config: Config) -> None:
        self.config = config
        assert isinstance(config.database, PostgresURL)
        self.url: PostgresURL = config.database
        self.stop = threading.Event()
        self.state = "starting"
        self.store = Store(config.database, config.dedup.minhash)
        self.nodes = Nodes(self.store)
        self.id = 0

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        self.id = self.nodes.register(self.role)
        log.info("%s node %d started: database %s", self.role, self.id, self.store.location)
        beat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        beat.start()
        try:
            return self.work()
        finally:
            self.stop.set()
            beat.join(timeout=self.config.daemon.heartbeat_seconds + 5)
            try:
                self.nodes.stopped(self.id)
            except StoreError as e:
                log.warning("node %d: its stop could not be recorded: %s", self.id, e)
            self.store.close()
            log.info("%s node %d stopped", self.role, self.id)

    def work(self) -> int:
        raise NotImplementedError

    def in_flight(self) -> list[int]:
        """The tokens of the leases the node is working on (its heartbeat moves those)."""
        return []

    def _take_lock(self) -> PostgresRoleLock | None:
        """The role's lock, once this node holds it (a standby until then); None if
        the node was told to stop first."""
        from aggregator.storage.postgres import PostgresRoleLock

        lock = PostgresRoleLock(self.url, self.role)
        self.state = "standby"
        while not lock.try_acquire():
            if self.stop.wait(STANDBY_SECONDS):
                lock.release()
                return None
        return lock

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def _beat(self) -> None:
        """The heartbeat, on a connection of its own (the work's may be in a long write)."""
        daemon = self.config.daemon
        with Store(self.url, self.config.dedup.minhash) as store:
            nodes = Nodes(store)
            while not self.stop.wait(daemon.heartbeat_seconds):
                try:
                    nodes.heartbeat(self.id, self.state, daemon.lease_seconds, self.in_flight())
                except StoreError as e:
                    log.warning("node %d: heartbeat failed: %s", self.id, e)


class FetchNode(Node):
    role = "fetch"
    poller: FetchPoller | None = None

    def in_flight(self) -> list[int]:
        poller = self.poller
        return [] if poller is None else list(poller.tokens.values())

    def work(self) -> int:
        daemon = self.config.daemon
        if daemon.fetch_nice:
            # Before the pool starts, so its processes inherit it. A machine of fetch
            # nodes alone runs as fast; one shared with the writer lets the writer's
            # chain go first (docs/benchmarks.md, "Fetch nodes yield to the writer").
            os.nice(daemon.fetch_nice)
            log.info(
                "fetch node %d: at nice +%d, behind a writer on this machine",
                self.id,
                daemon.fetch_nice,
            )
        poller = self.poller = FetchPoller(self.store, self.config, self.nodes, self.stop)
        try:
            while not self.stop.is_set():
                try:
                    claimed = self.nodes.claim(
                        self.id, None, daemon.batch_size, daemon.lease_seconds
                    )
                    if not claimed:
                        self.state = "idle"
                        self.stop.wait(daemon.tick_seconds)
                        continue
                    self.state = f"polling {len(claimed)} feeds"
                    polled = sum(1 for _ in poller.poll(poller.lease(claimed)))
                    log.info("fetch: %d feeds polled", polled)
                except StoreError as e:
                    log.error("fetch: %s", e)
                    self.state = f"error: {e}"
                    self.stop.wait(daemon.tick_seconds)
                finally:
                    # Polls that ended without a result keep no lease alive: theirs run
                    # out, and another node (or this one) claims those feeds again.
                    poller.tokens.clear()
        finally:
            poller.close(wait=not self.stop.is_set())
        return 0


class DedupNode(Node):
    role = "dedup"

    def work(self) -> int:
        lock = self._take_lock()
        if lock is None:
            return 0
        lock.listen("aggregator_staged")  # fetch nodes say when they staged a batch
        log.info("dedup node %d: the writer now", self.id)
        # The configured feeds are subscribed by the one writer, as the daemon does.
        sync_config_feeds(self.store, self.config.feeds.urls, datetime.now(UTC))
        self.state = "writer: loading the index"
        ingester = Ingester(self.store, self.config)
        self.state = "writer"
        try:
            while not self.stop.is_set():
                if not lock.alive():
                    log.error("dedup node %d: lost the writer's lock; stopping", self.id)
                    return 1
                try:
                    if not self._store_some(ingester, lock):
                        lock.wait(IDLE_SECONDS)
                except StoreError as e:
                    log.error("dedup: %s", e)
                    self.stop.wait(self.config.daemon.heartbeat_seconds)
            return 0
        finally:
            ingester.close()
            lock.release()

    def _store_some(self, ingester: Ingester, lock: PostgresRoleLock) -> bool:
        """Store the oldest staged batches; False if there were none.

        A thread reads the batches ahead while this one stores: reading is about a
        sixth of the writer's CPU, and this thread's waits for the database let
        it run (docs/benchmarks.md, "The writer gives its rows their ids")."""
        waiting = self.nodes.waiting_from(BATCHES_PER_LOOK)
        reader = ThreadPoolExecutor(1, thread_name_prefix="handoff")
        try:
            batches = reader.map(_read, [payload for _, _, payload in waiting])
            for (staged_id, feed_id, _), batch in zip(waiting, batches, strict=True):
                if self.stop.is_set() or not lock.alive():
                    break  # the caller sees a lost lock and stops
                self._store_batch(ingester, staged_id, feed_id, batch)
        finally:
            reader.shutdown(cancel_futures=True)
        return bool(waiting)

    def _store_batch(
        self,
        ingester: Ingester,
        staged_id: int,
        feed_id: int | None,
        batch: tuple[list[ReadyArticle], Signatures] | HandoffError,
    ) -> None:
        """Store one staged batch, or set it aside if it could not be read."""
        if isinstance(batch, HandoffError):
            log.error("staged batch %d set aside: %s", staged_id, batch)
            self.nodes.set_aside(staged_id, str(batch))
            return
        outcomes = list(ingester.store_prepared(*batch))
        refused = [o for o in outcomes if o.refused]
        for outcome in outcomes:
            if outcome.status == "failed":
                log.warning("entry %s: %s", outcome.location, outcome.error)
        if refused and feed_id is not None:
            reason = (
                f"{len(refused)} of {len(outcomes)} entries refused by the database, "
                f"last: {refused[-1].error}"
            )
            self.nodes.refused(feed_id, reason)
        self.nodes.done([staged_id])


def _read(payload: bytes) -> tuple[list[ReadyArticle], Signatures] | HandoffError:
    """A staged payload decoded, or why it cannot be (in the reader thread)."""
    try:
        return decode(payload)
    except HandoffError as e:
        return e


class SchedulerNode(Node):
    """The periodic work that must run once in the deployment: the daily digest (at
    `daemon.digest_time`, or at once when the last one due was never written) and
    the stories feed, rebuilt when something new arrived."""

    role = "scheduler"

    def work(self) -> int:
        lock = self._take_lock()
        if lock is None:
            return 0
        log.info("scheduler node %d: the scheduler now", self.id)
        self.state = "scheduler"
        newest: datetime | None = None
        try:
            while not self.stop.is_set():
                if not lock.alive():
                    log.error("scheduler node %d: lost the scheduler's lock; stopping", self.id)
                    return 1
                try:
                    newest = self._periodic(newest)
                except (StoreError, DigestError, OSError) as e:
                    log.error("scheduler: %s", e)
                self.stop.wait(self.config.daemon.tick_seconds)
            return 0
        finally:
            lock.release()

    def _periodic(self, newest: datetime | None) -> datetime | None:
        """The digest if one is due and unwritten; the stories feed if an article
        arrived since it was last written. The newest arrival it was written for."""
        d, now = self.config.daemon, datetime.now(UTC)
        due_at, day = digest_due(now, d.digest_time, d.timezone)
        last = self.store.state.read().get("last_digest_at")
        if not last or parse_time(last) < due_at:
            written = publish_day(self.store, self.config, day)
            log.info("digest written: %s", ", ".join(str(p) for p in written))
            self.store.state.write({"last_digest_at": format_time(now)}, now)
        arrived = self.store.digests.nth_newest_arrival(1, before=now + timedelta(seconds=1))
        if arrived is not None and arrived != newest:
            write_stories_feed(self.store, self.config, now)
            return arrived
        return newest


ROLES: dict[str, type[Node]] = {"fetch": FetchNode, "dedup": DedupNode, "scheduler": SchedulerNode}


def refuse_beside_nodes(store: Store, config: Config) -> None:
    """AlreadyRunningError if nodes of roles serve this PostgreSQL database: a
    single-process daemon beside them would poll the same feeds."""
    if not isinstance(config.database, PostgresURL):
        return
    live = Nodes(store).live(3 * config.daemon.heartbeat_seconds + 1)
    if live:
        shown = ", ".join(f"{n.role} pid {n.pid} on {n.host}" for n in live[:4])
        raise AlreadyRunningError(
            f"{config.database}: served by {len(live)} nodes of roles ({shown}); "
            "stop them before running the single-process daemon"
        )


def run_role(config_path: Path | None, database: Database | None, role: str) -> int:
    """Run this process as one node of `role` until a stop signal; its exit code."""
    config = load_config(find_config(config_path))
    if database is not None:
        config = replace(config, database=database)
    if not isinstance(config.database, PostgresURL):
        raise ConfigError(
            f'--role {role} needs a PostgreSQL database (database = "postgresql://..."); '
            f"{config.database} is a SQLite file, which serves one process: use --role all"
        )
    from aggregator.storage.postgres import PostgresDaemonLock

    if (pid := PostgresDaemonLock(config.database).held_elsewhere()) is not None:
        raise ConfigError(
            f"{config.database}: served by a single-process daemon (pid {pid}, --role all); "
            "stop it before starting nodes of roles"
        )
    return ROLES[role](config).run()
