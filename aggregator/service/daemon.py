"""Daemon: `aggregator run`, the scheduler inside the service.

What it decides, and why:

* **One writer thread.** Every job that writes (the feed tick, the folder
  scan, the digest) runs on APScheduler's single-thread executor, so jobs
  never overlap and the database connection is only ever used by one thread
  at a time; readers (the CLI, sqlite-utils) work beside it through WAL.
  Each job is `coalesce=True, max_instances=1`, with no misfire limit: a job
  that comes late runs once, late, rather than being dropped.
* **Nothing hangs the schedule.** A tick polls due feeds in batches of
  `batch_size` (picked by SQLite, the most overdue first, each feed at most
  once per tick) and stops taking batches after `tick_budget_seconds`; each
  fetch has its whole deadline and each parse its own (a runaway parser is
  killed). A job still
  running after `job_timeout_seconds` stops the systemd watchdog pings, so
  systemd restarts a daemon that is stuck anyway.
* **Stop (SIGTERM, SIGINT):** no new work; the article being written commits
  or rolls back (each is one transaction), fetches in flight are abandoned,
  and the database closes; the process exits 0 within `stop_grace_seconds`,
  closing the database only if the job thread let go of it in time (SQLite
  rolls back whatever was not committed).
* **Reload (SIGHUP):** the configuration is read again; a bad one is logged
  and the old one kept. The new one takes effect between jobs: sources,
  folders, intervals and thresholds change, the database path does not.
* **Clock jumps** (wall clock against the monotonic clock) move the interval
  jobs to now, so a clock set back an hour does not silence them for an hour.
* **Time** is read from `clock` (the wall clock unless a test passes one) for
  everything the daemon decides or records; APScheduler and the clock-jump
  check keep to the real clocks they run on.
* **The digest** of the previous local day is written at `digest_time` in
  `timezone` (files, stories feed, mail; see `publish.py`); the stories feed
  is also rewritten after every job that stored something new.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import Config, Database
from aggregator.configfile import find_config, load_config
from aggregator.digest.publish import digest_due, publish_day, write_stories_feed
from aggregator.errors import AggregatorError, StoreError
from aggregator.ingest.feeds import sync_config_feeds
from aggregator.ingest.pipeline import Ingester
from aggregator.ingest.poll import Poller
from aggregator.model import format_time, parse_time
from aggregator.plural import counted
from aggregator.service.roles import refuse_beside_nodes
from aggregator.service.state import JobOutcome, index_record, one_line, short_reach
from aggregator.service.system import Notifier, daemon_lock, owned_by_service
from aggregator.service.watch import FolderWatcher
from aggregator.storage.store import Store

log = logging.getLogger(__name__)

CLOCK_JUMP_SECONDS = 5.0


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Daemon:
    """The foreground service: `run()` blocks until a stop signal, then returns 0."""

    def __init__(
        self,
        config_path: Path | None,
        database: Database | None = None,
        clock: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self.config_path = config_path
        self.database = database
        self.clock = clock
        self.config = self._load()
        self.notifier = Notifier()
        self.stopping = threading.Event()
        self._reload = threading.Event()
        self._pending: Config | None = None
        self._busy: tuple[str, float] | None = None  # (job, monotonic start)
        self._overdue: tuple[str, float] | None = None  # the job last reported as stuck
        self._short_since = ""  # the index reach last logged as short of the window
        self._idle = threading.Event()
        self._idle.set()
        # Made in run(): the database, its lock and the stages that use it.
        self.store: Store
        self.poller: Poller
        self.watcher: FolderWatcher
        self.scheduler: BackgroundScheduler

    @staticmethod
    def _new_watcher(config: Config) -> FolderWatcher:
        return FolderWatcher(config.folders, config.ingest.extensions, config.ingest.max_file_bytes)

    def _load(self) -> Config:
        config = load_config(find_config(self.config_path))
        return replace(config, database=self.database) if self.database else config

    def run(self) -> int:
        config = self.config
        # The configured database: its folder is the service's.
        if self.database is None and isinstance(config.database, Path):
            config.database.parent.mkdir(parents=True, exist_ok=True)
        _make_owned_folders(config)
        lock = daemon_lock(config.database)
        lock.acquire()
        self.store = Store(config.database, config.dedup.minhash, shared=True)
        refuse_beside_nodes(self.store, config)  # PostgreSQL: no fetch/dedup node live
        # A corrupted file stops the start, saying what to do about it. The check
        # reads the whole file: about 7 s for 450 MB (20,000 feed articles).
        self.notifier.status("checking the database (quick_check)")
        started = time.monotonic()
        self.store.check()
        log.info("database checked in %.1f s", time.monotonic() - started)
        self.poller = Poller(self.store, config, stop=self.stopping, clock=self.clock)
        self.watcher = self._new_watcher(config)
        now = self.clock()
        sync_config_feeds(self.store, config.feeds.urls, now)
        self.store.state.write({"started_at": format_time(now), "stopped_at": ""}, now)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=config.daemon.timezone,
        )
        self._schedule(config, first=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self.scheduler.start()
        log.info("started: database %s, pid lock %s", config.database, lock.path)
        self.notifier.ready(f"running; database {config.database}")
        try:
            self._supervise()
        finally:
            clean = self._shut_down()
            lock.release()
        log.info("stopped%s", "" if clean else " (a job was still running; it was abandoned)")
        return 0

    # -- the main thread: signals, watchdog, clock, reload ------------------------------

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        self.stopping.set()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def _supervise(self) -> None:
        interval = self.notifier.watchdog_interval
        step = min(1.0, interval) if interval else 1.0
        offset = time.time() - time.monotonic()
        while not self.stopping.wait(step):
            if self._reload.is_set():
                self._reload.clear()
                self._read_new_config()
            if self._healthy() and interval:
                self.notifier.watchdog()
            now_offset = time.time() - time.monotonic()
            if abs(now_offset - offset) > CLOCK_JUMP_SECONDS:
                log.warning(
                    "wall clock jumped by %+.0f s; interval jobs run now", now_offset - offset
                )
                for job in self.scheduler.get_jobs():
                    if isinstance(job.trigger, IntervalTrigger):
                        job.modify(next_run_time=datetime.now(UTC))
            offset = now_offset

    def _healthy(self) -> bool:
        busy = self._busy
        if busy is None or time.monotonic() - busy[1] < self.config.daemon.job_timeout_seconds:
            self._overdue = None
            return True
        if self._overdue != busy:
            self._overdue = busy
            log.error(
                "job %s has run for over %.0f s; watchdog pings stop (systemd restarts us)",
                busy[0],
                self.config.daemon.job_timeout_seconds,
            )
        return False

    def _read_new_config(self) -> None:
        self.notifier.reloading()
        try:
            config = self._load()
        except AggregatorError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            self.notifier.status(f"reload refused: {e}")
            return
        if config.database != self.config.database:
            log.error(
                "reload: the database cannot change while running; keeping %s", self.config.database
            )
            config = replace(config, database=self.config.database)
        if config.dedup.minhash != self.config.dedup.minhash:
            log.error("reload: MinHash parameters are fixed for a database; keeping them")
            config = replace(config, dedup=replace(config.dedup, minhash=self.config.dedup.minhash))
        self._pending = config
        log.info("configuration reloaded from %s; applied before the next job", config.path)
        self.notifier.send("READY=1", "STATUS=running; configuration reloaded")
        self._schedule(config)

    def _shut_down(self) -> bool:
        self.notifier.stopping()
        self.stopping.set()
        self.scheduler.shutdown(wait=False)
        clean = self._idle.wait(self.config.daemon.stop_grace_seconds)
        self.poller.close(wait=False)
        if clean:
            now = self.clock()
            self.store.state.write({"stopped_at": format_time(now)}, now)
            self.store.close()
        return clean

    # -- the schedule ----------------------------------------------------------------------

    def _schedule(self, config: Config, first: bool = False) -> None:
        d = config.daemon
        hour, minute = (int(part) for part in d.digest_time.split(":"))
        now, wall = self.clock(), datetime.now(UTC)  # wall: when APScheduler runs a job
        last = self.store.state.read().get("last_digest_at")
        missed = not last or parse_time(last) < digest_due(now, d.digest_time, d.timezone)[0]
        jobs: dict[str, tuple[Callable[[], str | None], IntervalTrigger | CronTrigger]] = {
            "tick": (self._tick, IntervalTrigger(seconds=d.tick_seconds)),
            "scan": (self._scan, IntervalTrigger(seconds=d.scan_minutes * 60)),
            "digest": (self._digest, CronTrigger(hour=hour, minute=minute, timezone=d.timezone)),
        }
        for name, (work, trigger) in jobs.items():
            if first:
                # The interval jobs start at once; the digest waits for its time, unless
                # the last one due was never written (the daemon was down): then at once.
                start = {} if name == "digest" and not missed else {"next_run_time": wall}
                self.scheduler.add_job(self._job(name, work), trigger, id=name, name=name, **start)
            else:
                self.scheduler.reschedule_job(name, trigger=trigger)

    def _job(self, name: str, work: Callable[[], str | None]) -> Callable[[], None]:
        """`work` as a scheduled job: its failure logged, never raised into the
        scheduler, and its outcome (ok, or failed with one line) recorded for
        `status`. `work` returns a problem it went on past (a configured folder
        that is missing), which counts as a failure too."""

        def run() -> None:
            if self.stopping.is_set():
                return
            self._idle.clear()
            started = time.monotonic()
            self._busy = (name, started)
            problem: str | None = None
            try:
                self._apply_pending()
                problem = work()
            except StoreError as e:
                # Disk full, read-only, I/O: nothing half-written; the job runs again
                # next time, and the watcher forgets what it saw so nothing is skipped.
                log.error("job %s stopped: %s", name, e)
                self.notifier.status(f"error: {e}")
                self.watcher = self._new_watcher(self.config)
                problem = str(e)
            except Exception as e:  # a job's failure is logged; the schedule goes on
                log.exception("job %s failed", name)
                if name == "scan":  # files handed on but maybe not stored: read them again
                    self.watcher = self._new_watcher(self.config)
                problem = one_line(f"{type(e).__name__}: {e}")
            finally:
                self._busy = None
                self._record(name, problem, time.monotonic() - started)
                self._idle.set()

        return run

    def _record(self, name: str, problem: str | None, seconds: float) -> None:
        """The job's outcome in service_state, for `status`; a store that cannot take
        it (disk full) leaves the last one, and the job's age says the rest."""
        now = self.clock()
        outcome = JobOutcome(format_time(now), problem is None, problem, seconds)
        try:
            self.store.state.write(
                {f"job_{name}": outcome.to_json(), "index": self._index_reach()}, now
            )
        except StoreError as e:
            log.warning("job %s: its outcome could not be recorded: %s", name, e)

    def _index_reach(self) -> str:
        """The index as `status` shows it; logged when it misses part of the window."""
        ingester = self.poller.ingester
        assert isinstance(ingester, Ingester)  # the daemon's poller stores what it polls
        index = ingester.index
        since = (self.store.articles.unit_seen_at(index.floor) or "") if index.floor else ""
        window = self.config.clusters.window_days
        if since != self._short_since and (short := short_reach(since, window, self.clock())):
            self._short_since = since
            log.warning("%s", short)
        return index_record(index.size, since, window)

    def _apply_pending(self) -> None:
        config, self._pending = self._pending, None
        if config is None:
            return
        self.config = config
        old = self.poller.ingester
        assert isinstance(old, Ingester)
        self.poller.close()
        # The index in memory is kept: it depends on the database, not the config.
        ingester = Ingester(self.store, config, index=old.index)
        self.poller = Poller(self.store, config, ingester, self.stopping, self.clock)
        _make_owned_folders(config)
        self.watcher.configure(
            config.folders, config.ingest.extensions, config.ingest.max_file_bytes
        )
        sync_config_feeds(self.store, config.feeds.urls, self.clock())

    # -- the jobs --------------------------------------------------------------------------

    def _tick(self) -> str | None:
        """Poll due feeds, a batch at a time, each at most once, within the tick budget."""
        d = self.config.daemon
        started = time.monotonic()
        deadline = started + d.tick_budget_seconds
        polled: set[int] = set()
        counts = {"ingested": 0, "error": 0, "new": 0}
        while not self.stopping.is_set() and time.monotonic() < deadline:
            now = self.clock()
            batch = self.store.feeds.due(now, d.batch_size, exclude=polled)
            if not batch:
                break
            due = self.store.feeds.count_due(now, exclude=polled)
            self.notifier.status(f"polling {len(batch)} of {due} due feeds")
            for outcome in self.poller.poll(batch):
                polled.add(outcome.source_id)
                counts["error" if outcome.status in ("error", "gone") else "ingested"] += 1
                counts["new"] += outcome.new
            polled.update(f.id for f in batch)
        summary = (
            f"{counted(len(polled), 'feed')} polled, {counted(counts['new'], 'new article')}, "
            f"{counted(counts['error'], 'error')} "
            f"in {time.monotonic() - started:.1f} s"
        )
        if polled:
            log.info("tick: %s", summary)
        now = self.clock()
        if counts["new"]:
            write_stories_feed(self.store, self.config, now)
        self.store.state.write({"last_tick_at": format_time(now), "last_tick": summary}, now)
        self.notifier.status(f"idle; last tick: {summary}")
        return None  # a failing feed is that feed's problem (status lists them), not the tick's

    def _scan(self) -> str | None:
        """Ingest new and changed files of the configured folders; a configured folder
        that cannot be read is the scan's problem (a bad file is that file's)."""
        new = failed = 0
        with closing(self.poller.ingester.ingest(self.watcher.scan())) as outcomes:
            for outcome in outcomes:
                if outcome.status in ("new", "updated"):
                    new += 1
                    if new % 100 == 0:
                        self.notifier.status(f"scanning folders: {new} files ingested")
                elif outcome.status == "failed":
                    failed += 1
                    log.warning("file %s: %s", outcome.location, outcome.error)
                if self.stopping.is_set():
                    break
        if new or failed:
            log.info("scan: %d files ingested, %d failed", new, failed)
        now = self.clock()
        if new:
            write_stories_feed(self.store, self.config, now)
        self.store.state.write({"last_scan_at": format_time(now)}, now)
        missing = self.watcher.failing_folders
        if missing:
            return "; ".join(f"{e.location}: {e.reason}" for e in missing)
        return None

    def _digest(self) -> str | None:
        """The digest last due (of the local day before): files, stories feed, mail."""
        d = self.config.daemon
        _, day = digest_due(self.clock(), d.digest_time, d.timezone)
        written = publish_day(self.store, self.config, day)
        log.info("digest written: %s", ", ".join(str(p) for p in written))
        now = self.clock()
        self.store.state.write({"last_digest_at": format_time(now)}, now)
        return None


def _make_owned_folders(config: Config) -> None:
    """Create the configured folders that lie in the service's state directory."""
    for folder in config.folders:
        if owned_by_service(folder):
            folder.mkdir(parents=True, exist_ok=True)
