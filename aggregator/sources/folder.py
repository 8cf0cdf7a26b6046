"""Folder source: find article files under the given roots and read them safely.

What it decides:

* **Which files.** Regular files with a known extension (`.txt`, `.md`,
  `.markdown`, `.html`, `.htm` by default), found by walking each root in
  sorted order. Hidden files and folders (a leading dot) are skipped. Symbolic
  links to folders are not followed (no loops, no escaping the root); a
  symbolic link to a file is read only when its target lies under the same
  root, otherwise it is an error. FIFOs, sockets and devices are errors, never
  opened in a blocking way.
* **Which source.** The folder a file sits in is its source (a folder per
  outlet is the natural layout), so the same file reached through different
  roots is still one article, and the boilerplate guard works per folder.
* **Identity.** The resolved absolute path; an edited file keeps its identity
  and becomes a new version of the same article.
* **Limits.** Files over `max_file_bytes` are refused before they are read;
  the read itself stops at the cap, so a file that grows meanwhile cannot make
  us read more.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator.errors import ExtractError, SourceError
from aggregator.model import MEDIA_TYPES, RawDocument


@dataclass(frozen=True, slots=True)
class FileTask:
    """A file found under a root, not yet read."""

    path: Path  # resolved
    shown: Path  # as found under the root, for messages


def discover(roots: Sequence[Path], extensions: Sequence[str]) -> Iterator[FileTask | SourceError]:
    """Files to read under `roots`, in a stable order, and errors for unusable ones."""
    wanted = {e.lower() for e in extensions}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            yield SourceError(str(root), "no such file or folder")
            continue
        resolved_root = root.resolve()
        if resolved_root.is_file() or not resolved_root.is_dir():
            yield from _check(root, resolved_root.parent, wanted, explicit=True)
            continue
        for folder, dirs, files in os.walk(resolved_root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield from _check(Path(folder) / name, resolved_root, wanted, explicit=False)


def _check(
    path: Path, root: Path, wanted: set[str], explicit: bool
) -> Iterator[FileTask | SourceError]:
    if path.suffix.lower() not in wanted:
        if explicit:
            yield SourceError(str(path), f"unsupported file type {path.suffix or '(none)'!r}")
        return
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        yield SourceError(
            str(path), f"cannot resolve: {e.strerror if isinstance(e, OSError) else e}"
        )
        return
    if not explicit and path.is_symlink() and not target.is_relative_to(root):
        yield SourceError(str(path), f"symlink points outside {root}")
        return
    yield FileTask(target, path)


def read_file(task: FileTask, max_bytes: int) -> RawDocument:
    """Read one file, refusing anything that is not a regular file within the size cap."""
    shown = str(task.shown)
    try:
        fd = os.open(task.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as e:
        raise SourceError(shown, f"cannot open: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(shown, "not a regular file")
        if info.st_size > max_bytes:
            raise SourceError(
                shown, f"file is {_mib(info.st_size)}, over the {_mib(max_bytes)} size cap"
            )
        if info.st_size == 0:
            raise ExtractError(shown, "empty file")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        content = b"".join(chunks)
    except OSError as e:
        raise SourceError(shown, f"cannot read: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(content) > max_bytes:
        raise SourceError(shown, f"file grew over the {_mib(max_bytes)} size cap while read")
    folder = task.path.parent
    return RawDocument(
        source_kind="folder",
        source_location=str(folder),
        source_name=folder.name or str(folder),
        identity=str(task.path),
        location=str(task.path),
        media_type=MEDIA_TYPES[task.path.suffix.lower()],
        content=content,
        modified_at=datetime.fromtimestamp(info.st_mtime, UTC),
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
