"""The daemon as a real subprocess: ticks, folder watch, reload, hangs, stop, crashes, notify."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import AGGREGATOR

WORDS = (
    "minister council harbour vote market storm court rail union price river summit grain "
    "border police energy school doctor budget strike coast airport village election tariff "
    "museum bridge factory harvest treaty senate garden hospital festival bank report"
).split()


def _article(rng: random.Random, n: int) -> str:
    title = f"Report number {n} on {rng.choice(WORDS)}"
    paragraphs = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))).capitalize() + "."
        for _ in range(rng.randint(3, 6))
    ]
    return title + "\n" + "\n".join(paragraphs) + "\n"


def _write_articles(folder: Path, count: int, seed: int = 7) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for n in range(count):
        (folder / f"a{n:05d}.txt").write_text(_article(rng, n), encoding="utf-8")


def _config(path: Path, body: str) -> Path:
    path.write_text(f'database = "news.db"\n{body}', encoding="utf-8")
    return path


def _query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Daemon:
    """`aggregator run` in a subprocess, its stderr in a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = config.with_suffix(".log")
        self.db = config.parent / "news.db"
        # Several daemons may share the log: this one's lines start here.
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(AGGREGATOR), "--config", str(config), "run"],
                stderr=log,
                stdout=log,
                env={**os.environ, **(env or {})},
            )

    def text(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode("utf-8", errors="replace")

    def wait_started(self, timeout: float = 20) -> None:
        _wait_for(lambda: "started:" in self.text(), timeout, f"daemon start; log: {self.text()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def articles(self) -> int:
        rows = _query(self.db, "SELECT count(*) FROM articles")
        return int(str(rows[0][0])) if rows else 0

    def state(self, key: str) -> str | None:
        rows = _query(self.db, "SELECT value FROM service_state WHERE key = ?", key)
        return str(rows[0][0]) if rows else None


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


FAST = "[daemon]\ntick_seconds = 0.5\nscan_minutes = 0.01\n"
FAST_FEEDS = "min_interval_minutes = 0.01\ndefault_interval_minutes = 0.01\n"


def _feed(entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><description>{t}: "
        + _article(random.Random(g), 0).split("\n")[1]
        + "</description></item>"
        for g, t in entries
    )
    return f'<rss version="2.0"><channel><title>Local</title>{items}</channel></rss>'


def test_a_dropped_file_and_a_new_feed_entry_are_ingested_within_a_few_ticks(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    entries = [("g1", "Bridge opens")]
    httpserver.expect_request("/feed").respond_with_handler(
        lambda _: Response(_feed(entries), content_type="application/rss+xml")
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = _config(
        tmp_path / "agg.toml",
        f'folders = ["{inbox}"]\n[feeds]\nurls = ["{httpserver.url_for("/feed")}"]\n'
        f'allow = ["localhost:{httpserver.port}"]\n{FAST_FEEDS}{FAST}',
    )
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_started()
    _wait_for(lambda: daemon.articles() == 1, 10, "the first feed entry")
    _write_articles(inbox, 1)
    entries.append(("g2", "Harbour closes"))
    titles = "SELECT title FROM articles ORDER BY title"
    _wait_for(lambda: len(_query(daemon.db, titles)) == 3, 10, "the file and the new entry")
    assert [r[0] for r in _query(daemon.db, titles)] == [
        "Bridge opens",
        "Harbour closes",
        "Report number 0 on " + _article(random.Random(7), 0).split(" on ")[1].split("\n")[0],
    ]
    stories = tmp_path / "digests" / "stories.atom"
    _wait_for(lambda: stories.exists() and "Harbour" in stories.read_text(), 10, "the feed file")
    assert "Bridge opens" in stories.read_text() and "Report number 0" in stories.read_text()
    assert daemon.stop() == 0


def test_sighup_adds_a_source_and_a_broken_config_keeps_the_old_one(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        _feed([("h1", "Senate votes")]), content_type="application/rss+xml"
    )
    config = _config(tmp_path / "agg.toml", FAST)
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_started()
    _config(
        config,
        f'[feeds]\nurls = ["{httpserver.url_for("/feed")}"]\n'
        f'allow = ["localhost:{httpserver.port}"]\n{FAST_FEEDS}{FAST}',
    )
    daemon.signal(signal.SIGHUP)
    _wait_for(lambda: daemon.articles() == 1, 10, "the feed added by the reload")

    config.write_text("[daemon\ntick_seconds = ", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    _wait_for(lambda: "reload refused" in daemon.text(), 10, "the refusal")
    assert "invalid TOML" in daemon.text()
    before = daemon.state("last_tick_at")
    _wait_for(lambda: daemon.state("last_tick_at") != before, 10, "a tick after the refusal")
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_a_fetch_that_never_answers_does_not_stop_later_ticks(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and never answered
    port = silent.getsockname()[1]
    polls: list[float] = []

    def good(_: Request) -> Response:
        polls.append(time.monotonic())
        return Response(_feed([("ok", "Still here")]), content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(good)
    config = _config(
        tmp_path / "agg.toml",
        f'[feeds]\nurls = ["http://127.0.0.1:{port}/hang", "{httpserver.url_for("/feed")}"]\n'
        f'allow = ["127.0.0.0/8", "localhost:{httpserver.port}"]\ndeadline_seconds = 1.5\n'
        f"{FAST_FEEDS}{FAST}",
    )
    try:
        daemon = Daemon(config)
        daemons.append(daemon)
        daemon.wait_started()
        _wait_for(lambda: len(polls) >= 4, 20, "the good feed polled again and again")
        rows = _query(daemon.db, "SELECT last_error FROM sources WHERE url LIKE '%/hang'")
        assert rows and "timed out" in str(rows[0][0])
        assert daemon.stop() == 0
    finally:
        silent.close()


def _integrity(db: Path) -> str:
    return str(_query(db, "PRAGMA integrity_check")[0][0])


def _half_written(db: Path) -> int:
    """Articles whose current version lacks its version row or its paragraphs."""
    rows = _query(
        db,
        "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM article_versions v "
        "WHERE v.article_id = a.id AND v.version = a.version) OR NOT EXISTS "
        "(SELECT 1 FROM paragraphs p JOIN article_versions v ON v.id = p.version_id "
        "WHERE v.article_id = a.id AND v.version = a.version)",
    )
    return int(str(rows[0][0]))


def test_sigterm_during_a_large_ingest_exits_0_within_the_grace(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    folder = tmp_path / "big"
    _write_articles(folder, 3000)
    config = _config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}')
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_started()
    _wait_for(lambda: daemon.articles() >= 100, 30, "the ingest under way")
    sent = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(15) == 0
    assert time.monotonic() - sent < 10, "the default grace is 10 s"
    stored = daemon.articles()
    assert stored < 3000, "the ingest was interrupted, not finished"
    assert _integrity(daemon.db) == "ok"
    assert _half_written(daemon.db) == 0


FILES = 6000


def _grew(daemon: Daemon, before: int) -> bool:
    return daemon.articles() > before


def test_kill_9_in_a_loop_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    folder = tmp_path / "wire"
    _write_articles(folder, FILES, seed=11)
    config = _config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}')
    db = tmp_path / "news.db"
    rng = random.Random(3)
    progress = [0]
    for _ in range(20):
        daemon = Daemon(config)
        daemons.append(daemon)
        daemon.wait_started()
        # Kill while it writes: once it has stored something new, a moment later.
        _wait_for(partial(_grew, daemon, progress[-1]), 30, f"new articles {progress}")
        time.sleep(rng.uniform(0, 0.3))
        daemon.process.kill()
        daemon.process.wait()
        assert _integrity(db) == "ok"
        assert _half_written(db) == 0
        progress.append(daemon.articles())
    assert progress[-1] < FILES, f"every kill must land mid-ingest: {progress}"
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_started()
    _wait_for(lambda: daemon.articles() == FILES, 60, f"all {FILES} files (progress {progress})")
    assert daemon.stop() == 0
    identities = _query(db, "SELECT count(DISTINCT identity), count(*) FROM articles")
    assert identities == [(FILES, FILES)], progress
    print("articles stored after each kill -9:", progress)
    assert _query(db, "SELECT max(version) FROM articles") == [(1,)]


def test_notify_protocol_ready_watchdog_stopping(tmp_path: Path, daemons: list[Daemon]) -> None:
    # A short path: AF_UNIX addresses are limited to about 100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="agg", dir="/tmp"))
    address = str(folder / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(15)
    try:
        config = _config(tmp_path / "agg.toml", FAST)
        daemon = Daemon(config, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"})
        daemons.append(daemon)
        messages: list[str] = []

        def receive_until(line: str) -> None:
            while not any(line in m.splitlines() for m in messages):
                messages.append(listener.recv(4096).decode())

        receive_until("READY=1")
        ready = next(m for m in messages if "READY=1" in m.splitlines())
        assert f"MAINPID={daemon.process.pid}" in ready
        count = len(messages)
        deadline = time.monotonic() + 5
        while sum("WATCHDOG=1" in m for m in messages[count:]) < 3:
            assert time.monotonic() < deadline, messages
            messages.append(listener.recv(4096).decode())
        daemon.signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert daemon.process.wait(15) == 0
    finally:
        listener.close()
        Path(address).unlink(missing_ok=True)
        folder.rmdir()


def test_a_second_daemon_on_the_same_database_refuses(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = _config(tmp_path / "agg.toml", FAST)
    first = Daemon(config)
    daemons.append(first)
    first.wait_started()
    second = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"aggregator: error: {tmp_path / 'news.db'}: already served by a running daemon "
        f"(pid {first.process.pid}); stop it first"
    )
    status = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"daemon: running (pid {first.process.pid})" in status.stdout
    assert first.stop() == 0


def test_cli_and_sqlite_utils_read_while_the_daemon_writes(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    folder = tmp_path / "big"
    _write_articles(folder, 4000, seed=5)
    config = _config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}')
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_started()
    _wait_for(lambda: daemon.articles() > 0, 20, "the first articles")
    readers = [
        [str(AGGREGATOR), "--config", str(config), "clusters", "--json"],
        [str(AGGREGATOR), "--config", str(config), "status"],
        [str(AGGREGATOR.parent / "sqlite-utils"), "tables", str(daemon.db), "--counts"],
    ]
    seen = []
    while daemon.articles() < 4000 and len(seen) < 30:
        for command in readers:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (command, result.stderr)
            assert "locked" not in result.stderr
        seen.append(daemon.articles())
    assert len(set(seen)) > 1, f"the reads did not overlap the writes: {seen}"
    assert daemon.stop() == 0
