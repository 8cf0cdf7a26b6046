"""The daemon as a real subprocess: ticks, folder watch, reload, hangs, stop, crashes, notify."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import Database, PostgresURL
from tests.conftest import AGGREGATOR
from tests.daemons import (
    DEADLINE,
    FAST,
    FAST_FEEDS,
    Daemon,
    article,
    query,
    wait_for,
    wait_for_progress,
    write_articles,
    write_config,
)

# Real daemons waiting on real ticks: seconds each, so all are left out of `make test-fast`.
# Each runs on the test's `database`: a SQLite file, then a PostgreSQL database.
pytestmark = [pytest.mark.slow, pytest.mark.both_stores]


def _feed(entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><description>{t}: "
        + article(random.Random(g), 0).split("\n")[1]
        + "</description></item>"
        for g, t in entries
    )
    return f'<rss version="2.0"><channel><title>Local</title>{items}</channel></rss>'


def test_a_dropped_file_and_a_new_feed_entry_are_ingested_within_a_few_ticks(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon], database: Database
) -> None:
    entries = [("g1", "Bridge opens")]
    httpserver.expect_request("/feed").respond_with_handler(
        lambda _: Response(_feed(entries), content_type="application/rss+xml")
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(
        tmp_path / "agg.toml",
        f'folders = ["{inbox}"]\n[feeds]\nurls = ["{httpserver.url_for("/feed")}"]\n'
        f'allow = ["localhost:{httpserver.port}"]\n{FAST_FEEDS}{FAST}',
        database,
    )
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for(lambda: daemon.articles() == 1, daemon.said("the first feed entry"))
    write_articles(inbox, 1)
    entries.append(("g2", "Harbour closes"))
    titles = "SELECT title FROM articles ORDER BY title"
    wait_for(lambda: len(query(daemon.db, titles)) == 3, daemon.said("the file and the entry"))
    assert [r[0] for r in query(daemon.db, titles)] == [
        "Bridge opens",
        "Harbour closes",
        "Report number 0 on " + article(random.Random(7), 0).split(" on ")[1].split("\n")[0],
    ]
    # The stories feed is rewritten after each job that stored something (the tick's
    # feed entry and the scan's file come in separate jobs), so it can lag the database
    # by a job: wait for the rewrite that holds all three, not for one that holds one.
    stories = tmp_path / "digests" / "stories.atom"
    expected = ("Bridge opens", "Harbour closes", "Report number 0")

    def holds_all() -> bool:
        return stories.exists() and all(title in stories.read_text() for title in expected)

    wait_for(holds_all, lambda: f"all of {expected} in the stories feed:\n{stories.read_text()}")
    assert daemon.stop() == 0


def test_sighup_adds_a_source_and_a_broken_config_keeps_the_old_one(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon], database: Database
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        _feed([("h1", "Senate votes")]), content_type="application/rss+xml"
    )
    config = write_config(tmp_path / "agg.toml", FAST, database)
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    write_config(
        config,
        f'[feeds]\nurls = ["{httpserver.url_for("/feed")}"]\n'
        f'allow = ["localhost:{httpserver.port}"]\n{FAST_FEEDS}{FAST}',
        database,
    )
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.articles() == 1, daemon.said("the feed added by the reload"))

    config.write_text("[daemon\ntick_seconds = ", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reload refused")
    assert "invalid TOML" in daemon.text()
    before = daemon.state("last_tick_at")
    wait_for(lambda: daemon.state("last_tick_at") != before, daemon.said("a tick after it"))
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_a_fetch_that_never_answers_does_not_stop_later_ticks(
    tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon], database: Database
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
    config = write_config(
        tmp_path / "agg.toml",
        f'[feeds]\nurls = ["http://127.0.0.1:{port}/hang", "{httpserver.url_for("/feed")}"]\n'
        f'allow = ["127.0.0.0/8", "localhost:{httpserver.port}"]\ndeadline_seconds = 1.5\n'
        f"{FAST_FEEDS}{FAST}",
        database,
    )
    try:
        daemon = Daemon(config, db=database)
        daemons.append(daemon)
        daemon.wait_started()
        wait_for(lambda: len(polls) >= 4, daemon.said("the good feed polled again and again"))
        rows = query(daemon.db, "SELECT last_error FROM sources WHERE url LIKE '%/hang'")
        assert rows and "timed out" in str(rows[0][0])
        assert daemon.stop() == 0
    finally:
        silent.close()


def _assert_sound(db: Database) -> None:
    """Nothing half-written after a stop or a kill: on SQLite the file passes
    `PRAGMA integrity_check` too (a PostgreSQL server outlives its killed client:
    its own files are not at stake, the rolled-back transaction is)."""
    if not isinstance(db, PostgresURL):
        assert str(query(db, "PRAGMA integrity_check")[0][0]) == "ok"
    assert _half_written(db) == 0


def _half_written(db: Database) -> int:
    """Articles whose current version lacks its version row or its paragraphs."""
    rows = query(
        db,
        "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM article_versions v "
        "WHERE v.article_id = a.id AND v.version = a.version) OR NOT EXISTS "
        "(SELECT 1 FROM paragraphs p JOIN article_versions v ON v.id = p.version_id "
        "WHERE v.article_id = a.id AND v.version = a.version)",
    )
    return int(str(rows[0][0]))


def test_sigterm_during_a_large_ingest_exits_0_within_the_grace(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    folder = tmp_path / "big"
    write_articles(folder, 3000)
    config = write_config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}', database)
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for(lambda: daemon.articles() >= 100, daemon.said("the ingest under way"))
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(DEADLINE) == 0
    # The daemon waits for its job for the grace (10 s by default) and says whether the
    # job let go in time: its own verdict, which a loaded machine does not change.
    log = daemon.text()
    assert "SIGTERM: stopping" in log and "stopped\n" in log, log[-4000:]
    assert "abandoned" not in log, "the scan did not stop within the grace"
    stored = daemon.articles()
    assert stored < 3000, "the ingest was interrupted, not finished"
    _assert_sound(daemon.db)


FILES = 3000  # to begin with; more are dropped in whenever fewer than SPARE are left
SPARE = 1500


def test_kill_9_in_a_loop_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    """Twenty kill -9s, each while the daemon writes. However fast the machine stores
    (a group commit adds 64 articles at once), each restart finds at least SPARE files
    still to store: new ones are written before it while fewer are left, so every kill
    lands mid-ingest by construction, not by timing."""
    folder = tmp_path / "wire"
    written = FILES
    write_articles(folder, written, seed=11)
    config = write_config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}', database)
    db = database
    rng = random.Random(3)
    progress = [0]
    for kill in range(20):
        if written - progress[-1] < SPARE:
            write_articles(folder, 2 * SPARE, seed=100 + kill, first=written)
            written += 2 * SPARE
        daemon = Daemon(config, db=db)
        daemons.append(daemon)
        daemon.wait_started()
        # Kill while it writes: once it has stored something new, a moment later.
        wait_for(
            lambda d=daemon, before=progress[-1]: d.articles() > before,
            daemon.said(f"new articles {progress}"),
        )
        time.sleep(rng.uniform(0, 0.3))  # where the kill lands, not a verdict
        daemon.kill()
        _assert_sound(db)
        progress.append(daemon.articles())
        assert progress[-1] < written, f"kill {kill + 1} must land mid-ingest: {progress}"
    daemon = Daemon(config, db=db)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for_progress(daemon.articles, written, daemon.said(f"all files (progress {progress})"))
    assert daemon.stop() == 0
    identities = query(db, "SELECT count(DISTINCT identity), count(*) FROM articles")
    assert identities == [(written, written)], progress
    print("articles stored after each kill -9:", progress, "of", written)
    assert query(db, "SELECT max(version) FROM articles") == [(1,)]


def test_notify_protocol_ready_watchdog_stopping(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    # A short path: AF_UNIX addresses are limited to about 100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="agg", dir="/tmp"))
    address = str(folder / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(DEADLINE)
    try:
        config = write_config(tmp_path / "agg.toml", FAST, database)
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}
        daemon = Daemon(config, env=env, db=database)
        daemons.append(daemon)
        messages: list[str] = []

        def receive_until(line: str) -> None:
            while not any(line in m.splitlines() for m in messages):
                messages.append(listener.recv(4096).decode())

        receive_until("READY=1")
        ready = next(m for m in messages if "READY=1" in m.splitlines())
        assert f"MAINPID={daemon.process.pid}" in ready
        count = len(messages)
        deadline = time.monotonic() + DEADLINE
        while sum("WATCHDOG=1" in m for m in messages[count:]) < 3:
            assert time.monotonic() < deadline, messages
            messages.append(listener.recv(4096).decode())
        daemon.signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert daemon.process.wait(DEADLINE) == 0
    finally:
        listener.close()
        Path(address).unlink(missing_ok=True)
        folder.rmdir()


def test_a_second_daemon_on_the_same_database_refuses(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    config = write_config(tmp_path / "agg.toml", FAST, database)
    first = Daemon(config, db=database)
    daemons.append(first)
    first.wait_started()
    second = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert second.returncode == 1
    # The holder as the lock names it: the pid in the .lock file, or the advisory lock
    # holder's application_name (pid and host) on PostgreSQL.
    pid = first.process.pid
    holder = (
        f"aggregator daemon pid {pid} on {socket.gethostname()}"[:63]
        if isinstance(database, PostgresURL)
        else f"pid {pid}"
    )
    assert second.stderr.strip() == (
        f"aggregator: error: {database}: already served by a running daemon "
        f"({holder}); stop it first"
    )
    status = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "status"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert f"daemon: running (pid {first.process.pid})" in status.stdout
    assert first.stop() == 0


def test_cli_and_sqlite_utils_read_while_the_daemon_writes(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    folder = tmp_path / "big"
    written = 1000
    write_articles(folder, written, seed=5)
    config = write_config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}', database)
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for(lambda: daemon.articles() > 0, daemon.said("the first articles"))
    # The CLI on both stores (`--db` naming the database as the configuration does);
    # sqlite-utils, a reader the aggregator does not control, on the SQLite file.
    db = database.url if isinstance(database, PostgresURL) else str(database)
    readers = [
        [str(AGGREGATOR), "--config", str(config), "clusters", "--json"],
        [str(AGGREGATOR), "--config", str(config), "status"],
        [str(AGGREGATOR), "--db", db, "stats", "--json"],
    ]
    if not isinstance(database, PostgresURL):
        readers.append([str(AGGREGATOR.parent / "sqlite-utils"), "tables", db, "--counts"])
    # Rounds of reads until the daemon has written between them four times: however fast
    # or slow the machine, the writer is never out of work (more files whenever it has
    # caught up), so the reads run beside the writes and the verdict does not hang on speed.
    seen: list[int] = []
    while len(set(seen)) < 5:
        assert len(seen) < 200, f"the daemon stopped writing: {seen}"
        if daemon.articles() >= written - 100:
            write_articles(folder, 500, seed=len(seen), first=written)
            written += 500
        for command in readers:
            result = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE)
            assert result.returncode == 0, (command, result.stderr)
            assert "locked" not in result.stderr
        seen.append(daemon.articles())
    assert daemon.stop() == 0
