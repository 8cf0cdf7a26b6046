"""Watch: re-scan the configured folders and hand on what is new or changed.

What it decides:

* **What changed** is judged by the file's status, as `make` and rsync do but
  stricter: device, inode, size, modification and change time (nanoseconds).
  A scan of 100,000 unchanged files costs one listing per folder and 100,000
  `stat` calls, and no reads. The inode and the change time catch what size
  and modification time miss: a file replaced by one with a preserved time
  (`cp -p`, `rsync -t`, an archive), and a permission fixed with `chmod`. The
  first scan after a start reads everything; the pipeline then skips unchanged
  files by their content hash, so a restart costs time, never duplicates.
* **A file that changes while it is read** never yields a mixture: the read
  itself retries until the file holds still (see `aggregator.sources.folder`),
  and the status recorded is the one that held during the read. If it kept
  changing, the error is reported and the file is read again on the next scan.
  A file whose modification or change time lies within `racy_ns` (2 s) of the
  moment its read began is not recorded as seen either, so it is read again on
  the next scan: on a file system whose clock ticks coarsely (FAT: 2 s), a
  write just after our read can leave every field of the status as it was
  (git calls this the racily clean index entry). Re-reading such a file costs
  a read and a hash; the pipeline stores nothing for unchanged bytes.
* **A file that fails** (unreadable, too large, not an article) is reported
  once, not on every scan, and is not read again until its status changes.
  When the problem goes away and comes back, it is reported again.
* **A file deleted** between the walk and the read is forgotten without a
  report: there is nothing left to ingest or to fix. A file put back later is
  read again.
* **A scan that is not finished** (its consumer raised, or stopped early)
  forgets the status of every document it had handed on, since the consumer
  may not have stored them: the next scan reads them again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Sequence
from pathlib import Path

from aggregator.errors import SourceError
from aggregator.model import RawDocument
from aggregator.sources.folder import discover, read_snapshot, text_path

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int, int, int]  # (device, inode, size, mtime_ns, ctime_ns)


def _stamp(info: os.stat_result) -> _Stamp:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _stat(path: Path) -> os.stat_result | None:
    """The file's status, or None when it is gone (or unreachable)."""
    try:
        return path.stat()
    except OSError:
        return None


class FolderWatcher:
    """Yields the documents of configured folders that are new or changed since the last scan."""

    racy_ns = 2_000_000_000
    """A file changed less than this before its read began is read again on the next scan."""

    def __init__(self, folders: Sequence[Path], extensions: Sequence[str], max_bytes: int) -> None:
        self.folders = tuple(folders)
        self.extensions = tuple(extensions)
        self.max_bytes = max_bytes
        self._seen: dict[Path, _Stamp] = {}
        self._reported: dict[str, str] = {}  # location -> reason last reported
        # The configured folders the last scan could not read (reported once, but
        # a problem of every scan until it goes: the daemon's status says so).
        self.failing_folders: list[SourceError] = []

    def configure(self, folders: Sequence[Path], extensions: Sequence[str], max_bytes: int) -> None:
        """New settings (a reload); what was seen in folders still watched stays seen."""
        self.folders, self.extensions, self.max_bytes = tuple(folders), tuple(extensions), max_bytes

    def scan(self) -> Generator[RawDocument | SourceError, None, None]:
        """Documents to ingest, and errors not reported before."""
        if not self.folders:
            return
        present: set[Path] = set()
        failing: set[str] = set()  # locations that failed in this scan
        configured = {text_path(folder) for folder in self.folders}
        self.failing_folders = []
        handed_on: list[Path] = []
        finished = False
        try:
            for task in discover(self.folders, self.extensions):
                if isinstance(task, SourceError):
                    failing.add(task.location)
                    if task.location in configured:
                        self.failing_folders.append(task)
                    if self._first_report(task):
                        yield task
                    continue
                info = _stat(task.path)
                if info is None:
                    continue  # gone since the walk: forgotten below
                present.add(task.path)
                stamp = _stamp(info)
                if self._seen.get(task.path) == stamp:
                    continue
                began = time.time_ns()
                try:
                    document, held = read_snapshot(task, self.max_bytes)
                except SourceError as e:
                    now = _stat(task.path)
                    if now is None:
                        log.debug("%s: deleted before it could be read", task.shown)
                        present.discard(task.path)
                        continue
                    # A lasting problem is not retried until the file changes; a file
                    # that changed during the attempt is read again next time.
                    self._record(task.path, now if _stamp(now) == stamp else None, began)
                    failing.add(e.location)
                    if self._first_report(e):
                        yield e
                    continue
                self._record(task.path, held, began)
                handed_on.append(task.path)
                yield document
            finished = True
        finally:
            if not finished:
                for path in handed_on:
                    self._seen.pop(path, None)
        # Forget deleted files, so that one put back is read again; and the reports
        # of problems that went away, so that one coming back is reported again.
        for gone in set(self._seen) - present:
            del self._seen[gone]
        self._reported = {k: v for k, v in self._reported.items() if k in failing}

    def _record(self, path: Path, info: os.stat_result | None, began: int) -> None:
        """Remember the status a read saw, unless it may hide a later change."""
        if info is None or max(info.st_mtime_ns, info.st_ctime_ns) > began - self.racy_ns:
            self._seen.pop(path, None)
        else:
            self._seen[path] = _stamp(info)

    def _first_report(self, error: SourceError) -> bool:
        if self._reported.get(error.location) == error.reason:
            return False
        self._reported[error.location] = error.reason
        return True
