"""Service: what the daemon needs from the operating system, and nothing else.

* **The notify protocol** spoken directly: one datagram per message to the
  AF_UNIX socket named by `NOTIFY_SOCKET` (a path, or `@name` in the
  abstract namespace), as `KEY=value` lines. No libsystemd: the protocol is
  a dozen lines, and without the variable every call is a no-op, so the same
  daemon runs under systemd, in a terminal and in the tests.
* **The watchdog interval** comes from `WATCHDOG_USEC` (and `WATCHDOG_PID`,
  when set, must be us); the daemon pings at half of it.
* **One daemon per database**: an exclusive `flock` on `DATABASE.lock`. The
  kernel drops it when the process ends, however it ends (`kill -9`
  included), so a crash never leaves a stale lock to clean up by hand.
* **Folders the service owns**: systemd names the unit's state directory in
  `STATE_DIRECTORY`; configured folders inside it (the inbox) are created at
  start, like the digest folder. Any other configured folder must exist: a
  missing one is a typo to report, not a folder to make.
* **Root runs admin commands as the database's owner.** The service runs as
  the `aggregator` user; `sudo aggregator sources add URL` would otherwise
  leave root-owned `-wal`/`-shm`/lock files the service cannot open. Run as
  root on a database (or database folder) owned by another user, a command
  becomes that user before it opens the database (`run_as_owner`).
* **Logs** go to stderr. Under journald (`JOURNAL_STREAM` set) each line
  carries a `<N>` syslog priority prefix and no timestamp, so `journalctl -p
  warning` filters it; in a terminal lines get a time instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import socket
import sys
from pathlib import Path
from typing import IO, Protocol

from aggregator.config import Database
from aggregator.errors import AlreadyRunningError, StoreError
from aggregator.storage.postgres import PostgresDaemonLock


class Notifier:
    """Sends sd_notify messages; silent when not started by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and ours else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> None:
        if not self.address:
            return
        message = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as e:
            # The supervisor went away; the daemon must not die of it.
            logging.getLogger(__name__).debug("notify failed: %s", e)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        self.send("RELOADING=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")


class DaemonLock(Protocol):
    """One daemon per database: held for the daemon's lifetime, seen by `status`."""

    @property
    def path(self) -> object:
        """Where the lock is, as the log shows it."""
        ...

    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def held_elsewhere(self) -> int | None: ...


def daemon_lock(database: Database) -> DaemonLock:
    """The lock of this database: a file beside a SQLite file, an advisory lock in
    PostgreSQL (`storage.postgres.PostgresDaemonLock`)."""
    if isinstance(database, Path):
        return DatabaseLock(database)
    return PostgresDaemonLock(database)


class DatabaseLock:
    """An exclusive lock beside the database, held for the daemon's lifetime."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if not self.path.parent.is_dir():
            raise StoreError(
                f"database {self.path.with_suffix('')}: folder {self.path.parent} "
                "does not exist (create it first)"
            )
        handle = self.path.open("a+", encoding="utf-8")  # held open: it is the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunningError(
                f"{self.path.with_suffix('')}: already served by a running daemon "
                f"(pid {holder}); stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def held_elsewhere(self) -> int | None:
        """The pid of a running daemon holding the lock, or None (for `status`)."""
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None


_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 2 if record.levelno > logging.ERROR else 6)
        text = super().format(record)
        # One journal entry per record: continuation lines keep the prefix.
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def configure_logging(level: int, stream: IO[str] | None = None) -> None:
    """stderr logging for the daemon: journald priorities, or times in a terminal."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job start at INFO, and every tick skipped while a
    # long one runs as a warning; the daemon reports long jobs itself.
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))
    # httpx logs every request at INFO; the poller reports per feed instead.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    # trafilatura logs ERROR for pages it cannot extract; the full-text stage
    # reports those itself (and keeps the summary).
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def owned_by_service(path: Path) -> bool:
    """Whether `path` lies inside the state directory systemd gave the service."""
    roots = [Path(p) for p in os.environ.get("STATE_DIRECTORY", "").split(":") if p]
    return any(path.is_relative_to(root) for root in roots)


def run_as_owner(database: Database) -> str | None:
    """Become the owner of `database` (or of its folder, before it exists) when run
    as root and that owner is not root; the user's name (or uid), or None if
    nothing changed. Irreversible for the process, which is what is wanted: every
    file the command creates beside the database is then the service's. A
    PostgreSQL database has no file here: nothing changes."""
    if os.geteuid() != 0 or not isinstance(database, Path):
        return None
    for candidate in (database, database.parent):
        try:
            info = candidate.stat()
        except OSError:
            continue
        if info.st_uid == 0:
            return None
        os.setgroups([])
        os.setgid(info.st_gid)
        os.setuid(info.st_uid)
        try:
            name = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            name = str(info.st_uid)
        logging.getLogger(__name__).info("running as %s, the owner of %s", name, candidate)
        return name
    return None
