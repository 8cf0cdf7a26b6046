"""Folder faults (issue 6, part 5): each fault injected, its outcome asserted.

Both ways in are exercised: the one-shot `aggregator ingest` (discover, then
read_file for each file, then the Ingester; through the real command, in
process with `CliRunner` where a fault must land between two of its steps) and
the daemon's `FolderWatcher.scan()`.

What is proven:

1. **A file that changes while it is read** (rewritten in place, appended to,
   or never still; injected deterministically by rewriting the file from
   inside `os.read` after its first chunk): what is stored is exactly one
   whole version, byte for byte (its SHA-256 is the stored content hash),
   never a mixture; a file that never holds still is one error and the rest
   are ingested; the watcher reads the final content on its next scan, also
   when a write lands within one tick of a coarse file-system clock and leaves
   the file's status as it was (the "racily clean" case, simulated by freezing
   the status the watcher sees).
2. **A file deleted between the walk and the read**: one line,
   `error: PATH: deleted before it could be read`, the rest ingested, exit
   status 1; the watcher skips it without a report, forgets it, and reads it
   again when it is put back.
3. **Permission denied**: on a file (`cannot open: Permission denied`) and on a
   folder (`cannot list folder: Permission denied`; before, `os.walk`
   skipped an unreadable folder without a word), the rest ingested, reported
   once by the watcher and picked up once fixed. The suite runs as root here,
   where `chmod 000` denies nothing, so the refusal is simulated by making
   `os.open` and `os.scandir` raise `PermissionError` for the chosen paths;
   `test_real_chmod_000_is_refused_by_the_kernel` then checks the same
   messages against the real kernel: as root, in a child process that drops
   its effective uid to `nobody` (`os.seteuid`: the interpreter, which lives
   under `/root`, is loaded before the drop), otherwise directly.
4. **Loops through symlinks** (`a/b -> ..`, `a/here -> .`, a link to the root,
   deep links up, a link to a folder outside the root, a link loop named
   `*.txt`, file links pointing at each other or at themselves, a dangling
   one): the walk ends at once, every real file is found exactly once, no
   symlinked folder is followed, each bad file link is one clear error (an
   explicit loop root used to escape as a `RuntimeError`); a folder reached
   twice through a bind mount (in a private mount namespace, when the machine
   allows one) is walked once.
5. **Many files in one folder**: each of 5,000 files is discovered, scanned and
   stored exactly once; `discover` is lazy (it lists one folder at a time);
   `aggregator ingest` draws a progress bar when stderr is a terminal (a
   pseudo-terminal here) and otherwise prints one line per stored file.
   Linearity up to 100,000 files is measured by `bench/folder_scale.py`,
   not timed here.

Also: a file whose name is not UTF-8 is stored under an escaped name and read by
its real one (it used to end the whole ingest); a scan whose consumer stops
early (the daemon's ingest failing mid-scan) hands on its documents again on
the next scan, and an unchanged file is never opened twice.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

import aggregator.cli.main as cli_module
from aggregator.config import Config
from aggregator.errors import SourceError
from aggregator.model import RawDocument
from aggregator.service import watch
from aggregator.service.watch import FolderWatcher
from aggregator.sources import folder
from aggregator.sources.folder import FileTask, discover, read_file, read_snapshot
from tests.conftest import AGGREGATOR, ingest

WORDS = (
    "minister council harbour vote market storm court rail union price river summit grain "
    "border police energy school doctor budget strike coast airport village election"
).split()
EXTENSIONS = (".txt", ".md", ".html")
MAX_BYTES = 10 * 1024 * 1024
HOUR = 3600
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_aggregator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DB", raising=False)
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)


def _article(n: int, marker: str = "alpha") -> bytes:
    """A small article; versions of one article differ only in `marker` (same length)."""
    rng = random.Random(n)
    body = " ".join(rng.choice(WORDS) for _ in range(40)).capitalize()
    return f"Report {n} {marker}\n{body} {marker}.\n".encode()


def _age(path: Path, seconds: int = HOUR) -> None:
    """Date a file's modification time back, as for a file written long ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def _folder(parent: Path, count: int, name: str = "news") -> Path:
    root = parent / name
    root.mkdir(parents=True)
    for n in range(count):
        (root / f"a{n:05d}.txt").write_bytes(_article(n))
    return root.resolve()


def _stored(config: Config) -> dict[str, str]:
    """{location: content hash} of every stored article."""
    with closing(sqlite3.connect(config.database)) as conn:
        return dict(conn.execute("SELECT location, content_hash FROM articles").fetchall())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _docs(items: Sequence[RawDocument | SourceError]) -> list[RawDocument]:
    return [item for item in items if isinstance(item, RawDocument)]


def _errors(items: Sequence[RawDocument | SourceError | FileTask]) -> dict[str, str]:
    """{file or folder name: reason} of the errors among `items`."""
    return {Path(i.location).name: i.reason for i in items if isinstance(i, SourceError)}


def _watcher(root: Path, racy_ns: int | None = None) -> FolderWatcher:
    watcher = FolderWatcher([root], EXTENSIONS, MAX_BYTES)
    if racy_ns is not None:
        watcher.racy_ns = racy_ns
    return watcher


def _invoke(tmp_path: Path, *args: str | Path) -> Result:
    """`aggregator ingest ARGS` in this process, against tmp_path/test.db."""
    config = tmp_path / "aggregator.toml"
    config.write_text('database = "test.db"\nfolders = []\n', encoding="utf-8")
    return CliRunner().invoke(
        cli_module.cli, ["--config", str(config), "ingest", *(str(a) for a in args)]
    )


def _run(tmp_path: Path, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The real console script, `aggregator ingest ARGS`, against tmp_path/test.db."""
    config = tmp_path / "aggregator.toml"
    config.write_text('database = "test.db"\nfolders = []\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "ingest", *(str(a) for a in args)],
        text=True,
        timeout=120,
        env=env,
        check=False,
        **kwargs,
    )


# -- 1. a file that changes while it is read ------------------------------------------------


class Rewriter:
    """Rewrites `target` from inside `os.read`, after the first chunk of each pass over it.

    Reads go 16 bytes at a time, so a reader that trusted one pass would get the
    first chunk of one version and the rest of another.
    """

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, target: Path, change: Callable[[int], bytes | None]
    ) -> None:
        self.target = target
        self.inode = target.stat().st_ino
        self.change = change  # write number -> bytes to write in place (None: stop)
        self.chunks: list[bytes] = []
        self.writes = 0
        self._read = os.read
        monkeypatch.setattr(folder, "READ_CHUNK", 16)
        monkeypatch.setattr(os, "read", self.read)

    def read(self, fd: int, n: int) -> bytes:
        data = self._read(fd, n)
        if data and os.fstat(fd).st_ino == self.inode:
            self.chunks.append(data)
            first_chunk = os.lseek(fd, 0, os.SEEK_CUR) == len(data)
            content = self.change(self.writes) if first_chunk else None
            if content is not None:
                self.writes += 1
                with self.target.open("r+b") as f:
                    f.write(content)
                    f.truncate()
        return data


def test_a_file_rewritten_during_the_read_is_stored_whole_as_the_new_version(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 3)
    target = root / "a00001.txt"
    old, new = _article(1, "alpha"), _article(1, "omega")
    assert len(old) == len(new), "the same size: only the times can tell the versions apart"
    _age(target)
    rewriter = Rewriter(monkeypatch, target, lambda n: new if n == 0 else None)
    outcomes = ingest(config, root)
    assert rewriter.writes == 1
    # A single pass would have read a mixture: the start of one version, the rest of another.
    assert rewriter.chunks[0] == old[:16] and rewriter.chunks[1] == new[16:32]
    assert [o.status for o in outcomes] == ["new"] * 3
    assert _stored(config)[str(target)] == _sha(new)


def test_a_file_appended_to_during_the_read_is_stored_with_what_was_appended(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 2)
    target = root / "a00000.txt"
    grown = _article(0) + b"\nA correction was appended while the file was being read.\n"
    Rewriter(monkeypatch, target, lambda n: grown if n == 0 else None)
    outcomes = ingest(config, root)
    assert [o.status for o in outcomes] == ["new", "new"]
    assert _stored(config)[str(target)] == _sha(grown)


KEPT_CHANGING = "kept changing while being read (3 attempts); not stored"


def _ever_growing(n: int) -> bytes:
    return _article(0) + b"More text.\n" * (n + 1)


def test_a_file_that_never_holds_still_is_one_error_and_the_rest_are_ingested(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 3)
    target = root / "a00000.txt"
    Rewriter(monkeypatch, target, _ever_growing)
    outcomes = ingest(config, root)
    failed = [o for o in outcomes if o.status == "failed"]
    assert [(o.location, o.error) for o in failed] == [
        (str(target), "kept changing while being read (3 attempts); not stored")
    ]
    assert sorted(_stored(config)) == [str(root / "a00001.txt"), str(root / "a00002.txt")]


def test_the_command_reports_a_file_that_never_holds_still_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 3)
    target = root / "a00002.txt"
    Rewriter(monkeypatch, target, _ever_growing)
    result = _invoke(tmp_path, root)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {target}: kept changing while being read (3 attempts); not stored\n"
    )
    assert result.stdout.splitlines()[-1].startswith("2 new, 0 updated, 0 unchanged, 1 failed;")


def test_the_watcher_reads_the_final_content_on_the_scan_after_a_file_kept_changing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 2)
    target = root / "a00000.txt"
    watcher = _watcher(root)
    with monkeypatch.context() as patch:
        Rewriter(patch, target, _ever_growing)
        first = list(watcher.scan())
    assert _errors(first) == {
        target.name: "kept changing while being read (3 attempts); not stored"
    }
    assert [d.location for d in _docs(first)] == [str(root / "a00001.txt")]
    final = target.read_bytes()
    second = list(watcher.scan())
    assert [(d.location, d.content) for d in _docs(second) if d.location == str(target)] == [
        (str(target), final)
    ]
    assert _errors(second) == {}


def test_the_watcher_stores_one_whole_version_of_a_file_rewritten_during_its_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 1)
    target = root / "a00000.txt"
    _age(target)
    new = _article(0, "omega")
    watcher = _watcher(root, racy_ns=0)
    with monkeypatch.context() as patch:
        Rewriter(patch, target, lambda n: new if n == 0 else None)
        [document] = _docs(list(watcher.scan()))
    assert document.content == new
    # It changed after the read began, so one more read makes sure no write hid in that tick.
    assert [d.content for d in _docs(list(watcher.scan()))] == [new]
    assert list(watcher.scan()) == []


def test_a_file_replaced_between_the_stat_and_the_read_is_read_as_the_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 1)
    target = root / "a00000.txt"
    new = _article(0, "omega")
    real = read_snapshot

    def replace_then_read(task: FileTask, max_bytes: int) -> tuple[RawDocument, os.stat_result]:
        staged = root / ".a00000.txt.tmp"
        staged.write_bytes(new)
        staged.replace(target)  # the way careful writers publish a file
        return real(task, max_bytes)

    watcher = _watcher(root, racy_ns=0)
    with monkeypatch.context() as patch:
        patch.setattr("aggregator.service.watch.read_snapshot", replace_then_read)
        [document] = _docs(list(watcher.scan()))
    assert document.content == new
    assert [d.content for d in _docs(list(watcher.scan()))] == [new]
    assert list(watcher.scan()) == []


@pytest.mark.parametrize(("racy_ns", "caught"), [(0, False), (FolderWatcher.racy_ns, True)])
def test_a_write_within_one_clock_tick_of_the_read_is_caught_by_the_racy_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, racy_ns: int, caught: bool
) -> None:
    """On a coarse clock a write just after the read leaves the status as it was (simulated
    by freezing what the watcher's stat returns); only the racy rule reads the file again."""
    root = _folder(tmp_path, 1)
    target = root / "a00000.txt"
    watcher = _watcher(root, racy_ns)
    [first] = _docs(list(watcher.scan()))
    frozen = target.stat()
    new = _article(0, "omega")
    with target.open("r+b") as f:
        f.write(new)
    monkeypatch.setattr(watch, "_stat", lambda _: frozen)
    second = [d.content for d in _docs(list(watcher.scan()))]
    assert first.content == _article(0)
    assert second == ([new] if caught else [])


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 3)
    watcher = _watcher(root, racy_ns=0)
    assert len(list(watcher.scan())) == 3
    opened: list[str] = []
    real = os.open

    def counting_open(path: str, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    assert list(watcher.scan()) == []
    assert opened == []


def test_a_scan_its_consumer_abandons_hands_on_its_documents_again(tmp_path: Path) -> None:
    """The daemon's ingest fails mid-scan (say the disk is full): what the watcher had handed
    on may not be stored, so the next scan hands it on again."""
    root = _folder(tmp_path, 3)
    watcher = _watcher(root, racy_ns=0)
    scan = watcher.scan()
    first = next(scan)
    assert isinstance(first, RawDocument)
    scan.close()
    assert len(_docs(list(watcher.scan()))) == 3
    assert list(watcher.scan()) == [], "a finished scan is remembered"


# -- 2. a file deleted between the walk and the read ----------------------------------------


def test_a_file_deleted_after_the_walk_is_one_error_line_and_the_rest_are_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path, 3)
    victim = root / "a00001.txt"
    real = discover

    def walk_then_delete(
        roots: Sequence[Path], extensions: Sequence[str]
    ) -> Iterator[FileTask | SourceError]:
        found = list(real(roots, extensions))
        victim.unlink()
        return iter(found)

    monkeypatch.setattr("aggregator.cli.main.discover", walk_then_delete)
    result = _invoke(tmp_path, root)
    assert result.exit_code == 1
    assert result.stderr == f"error: {victim}: deleted before it could be read\n"
    assert result.stdout.splitlines()[-1].startswith("2 new, 0 updated, 0 unchanged, 1 failed;")
    assert isinstance(result.exception, SystemExit), "an exit status, not a crash"


def test_read_file_on_a_deleted_file_raises_a_source_error_naming_it(tmp_path: Path) -> None:
    root = _folder(tmp_path, 1)
    [task] = list(discover([root], EXTENSIONS))
    assert isinstance(task, FileTask)
    task.path.unlink()
    with pytest.raises(SourceError) as caught:
        read_file(task, MAX_BYTES)
    assert str(caught.value) == f"{task.shown}: deleted before it could be read"


@pytest.mark.parametrize("when", ["before the stat", "before the read"])
def test_the_watcher_forgets_a_file_deleted_after_the_walk_and_reads_it_when_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    root = _folder(tmp_path, 3)
    victim = root / "a00001.txt"
    kept = victim.read_bytes()
    watcher = _watcher(root, racy_ns=0)
    if when == "before the stat":
        real_discover = discover

        def delete_after_walk(
            roots: Sequence[Path], extensions: Sequence[str]
        ) -> Iterator[FileTask | SourceError]:
            for item in real_discover(roots, extensions):
                if isinstance(item, FileTask) and item.path == victim:
                    victim.unlink()
                yield item

        patched: Any = delete_after_walk
        name = "discover"
    else:
        real_read = read_snapshot

        def delete_then_read(task: FileTask, max_bytes: int) -> tuple[RawDocument, os.stat_result]:
            if task.path == victim:
                victim.unlink()
            return real_read(task, max_bytes)

        patched, name = delete_then_read, "read_snapshot"
    with monkeypatch.context() as patch:
        patch.setattr(f"aggregator.service.watch.{name}", patched)
        first = list(watcher.scan())
    assert _errors(first) == {}, "nothing to ingest and nothing to fix: no report"
    assert [Path(d.location).name for d in _docs(first)] == ["a00000.txt", "a00002.txt"]
    victim.write_bytes(kept)
    _age(victim)
    assert [d.location for d in _docs(list(watcher.scan()))] == [str(victim)]


def test_the_watcher_reads_again_a_file_deleted_and_put_back_unchanged(tmp_path: Path) -> None:
    root = _folder(tmp_path, 2)
    target = root / "a00000.txt"
    watcher = _watcher(root, racy_ns=0)
    assert len(list(watcher.scan())) == 2
    kept = target.read_bytes()
    target.unlink()
    assert list(watcher.scan()) == []
    target.write_bytes(kept)
    assert [d.location for d in _docs(list(watcher.scan()))] == [str(target)]


# -- 3. permission denied --------------------------------------------------------------------


def _denied(path: str | os.PathLike[str]) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def _deny(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    """Make opening a file or listing a folder among `paths` fail as chmod 000 would."""
    refused = {str(p) for p in paths}
    real_open, real_scandir = os.open, os.scandir

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path) in refused:
            raise _denied(path)
        return real_open(path, flags, *args, **kwargs)

    def scandir(path: Any = ".") -> Any:
        if str(path) in refused:
            raise _denied(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "scandir", scandir)


def _with_locked_parts(parent: Path) -> tuple[Path, Path, Path]:
    """A folder of 3 articles plus a subfolder `locked` of one; (root, file, folder) to lock."""
    root = _folder(parent, 3)
    locked = root / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_bytes(_article(9))
    return root, root / "a00001.txt", locked


DENIED_FILE = "cannot open: Permission denied"
DENIED_FOLDER = "cannot list folder: Permission denied"


def test_permission_denied_on_a_file_and_a_folder_are_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, secret, locked = _with_locked_parts(tmp_path)
    _deny(monkeypatch, secret, locked)
    result = _invoke(tmp_path, root)
    assert result.exit_code == 1
    assert sorted(result.stderr.splitlines()) == [
        f"error: {secret}: {DENIED_FILE}",
        f"error: {locked}: {DENIED_FOLDER}",
    ]
    assert result.stdout.splitlines()[-1].startswith("2 new, 0 updated, 0 unchanged, 2 failed;")


def test_permission_denied_costs_only_the_refused_files(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, secret, locked = _with_locked_parts(tmp_path)
    _deny(monkeypatch, secret, locked)
    outcomes = ingest(config, root)
    assert {(Path(o.location).name, o.error) for o in outcomes if o.status == "failed"} == {
        ("a00001.txt", DENIED_FILE),
        ("locked", DENIED_FOLDER),
    }
    assert sorted(Path(p).name for p in _stored(config)) == ["a00000.txt", "a00002.txt"]


def test_the_watcher_reports_a_refusal_once_and_reads_the_files_once_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, secret, locked = _with_locked_parts(tmp_path)
    watcher = _watcher(root)
    with monkeypatch.context() as patch:
        _deny(patch, secret, locked)
        first = list(watcher.scan())
        second = list(watcher.scan())
    assert _errors(first) == {"a00001.txt": DENIED_FILE, "locked": DENIED_FOLDER}
    assert len(_docs(first)) == 2
    assert _errors(second) == {}, "reported once, not on every scan"
    # chmod changes the file's change time, so the watcher tries it again.
    secret.chmod(0o644)
    names = sorted(Path(d.location).name for d in _docs(list(watcher.scan())))
    assert {"a00001.txt", "inside.txt"} <= set(names)


CHILD = """
import json, os, sys
from pathlib import Path
from aggregator.errors import SourceError
from aggregator.sources.folder import discover, read_file

if os.geteuid() == 0:
    os.setegid(65534)
    os.seteuid(65534)
found = []
for task in discover([Path(sys.argv[1])], [".txt"]):
    if isinstance(task, SourceError):
        found.append([task.location, task.reason])
        continue
    try:
        read_file(task, 1 << 20)
        found.append([str(task.path), "read"])
    except SourceError as e:
        found.append([e.location, e.reason])
print(json.dumps(found))
"""


def test_real_chmod_000_is_refused_by_the_kernel() -> None:
    base = Path(tempfile.mkdtemp(prefix="agg-perm-", dir="/tmp"))  # reachable by nobody
    try:
        base.chmod(0o755)
        root, secret, locked = _with_locked_parts(base)
        for path in (root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        secret.chmod(0o000)
        locked.chmod(0o000)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if result.returncode != 0 and "Operation not permitted" in result.stderr:
            pytest.skip("running as root without the right to change uid")
        assert result.returncode == 0, result.stderr
        assert sorted(map(tuple, json.loads(result.stdout))) == sorted(
            [
                (str(root / "a00000.txt"), "read"),
                (str(secret), DENIED_FILE),
                (str(root / "a00002.txt"), "read"),
                (str(locked), DENIED_FOLDER),
            ]
        )
    finally:
        for path in (base, *base.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base)


# -- 4. loops through symlinks ------------------------------------------------------------------


LOOP_ERRORS = {
    "self.txt": "symlink loop; not followed",
    "ping.txt": "symlink loop; not followed",
    "pong.txt": "symlink loop; not followed",
    "dangling.txt": "broken symlink: its target does not exist",
}


def _loops(tmp_path: Path) -> tuple[Path, list[Path], dict[str, str]]:
    """A root full of symlink loops; (root, its real files, {name: error reason})."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "elsewhere.txt").write_bytes(_article(50))
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "deep" / "x" / "y").mkdir(parents=True)
    files = [root / "a" / "story-a.txt", root / "deep" / "x" / "y" / "story-y.txt"]
    files.append(root / "story.txt")
    for n, path in enumerate(files):
        path.write_bytes(_article(n))
    (root / "a" / "b").symlink_to("..", target_is_directory=True)
    (root / "a" / "here").symlink_to(".", target_is_directory=True)
    (root / "a" / "up.txt").symlink_to("..", target_is_directory=True)
    (root / "deep" / "x" / "y" / "z").symlink_to("../../..", target_is_directory=True)
    (root / "root").symlink_to(root, target_is_directory=True)
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "out.txt").symlink_to(outside / "elsewhere.txt")
    (root / "self.txt").symlink_to("self.txt")
    (root / "ping.txt").symlink_to("pong.txt")
    (root / "pong.txt").symlink_to("ping.txt")
    (root / "dangling.txt").symlink_to("nowhere.txt")
    errors = dict(LOOP_ERRORS)
    errors["out.txt"] = f"symlink points outside {root.resolve()}"
    return root.resolve(), [f.resolve() for f in files], errors


def _finishes(work: Callable[[], list[T]]) -> list[T]:
    """Run `work` in a thread; fail (rather than hang) if it has not ended within 30 s."""
    done: list[list[T]] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    thread.join(30)
    assert done, "the walk did not end"
    return done[0]


def test_the_walk_ends_and_finds_each_real_file_once_among_symlink_loops(tmp_path: Path) -> None:
    root, files, errors = _loops(tmp_path)
    items = _finishes(lambda: list(discover([root], EXTENSIONS)))
    assert sorted(t.path for t in items if isinstance(t, FileTask)) == sorted(files)
    assert _errors(items) == errors


def test_roots_reached_through_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    root, files, errors = _loops(tmp_path)
    roots = [root, root / "a" / "b", root / "root", root / "deep" / "x" / "y" / "z"]
    items = _finishes(lambda: list(discover(roots, EXTENSIONS)))
    tasks = [t.path for t in items if isinstance(t, FileTask)]
    assert sorted(tasks) == sorted(files)
    names = [Path(e.location).name for e in items if isinstance(e, SourceError)]
    assert sorted(names) == sorted(errors), "each bad link reported once"


@pytest.mark.parametrize("name", sorted(LOOP_ERRORS))
def test_an_explicit_looping_or_dangling_file_is_an_error_not_a_crash(
    tmp_path: Path, name: str
) -> None:
    root, _, errors = _loops(tmp_path)
    [item] = list(discover([root / name], EXTENSIONS))
    assert isinstance(item, SourceError)
    assert (item.location, item.reason) == (str(root / name), errors[name])


def test_the_command_ingests_the_real_files_and_names_each_bad_link(tmp_path: Path) -> None:
    root, files, errors = _loops(tmp_path)
    result = _run(tmp_path, root, root / "self.txt", capture_output=True)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert sorted(lines) == sorted(
        [f"error: {root / name}: {reason}" for name, reason in errors.items()]
        + [f"error: {root / 'self.txt'}: symlink loop; not followed"]
    )
    with closing(sqlite3.connect(tmp_path / "test.db")) as conn:
        stored = sorted(Path(r[0]) for r in conn.execute("SELECT location FROM articles"))
    assert stored == sorted(files)


def test_the_watcher_reports_each_bad_link_once_and_never_follows_a_folder_link(
    tmp_path: Path,
) -> None:
    root, files, errors = _loops(tmp_path)
    watcher = _watcher(root, racy_ns=0)
    first = _finishes(lambda: list(watcher.scan()))
    assert sorted(Path(d.location) for d in first if isinstance(d, RawDocument)) == sorted(files)
    assert _errors(first) == errors
    assert list(watcher.scan()) == []


BIND_CHILD = """
import json, sys
from pathlib import Path
from aggregator.sources.folder import FileTask, discover
root = Path(sys.argv[1])
listing = sorted(p.name for p in (root / "a" / "mnt").iterdir())
found = [str(t.path) for t in discover([root], [".txt"]) if isinstance(t, FileTask)]
print(json.dumps({"listing": listing, "found": found}))
"""


def test_a_folder_reached_twice_through_a_bind_mount_is_walked_once(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed")
    root = _folder(tmp_path, 2, "root")
    (root / "a" / "mnt").mkdir(parents=True)
    result = subprocess.run(
        [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" "$1/a/mnt" || exit 77; shift; exec "$@"',
            "sh",
            str(root),
            sys.executable,
            "-c",
            BIND_CHILD,
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode == 77 or (result.returncode != 0 and "unshare" in result.stderr):
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["listing"] == ["a", "a00000.txt", "a00001.txt"], "the bind mount is in place"
    assert seen["found"] == [str(root / "a00000.txt"), str(root / "a00001.txt")]


# -- 5. many files in one folder ------------------------------------------------------------------


MANY = 5000


def test_each_of_5000_files_is_discovered_scanned_and_read_exactly_once(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for n in range(MANY):
        (root / f"f{n:05d}.txt").write_bytes(b"Headline %d\nBody of article %d.\n" % (n, n))
    root = root.resolve()
    tasks = list(discover([root], EXTENSIONS))
    assert all(isinstance(t, FileTask) for t in tasks)
    paths = [t.path for t in tasks if isinstance(t, FileTask)]
    assert len(paths) == MANY and len(set(paths)) == MANY
    assert paths == sorted(paths)
    watcher = _watcher(root, racy_ns=0)
    documents = _docs(list(watcher.scan()))
    assert Counter(d.location for d in documents) == Counter(str(p) for p in paths)
    assert list(watcher.scan()) == []


def test_discover_lists_one_folder_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two", "three"):
        _folder(tmp_path / "root", 2, name)
    listed: list[str] = []
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        listed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    walk = discover([tmp_path / "root"], EXTENSIONS)
    first = next(walk)
    assert isinstance(first, FileTask) and first.path.parent.name == "one"
    assert listed == ["root", "one"]
    assert len(list(walk)) == 5
    assert listed == ["root", "one", "three", "two"]


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            return
        if not data:
            return
        into.extend(data)


def test_ingest_draws_a_progress_bar_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    root = _folder(tmp_path, 300)
    terminal, side = os.openpty()
    drawn = bytearray()
    reader = threading.Thread(target=_drain, args=(terminal, drawn), daemon=True)
    reader.start()
    try:
        result = _run(tmp_path, root, stdout=subprocess.PIPE, stderr=side)
    finally:
        os.close(side)
        reader.join(10)
        os.close(terminal)
    assert result.returncode == 0
    screen = drawn.decode()
    assert "ingesting" in screen
    percents = {int(p) for p in re.findall(r"(\d+)%", screen)}
    assert 100 in percents and len(percents) >= 10, "the bar moves while the ingest runs"
    assert result.stdout.startswith("300 new, 0 updated, 0 unchanged, 0 failed;")
    assert "new: " not in result.stdout, "the bar replaces the per-file lines"


def test_ingest_without_a_terminal_prints_each_stored_file_once(tmp_path: Path) -> None:
    root = _folder(tmp_path, 300)
    result = _run(tmp_path, root, capture_output=True)
    assert result.returncode == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("300 new, 0 updated, 0 unchanged, 0 failed;")
    shown = Counter(line.split()[1] for line in lines[:-1])
    assert shown == Counter(str(p) for p in sorted(root.iterdir()))


# -- file names that are not UTF-8 -----------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_stored_with_escapes_and_read_by_its_real_name(
    tmp_path: Path,
) -> None:
    """Latin-1 'café.txt' (byte 0xe9): Python keeps the byte as a lone surrogate, which
    SQLite and a UTF-8 terminal refuse; it used to end the whole ingest with an internal
    error. Now it is stored as 'caf\\xe9.txt', once, and found unchanged again."""
    root = _folder(tmp_path, 1)
    (root / os.fsdecode(b"caf\xe9.txt")).write_bytes(_article(7))
    first = _run(tmp_path, root, capture_output=True)
    assert first.returncode == 0, first.stderr
    assert f"new: {root}/caf\\xe9.txt" in first.stdout.splitlines()
    assert "2 new, 0 updated, 0 unchanged, 0 failed" in first.stdout
    again = _run(tmp_path, root, capture_output=True)
    assert "0 new, 0 updated, 2 unchanged, 0 failed" in again.stdout
    with closing(sqlite3.connect(tmp_path / "test.db")) as conn:
        [(text,)] = conn.execute(
            "SELECT title FROM articles WHERE location LIKE '%caf\\xe9.txt'"
        ).fetchall()
    assert text == "Report 7 alpha"
    scanned = [item for item in _watcher(root).scan() if isinstance(item, RawDocument)]
    assert sorted(Path(d.location).name for d in scanned) == ["a00000.txt", "caf\\xe9.txt"]
