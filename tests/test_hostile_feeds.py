"""Hostile feeds in one poll beside normal ones (issue 12): nothing poisons the poll.

One loopback server serves two normal feeds and, each as its own feed, a
quadratic entity blow-up in every encoding a feed may use, an entry with 100k
attributes on one element, an entry whose full-text page has 80k attributes, a
10 MB title and a 50 MB-expanding entity. `aggregator poll --all` runs as a real
process; its process tree's memory is sampled from /proc. The poll must end in
bounded time and memory, store the normal feeds, leave each hostile feed a
one-line error or warning, and behave the same when polled again.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import AGGREGATOR, SEEDS
from tests.daemons import Daemon, query

DEADLINE_SECONDS = 10.0
PARSE_DEADLINE = 60.0  # aggregator.sources.workers.PARSE_DEADLINE
MIB = 1024 * 1024


def _paragraphs(name: str) -> list[str]:
    return next(SEEDS.glob(f"{name}_*.txt")).read_text(encoding="utf-8").splitlines()[1:]


def _item(guid: str, title: str, body: str, link: str = "") -> str:
    link = link or f"https://news.example/{guid}"
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description><![CDATA[{body}]]></description></item>"
    )


def _rss(items: list[str], doctype: str = "", declaration: str = "utf-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{declaration}"?>{doctype}'
        f'<rss version="2.0"><channel><title>T</title>{"".join(items)}</channel></rss>'
    )


def _normal(name: str, seed: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in _paragraphs(seed))
    return _rss([_item(f"{name}-1", f"Normal story from {name}", body)]).encode()


def _quadratic(declaration: str) -> str:
    """One 10 KB entity referenced 10,000 times in a title: 100 MB if expanded."""
    doctype = '<!DOCTYPE rss [<!ENTITY a "' + "x" * 10_000 + '">]>'
    return _rss([_item("q-1", "&a;" * 10_000, "<p>quadratic</p>")], doctype, declaration)


ENCODINGS: dict[str, Callable[[], bytes]] = {
    "utf-16le": lambda: _quadratic("utf-16").encode("utf-16-le"),
    "utf-16be": lambda: _quadratic("utf-16").encode("utf-16-be"),
    "utf-16-bom": lambda: _quadratic("utf-16").encode("utf-16"),
    "utf-32le": lambda: _quadratic("utf-32").encode("utf-32-le"),
    "utf-32be": lambda: _quadratic("utf-32").encode("utf-32-be"),
    "cp037": lambda: _quadratic("cp037").encode("cp037"),
    "gb18030": lambda: _quadratic("gb18030").encode("gb18030"),
    "shift_jis": lambda: _quadratic("shift_jis").encode("shift_jis"),
    "lying": lambda: _quadratic("utf-8").encode("utf-16-le"),
}


def _hostile(server_url: Callable[[str], str]) -> dict[str, bytes]:
    feeds = {f"quadratic-{name}": make() for name, make in ENCODINGS.items()}
    attributes = " ".join(f'a{i}="1"' for i in range(100_000))
    feeds["attributes"] = _rss(
        [_item("at-1", "Many attributes", f"<p {attributes}>x</p>")]
    ).encode()
    feeds["full-text"] = _rss(
        [_item("ft-1", "Teaser only", "Read more.", link=server_url("/page"))]
    ).encode()
    feeds["big-title"] = _rss([_item("bt-1", "T" * (10 * MIB), "<p>big title</p>")]).encode()
    doctype = '<!DOCTYPE rss [<!ENTITY b "' + "y" * 1000 + '">]>'
    feeds["entity-50mb"] = _rss(
        [_item("e-1", "Entity", "<p>" + "&b;" * 50_000 + "</p>")], doctype
    ).encode()
    return feeds


def _page() -> bytes:
    attributes = " ".join(f'b{i}="2"' for i in range(80_000))
    prose = "".join(f"<p>{p}</p>" for p in _paragraphs("002"))
    return f"<html><body><article><div {attributes}>{prose}</div></article></body></html>".encode()


class _TreeMemory:
    """Peak summed RSS of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _poll(config: Path, cwd: Path) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    process = subprocess.Popen(
        [str(AGGREGATOR), "--config", str(config), "poll", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    memory = _TreeMemory(process.pid)
    out, err = process.communicate(timeout=2 * DEADLINE_SECONDS + PARSE_DEADLINE + 120)
    peak = memory.stop()
    elapsed = time.monotonic() - started
    return elapsed, peak, subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _serve_and_subscribe(httpserver: HTTPServer, tmp_path: Path, extra: str = "") -> Path:
    """Serve the normal and hostile feeds and subscribe to all; the configuration file."""
    feeds = {"normal-a": _normal("normal-a", "000"), "normal-b": _normal("normal-b", "003")}
    feeds.update(_hostile(httpserver.url_for))
    for name, body in feeds.items():
        httpserver.expect_request(f"/{name}").respond_with_data(
            body, content_type="application/rss+xml"
        )
    httpserver.expect_request("/page").respond_with_data(_page(), content_type="text/html")
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "{tmp_path / "news.db"}"\n{extra}[feeds]\n'
        f'allow = ["localhost:{httpserver.port}", "127.0.0.1:{httpserver.port}"]\n'
        f"deadline_seconds = {DEADLINE_SECONDS}\nmin_interval_minutes = 0.01\n"
        "default_interval_minutes = 0.01\n"
    )
    for name in feeds:
        mode = "always" if name == "full-text" else "never"
        added = subprocess.run(
            [
                *(str(AGGREGATOR), "--config", str(config), "sources", "add"),
                *(httpserver.url_for(f"/{name}"), "--name", name, "--full-text", mode),
                "--no-check",  # the check would refuse the hostile ones: they are the test
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert added.returncode == 0, added.stderr
    return config


@pytest.mark.slow
def test_one_poll_survives_every_hostile_feed_and_the_next_one_too(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _serve_and_subscribe(httpserver, tmp_path)
    for attempt in range(2):
        elapsed, peak, result = _poll(config, tmp_path)
        assert elapsed < 2 * DEADLINE_SECONDS + PARSE_DEADLINE, (attempt, elapsed, result.stderr)
        print(f"poll {attempt + 1}: {elapsed:.1f} s, process tree peak {peak / MIB:.0f} MiB")
        assert peak < 600 * MIB, (attempt, peak / MIB)
        with sqlite3.connect(tmp_path / "news.db") as db:
            stored = {r[0] for r in db.execute("SELECT title FROM articles")}
            problems = dict(
                db.execute(
                    "SELECT name, coalesce(last_error, last_warning) FROM sources "
                    "WHERE kind = 'feed' AND name NOT LIKE 'normal-%'"
                ).fetchall()
            )
            longest = db.execute("SELECT max(length(title)) FROM articles").fetchone()[0]
        db.close()
        assert {"Normal story from normal-a", "Normal story from normal-b"} <= stored, attempt
        missing = sorted(name for name, problem in problems.items() if not problem)
        assert missing == [], (attempt, problems)
        assert all("\n" not in p for p in problems.values()), problems
        assert longest <= 1000, longest
        with sqlite3.connect(tmp_path / "news.db") as db:
            db.execute("UPDATE sources SET next_check_at = NULL")
        db.close()


@pytest.mark.slow
def test_the_daemon_keeps_ticking_through_hostile_feeds_and_status_shows_them(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _serve_and_subscribe(httpserver, tmp_path, "[daemon]\ntick_seconds = 0.5\n")
    daemon = Daemon(config)
    try:
        daemon.wait_started()
        # Every feed is due again within a tick or two: three ticks that each polled.
        daemon.wait_for_log("tick: ", count=3)
        assert daemon.process.poll() is None, daemon.text()[-4000:]
        stored = {r[0] for r in query(tmp_path / "news.db", "SELECT title FROM articles")}
        assert {"Normal story from normal-a", "Normal story from normal-b"} <= stored
        shown = subprocess.run(
            [str(AGGREGATOR), "--config", str(config), "status"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "daemon: running" in shown.stdout, shown.stdout
        assert "10 failing" in shown.stdout, shown.stdout
        failing = query(
            tmp_path / "news.db",
            "SELECT id, name, location, last_error FROM sources WHERE error_count > 0",
        )
        entity_feeds = {f"quadratic-{name}" for name in ENCODINGS} | {"entity-50mb"}
        assert {name for _, name, _, _ in failing} == entity_feeds
        for feed_id, name, location, error in failing:  # each named, with its error
            assert f"  feed {feed_id} {name} ({location}) failed " in shown.stdout
            assert f"\n    {error}\n" in shown.stdout, shown.stdout
    finally:
        assert daemon.stop() == 0, daemon.text()[-4000:]
