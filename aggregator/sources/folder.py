"""Folder source: find article files under the given roots and read them safely.

What it decides:

* **Which files.** Regular files with a known extension (`.txt`, `.md`,
  `.markdown`, `.html`, `.htm` by default), found by walking each root
  depth-first in sorted order, one folder listing at a time (a folder of
  100,000 files costs one listing and no per-file system call until it is
  read). Hidden files and folders (a leading dot) are skipped. Symbolic links
  to folders are not followed, so a loop through symlinks (`a/b -> ..`) ends
  the walk instead of repeating it, and nothing outside the root is reached
  through one; a folder reached twice anyway (a bind mount, a second root
  inside the first) is walked once, and a file reached twice (through a
  symlink, or from two roots) is yielded once. A symbolic link to a file is
  read only when its target lies under the same root, otherwise it is an
  error; a dangling or looping link is an error. FIFOs, sockets and devices
  are errors, never opened in a blocking way.
* **What is an error.** Every unusable file or folder is one `SourceError`
  naming it, and the walk goes on: a folder that cannot be listed (permission
  denied), a file that cannot be opened, or one deleted between the walk and
  the read. Nothing from the file system escapes as another exception type.
* **Which source.** The folder a file sits in is its source (a folder per
  outlet is the natural layout), so the same file reached through different
  roots is still one article, and the boilerplate guard works per folder.
* **Identity.** The resolved absolute path; an edited file keeps its identity
  and becomes a new version of the same article.
* **A consistent snapshot.** The file's size, modification and change times
  are taken before and after the read, and the bytes must be as many as the
  size says; if anything moved, the read starts again (up to
  `READ_ATTEMPTS` times, then a `SourceError` says it kept changing). So an
  append or an in-place rewrite during the read never yields half of one
  version and half of another. The one case no reader can see is a rewrite to
  the same size within one tick of the file system's clock; `FolderWatcher`
  reads such recently changed files again on its next scan. Writers that
  rename a finished (hidden) temporary file into place are always safe: the
  open file stays the old version.
* **Names.** A path is stored and shown as text any encoder accepts: bytes of
  a file name that are not UTF-8 (which Python keeps as lone surrogates, and
  SQLite and a UTF-8 terminal refuse) are written as `\\xNN` escapes. The
  file itself is still read by its real name.
* **Limits.** Files over `max_file_bytes` are refused before they are read;
  the read itself stops at the cap, so a file that grows meanwhile cannot make
  us read more.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator.errors import ExtractError, SourceError
from aggregator.model import MEDIA_TYPES, RawDocument

READ_ATTEMPTS = 3
READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileTask:
    """A file found under a root, not yet read."""

    path: Path  # resolved
    shown: Path  # as found under the root, for messages


def discover(roots: Sequence[Path], extensions: Sequence[str]) -> Iterator[FileTask | SourceError]:
    """Files to read under `roots`, in a stable order, and errors for unusable ones.

    Lazy: it lists one folder at a time, as the caller asks for more.
    """
    wanted = {e.lower() for e in extensions}
    walked: set[tuple[int, int]] = set()  # (device, inode) of every folder listed
    found: set[Path] = set()  # every file yielded
    for root in roots:
        resolved_root = _resolve(root)
        if isinstance(resolved_root, str):  # named absolute, as the files found are
            yield SourceError(text_path(Path(os.path.normpath(root.absolute()))), resolved_root)
            continue
        if resolved_root.is_dir():
            items = _walk(resolved_root, wanted, walked)
        else:
            items = _check(root, resolved_root.parent, wanted, explicit=True)
        for item in items:
            if isinstance(item, FileTask):
                if item.path in found:
                    continue
                found.add(item.path)
            yield item


def _walk(
    root: Path, wanted: set[str], walked: set[tuple[int, int]]
) -> Iterator[FileTask | SourceError]:
    """Depth first, files before subfolders, each in name order (as `os.walk` would)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.lstat()
            key = (info.st_dev, info.st_ino)
            if key in walked or not stat.S_ISDIR(info.st_mode):
                continue  # walked already, or no longer a folder (replaced by a symlink)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except FileNotFoundError:
            if folder != root:
                continue  # removed while we walked: nothing there to read
            yield SourceError(text_path(folder), "no such file or folder")
            continue
        except OSError as e:
            yield SourceError(text_path(folder), f"cannot list folder: {e.strerror}")
            continue
        walked.add(key)
        subfolders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                subfolders.append(Path(entry.path))
                continue
            path = Path(entry.path)
            if path.suffix.lower() not in wanted:
                continue
            try:
                is_link = entry.is_symlink()
            except OSError as e:
                yield SourceError(text_path(path), f"cannot stat: {e.strerror}")
                continue
            if is_link:
                yield from _check(path, root, wanted, explicit=False)
            else:
                # Listed from a resolved folder without following any link: resolved already.
                yield FileTask(path, path)
        stack.extend(reversed(subfolders))


def _check(
    path: Path, root: Path, wanted: set[str], explicit: bool
) -> Iterator[FileTask | SourceError]:
    """An explicit file, or a symlink met in a walk."""
    if path.suffix.lower() not in wanted:
        if explicit:
            yield SourceError(text_path(path), f"unsupported file type {path.suffix or '(none)'!r}")
        return
    target = _resolve(path)
    if isinstance(target, str):
        yield SourceError(text_path(path), target)
        return
    if not explicit:
        if target.is_dir():
            return  # a symlinked folder: not followed
        if not target.is_relative_to(root):
            yield SourceError(text_path(path), f"symlink points outside {text_path(root)}")
            return
    yield FileTask(target, path)


def _resolve(path: Path) -> Path | str:
    """The resolved path, or why there is none."""
    try:
        return path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        return "symlink loop; not followed"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop; not followed"
        if e.errno == errno.ENOENT:
            if path.is_symlink():
                return "broken symlink: its target does not exist"
            return "no such file or folder"
        return f"cannot resolve: {e.strerror}"


def text_path(path: Path) -> str:
    """`path` as text: undecodable bytes of its name as `\\xNN` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_file(task: FileTask, max_bytes: int) -> RawDocument:
    """Read one file, refusing anything that is not a regular file within the size cap."""
    return read_snapshot(task, max_bytes)[0]


def read_snapshot(task: FileTask, max_bytes: int) -> tuple[RawDocument, os.stat_result]:
    """`read_file`, and the file's status that held from before the read to after it."""
    shown = text_path(task.shown)
    try:
        fd = os.open(task.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise SourceError(shown, "deleted before it could be read") from e
    except OSError as e:
        raise SourceError(shown, f"cannot open: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(shown, "not a regular file")
        for _ in range(READ_ATTEMPTS):
            if info.st_size > max_bytes:
                raise SourceError(
                    shown, f"file is {_mib(info.st_size)}, over the {_mib(max_bytes)} size cap"
                )
            if info.st_size == 0:
                raise ExtractError(shown, "empty file")
            content = _read_all(fd, max_bytes + 1)
            after = os.fstat(fd)
            if _unchanged(info, after) and len(content) == after.st_size:
                break
            info = after
        else:
            raise SourceError(
                shown, f"kept changing while being read ({READ_ATTEMPTS} attempts); not stored"
            )
    except OSError as e:
        raise SourceError(shown, f"cannot read: {e.strerror}") from e
    finally:
        os.close(fd)
    folder = task.path.parent
    document = RawDocument(
        source_kind="folder",
        source_location=text_path(folder),
        source_name=text_path(Path(folder.name)) if folder.name else text_path(folder),
        identity=text_path(task.path),
        location=text_path(task.path),
        media_type=MEDIA_TYPES[task.path.suffix.lower()],
        content=content,
        modified_at=datetime.fromtimestamp(info.st_mtime, UTC),
    )
    return document, info


def _read_all(fd: int, limit: int) -> bytes:
    """At most `limit` bytes from the start of the file."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
