"""Storage faults, each injected: disk full, a read-only file, corruption, an old schema.

The promise under test: a clear one-line error, nothing half-written, nothing
silently overwritten, and work that resumes once the fault is gone.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from aggregator.config import Config, MinHashParams
from aggregator.errors import CorruptDatabaseError, StoreError
from aggregator.ingest.pipeline import Ingester
from aggregator.storage.dbfile import _statements
from aggregator.storage.schema import SCHEMA_V1, SCHEMA_VERSION
from aggregator.storage.store import Store, params_meta
from tests.clirun import run_cli
from tests.conftest import AGGREGATOR, SEEDS, OpenStore, ingest, read_all
from tests.daemons import Daemon, query, wait_for_progress, write_articles, write_config


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def _seed(prefix: str) -> Path:
    return next(SEEDS.glob(f"{prefix}_*.txt"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _half_written(store: Store) -> int:
    return int(
        store.execute(
            "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM paragraphs p "
            "JOIN article_versions v ON v.id = p.version_id "
            "WHERE v.article_id = a.id AND v.version = a.version)"
        ).fetchone()[0]
    )


def test_disk_full_is_a_clear_error_and_ingest_resumes_when_space_returns(
    config: Config,
    open_store: OpenStore,
) -> None:
    store = open_store()
    ingester = Ingester(store, config)
    assert [o.status for o in ingester.ingest(read_all([_seed("001")], config))] == ["new"]
    pages = store.execute("PRAGMA page_count").fetchone()[0]
    store.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
    rest = [_seed(p) for p in ("000", "002", "003", "004")]
    with pytest.raises(StoreError, match=r"disk full .*resumes once there is space") as caught:
        list(ingester.ingest(read_all(rest, config)))
    assert len(str(caught.value).splitlines()) == 1
    assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _half_written(store) == 0
    stored_while_full = store.execute("SELECT count(*) FROM articles").fetchone()[0]

    store.execute("PRAGMA max_page_count = 1073741823")  # space is back
    outcomes = list(ingester.ingest(read_all([_seed("001"), *rest], config)))
    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("unchanged") == stored_while_full
    assert statuses.count("new") == 5 - stored_while_full
    identities = store.execute("SELECT count(DISTINCT identity), count(*) FROM articles")
    assert identities.fetchone() == (5, 5)
    clusters = store.execute(
        "SELECT count(DISTINCT cluster_id), count(*) FROM cluster_articles"
    ).fetchone()
    store.close()
    assert clusters == (1, 2), "001 and 004 still make one story"


@pytest.fixture
def seeded_db(config: Config) -> Path:
    ingest(config, SEEDS)
    return config.database


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i: read-only even for root (tests run as root here)."""
    if shutil.which("chattr") is None:
        return False
    flag = "+i" if on else "-i"
    result = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return result.returncode == 0


def test_a_read_only_database_is_a_clear_error_and_stays_as_it_was(
    seeded_db: Path, tmp_path: Path
) -> None:
    before = _digest(seeded_db)
    if not _immutable(seeded_db, True):
        pytest.skip("cannot make a file read-only for root here (no chattr +i)")
    try:
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "new.txt").write_text("A title\n" + "Some words about a thing. " * 20)
        result = _cli("--db", str(seeded_db), "ingest", str(extra))
    finally:
        _immutable(seeded_db, False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"aggregator: error: database {seeded_db}: cannot write")
    assert _digest(seeded_db) == before


def _corrupt(path: Path, offset: int, length: int = 4096) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xa5" * length)


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(seeded_db: Path) -> None:
    _corrupt(seeded_db, 0, 100)
    before = _digest(seeded_db)
    result = _cli("--db", str(seeded_db), "stats")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "corrupted (file is not a database)" in line and ".recover" in line
    assert _digest(seeded_db) == before


def test_a_damaged_page_stops_the_daemon_at_start_and_is_left_alone(
    seeded_db: Path, tmp_path: Path, open_store: OpenStore
) -> None:
    with closing(sqlite3.connect(seeded_db)) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    _corrupt(seeded_db, page * 3, page * 4)
    before = _digest(seeded_db)
    with pytest.raises(CorruptDatabaseError, match="corrupted"):
        open_store(seeded_db, MinHashParams()).check()
    result = subprocess.run(
        [str(AGGREGATOR), "--db", str(seeded_db), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"aggregator: error: database {seeded_db}: corrupted" in result.stderr
    assert _digest(seeded_db) == before


def test_an_old_schema_is_backed_up_then_migrated_in_place(
    tmp_path: Path, open_store: OpenStore
) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        for statement in _statements(SCHEMA_V1):
            conn.execute(statement)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", params_meta(MinHashParams()).items())
        conn.execute(
            "INSERT INTO sources (kind, location, name, created_at) "
            "VALUES ('folder', '/news', 'news', '2026-11-01T00:00:00Z')"
        )
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = open_store(db, MinHashParams())
    assert store.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.execute("SELECT location FROM sources").fetchall() == [("/news",)]
    store.close()
    backup = tmp_path / "old.db.v1.bak"
    with sqlite3.connect(backup) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1
        assert old.execute("SELECT location FROM sources").fetchall() == [("/news",)]
        assert "url" not in {r[1] for r in old.execute("PRAGMA table_info(sources)")}
    old.close()
    open_store(db, MinHashParams()).close()
    assert sorted(p.name for p in tmp_path.glob("old.db.v*")) == ["old.db.v1.bak"], (
        "a migrated database is not backed up again"
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that really fills up (needs mount rights; skipped without)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow  # a real daemon, filling a disk
def test_the_daemon_survives_a_full_disk_and_catches_up_when_it_grows(
    small_disk: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "wire"
    write_articles(folder, 800, seed=21)
    config = write_config(
        small_disk / "agg.toml",
        f'folders = ["{folder}"]\n[daemon]\ntick_seconds = 0.5\nscan_minutes = 0.02\n',
    )
    daemon = Daemon(config)
    try:
        daemon.wait_started()
        # The group that hit the full disk rolls back and is stored one by one, which
        # fills the disk again: the job stops. Growing the disk only after that line
        # makes what the log shows independent of how fast this machine is.
        daemon.wait_for_log("job scan stopped")
        assert daemon.process.poll() is None, "the daemon keeps running"
        stored = daemon.articles()
        assert 0 < stored < 800
        subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
        wait_for_progress(daemon.articles, 800, daemon.said(f"catching up from {stored}"))
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    db = small_disk / "news.db"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT count(DISTINCT identity), count(*) FROM articles") == [(800, 800)]
    # (a group of articles rolled back says so first, at INFO; then the job stops)
    stopped = [x for x in daemon.text().splitlines() if "job scan stopped" in x]
    assert stopped, daemon.text()
    line = stopped[0]
    assert "disk full" in line
    assert "job scan stopped: database" in line
