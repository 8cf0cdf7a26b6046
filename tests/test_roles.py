"""Several nodes as real processes (issue 17): `aggregator run --role fetch|dedup` on
one PostgreSQL database, against feeds served on 127.0.0.1.

Two fetch nodes and two dedup nodes (one writer, one standby) ingest 24 feeds of
12 entries. The active writer is killed with SIGKILL once some articles are
stored, then one fetch node: the standby takes over, the surviving fetch node
polls the dead one's feeds when its leases run out, and in the end every entry
is stored exactly once (the served entries are the oracle), nothing is left
staged, and the nodes still running stop with exit code 0 on SIGTERM.
"""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import PostgresURL
from bench.corpus import Corpus
from tests.conftest import AGGREGATOR, SEEDS
from tests.daemons import Daemon, query, wait_for, wait_for_progress, write_config
from tests.postgres import PostgresServer

FEEDS, ENTRIES = 24, 12
WORDS = (
    "harbour council ferry storm budget rail union court summit grain border energy school "
    "doctor airport village election tariff museum bridge factory harvest treaty senate"
).split()


def _entry_text(feed: int, n: int) -> str:
    """Three paragraphs no other entry shares (so none is a copy of another)."""
    words = [WORDS[(feed * 7 + n * 3 + k) % len(WORDS)] for k in range(60)]
    return "".join(
        f"<p>Feed {feed} item {n} part {p}: {' '.join(words[p * 20 : p * 20 + 20])}.</p>"
        for p in range(3)
    )


def _rss(feed: int) -> str:
    items = "".join(
        f'<item><title>Feed {feed} story {n}</title><guid isPermaLink="false">f{feed}-e{n}</guid>'
        f"<pubDate>Tue, 01 Dec 2026 {n:02d}:00:00 GMT</pubDate>"
        f"<description><![CDATA[{_entry_text(feed, n)}]]></description></item>"
        for n in range(ENTRIES)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>'
        f"<link>http://example.invalid/{feed}</link><description>d</description>"
        f"{items}</channel></rss>"
    )


@pytest.fixture
def pg_url(postgres: PostgresServer) -> PostgresURL:
    return PostgresURL(postgres.database())


def _config(
    tmp_path: Path, name: str, url: PostgresURL, httpserver: HTTPServer, feeds: int = FEEDS
) -> Path:
    urls = ", ".join(f'"{httpserver.url_for(f"/feed{i}.xml")}"' for i in range(feeds))
    return write_config(
        tmp_path / f"{name}.toml",
        "[daemon]\ntick_seconds = 0.2\nheartbeat_seconds = 0.3\nlease_seconds = 2\n"
        f'[feeds]\nurls = [{urls}]\nallow = ["localhost:{httpserver.port}", '
        f'"127.0.0.1:{httpserver.port}"]\n'
        "min_interval_minutes = 60\ndefault_interval_minutes = 60\n",
        url,
    )


def _node(tmp_path: Path, name: str, role: str, url: PostgresURL, http: HTTPServer) -> Daemon:
    config = _config(tmp_path, name, url, http)
    return Daemon(config, db=url, args=("run", "--role", role))


@pytest.mark.slow  # four node processes and a PostgreSQL database
def test_fetch_and_dedup_nodes_store_every_entry_once_through_kills(
    tmp_path: Path, pg_url: PostgresURL, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    for i in range(FEEDS):
        httpserver.expect_request(f"/feed{i}.xml").respond_with_data(
            _rss(i), content_type="application/rss+xml"
        )
    writer = _node(tmp_path, "dedup1", "dedup", pg_url, httpserver)
    daemons.append(writer)
    writer.wait_for_log("the writer now")
    standby = _node(tmp_path, "dedup2", "dedup", pg_url, httpserver)
    daemons.append(standby)
    standby.wait_for_log("dedup node")
    fetchers = [_node(tmp_path, f"fetch{k}", "fetch", pg_url, httpserver) for k in range(2)]
    daemons.extend(fetchers)

    def stored() -> int:
        rows = query(pg_url, "SELECT count(*) FROM articles")
        return int(str(rows[0][0])) if rows else 0

    wait_for(lambda: stored() >= 40, writer.said("40 articles stored"))
    # A fetch node yields the CPU to the writer (daemon.fetch_nice, 10 by default).
    for node in fetchers:
        node.wait_for_log("at nice +10")
        niceness = os.getpriority(os.PRIO_PROCESS, node.process.pid)
        assert niceness - os.getpriority(os.PRIO_PROCESS, writer.process.pid) == 10
    writer.process.send_signal(signal.SIGKILL)
    writer.process.wait()
    standby.wait_for_log("the writer now")
    fetchers[0].process.send_signal(signal.SIGKILL)
    fetchers[0].process.wait()

    wait_for_progress(stored, FEEDS * ENTRIES, standby.said("every entry stored"))
    wait_for(
        lambda: query(pg_url, "SELECT count(*) FROM staged")[0][0] == 0,
        standby.said("nothing left staged"),
    )
    rows = query(pg_url, "SELECT count(*), count(DISTINCT a.identity) FROM articles a")
    assert rows == [(FEEDS * ENTRIES, FEEDS * ENTRIES)]
    identities = {str(r[0]) for r in query(pg_url, "SELECT identity FROM articles")}
    assert identities == {f"f{f}-e{n}" for f in range(FEEDS) for n in range(ENTRIES)}
    # Every feed's poll was written (its body hash kept), by one node or another.
    hashed = query(pg_url, "SELECT count(*) FROM sources WHERE body_hash IS NOT NULL")
    assert hashed == [(FEEDS,)]
    # `status` on any machine sees the live nodes: the writer, the standby gone (it is
    # the writer now), one fetch node; the killed ones stopped beating.
    shown = _status(standby.config)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    assert report["running"] and report["health"] == "healthy"
    live = {(n["role"], n["pid"]) for n in report["nodes"]}
    assert live == {("dedup", standby.process.pid), ("fetch", fetchers[1].process.pid)}
    [dedup] = [n for n in report["nodes"] if n["role"] == "dedup"]
    assert dedup["state"] == "writer"
    assert report["queue"]["batches"] == 0
    # A single-process daemon would poll the same feeds: it refuses, in one line.
    beside = subprocess.run(
        [str(AGGREGATOR), "--config", str(standby.config), "run"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert beside.returncode != 0
    assert "served by 2 nodes of roles" in beside.stderr.strip().splitlines()[-1], beside.stderr
    for node in (standby, fetchers[1]):
        assert node.stop() == 0, node.text()[-3000:]
    stopped = _status(standby.config, as_json=False)
    assert stopped.returncode == 3, stopped.stdout  # not running: no live node
    assert "daemon: not running" in stopped.stdout


def _status(config: Path, as_json: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(AGGREGATOR), "--config", str(config), "status"]
    return subprocess.run(
        command + (["--json"] if as_json else []),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_role_on_sqlite_is_a_one_line_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "agg.toml", "")
    result = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "run", "--role", "fetch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "--role fetch needs a PostgreSQL database" in line


# The days the seeds were published, as their texts tell (tests/test_story_layer.py).
SEED_DAYS = {
    "000": "Wed, 09 Dec 2015 09:00:00 GMT",
    "001": "Wed, 18 Nov 2015 09:00:00 GMT",
    "002": "Thu, 08 Oct 2015 09:00:00 GMT",
    "003": "Thu, 08 Oct 2015 12:00:00 GMT",
    "004": "Fri, 20 Nov 2015 09:00:00 GMT",
}


def _items(docs: list[tuple[str, str, list[str], str]]) -> str:
    """RSS items: (guid, title, paragraphs, RFC 822 date)."""
    return "".join(
        f'<item><title>{html.escape(title)}</title><guid isPermaLink="false">{guid}</guid>'
        f"<pubDate>{day}</pubDate><description><![CDATA["
        + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        + "]]></description></item>"
        for guid, title, paragraphs, day in docs
    )


def _channel(name: str, items: str) -> str:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>http://example.invalid/{name}</link><description>d</description>"
        f"{items}</channel></rss>"
    )


def _served_corpus(httpserver: HTTPServer) -> int:
    """The seeds as one feed, and 240 synthetic articles with planted passages
    (bench/corpus.py) as 12 feeds of 20: the number of feeds served."""
    seeds = []
    for path in sorted(SEEDS.glob("*.txt")):
        title, *paragraphs = [x for x in path.read_text(encoding="utf-8").splitlines() if x]
        seeds.append((path.name[:3], title, paragraphs, SEED_DAYS[path.name[:3]]))
    httpserver.expect_request("/feed0.xml").respond_with_data(
        _channel("seeds", _items(seeds)), content_type="application/rss+xml"
    )
    feeds: dict[str, list[tuple[str, str, list[str], str]]] = {}
    for doc in Corpus(240, sources=12).documents():
        title, *paragraphs = doc.content.decode("utf-8").splitlines()
        day = doc.modified_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
        feeds.setdefault(doc.source_location, []).append((doc.identity, title, paragraphs, day))
    for n, items in enumerate(feeds.values(), start=1):
        httpserver.expect_request(f"/feed{n}.xml").respond_with_data(
            _channel(f"synthetic{n}", _items(items)), content_type="application/rss+xml"
        )
    return len(feeds) + 1


def _outcome(url: PostgresURL) -> tuple[set[tuple[frozenset[str], str]], int, set[frozenset[str]]]:
    """Passage clusters with their canonical copies, the number of passage carriers
    (entry identities), and the event stories of the seeds."""
    members: dict[object, set[str]] = {}
    for cluster, identity in query(
        url,
        "SELECT m.cluster_id, a.identity FROM cluster_members m "
        "JOIN articles a ON a.id = m.article_id",
    ):
        members.setdefault(cluster, set()).add(str(identity))
    canonical = dict(
        query(
            url,
            "SELECT c.id, a.identity FROM clusters c JOIN articles a "
            "ON a.id = c.canonical_article_id",
        )
    )
    clusters = {(frozenset(m), str(canonical[c])) for c, m in members.items()}
    carriers = int(str(query(url, "SELECT count(*) FROM passage_carriers")[0][0]))
    stories: dict[object, set[str]] = {}
    for story, identity in query(
        url,
        "SELECT e.story_id, a.identity FROM event_members e JOIN articles a "
        "ON a.id = e.article_id WHERE a.identity IN ('000', '001', '002', '003', '004')",
    ):
        stories.setdefault(story, set()).add(str(identity))
    return clusters, carriers, {frozenset(s) for s in stories.values()}


@pytest.mark.slow  # a poll, then two node processes, on two PostgreSQL databases
def test_nodes_find_the_same_passages_clusters_and_stories_as_one_process(
    tmp_path: Path, postgres: PostgresServer, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    """The seeds and a corpus with planted passages, served as 13 feeds: `aggregator
    poll` in one process, and one fetch node with one dedup writer, give the same
    passage clusters with the same canonical copies, the same passage carriers,
    and the same event stories of the seeds (one feed, so one group). Event stories
    across many feeds depend on the order feeds finish, in one process too (two
    single-process polls of this corpus differ in 3 stories), so they are not
    compared beyond the seeds."""
    count = _served_corpus(httpserver)
    single, split = PostgresURL(postgres.database()), PostgresURL(postgres.database())
    one = _config(tmp_path, "one", single, httpserver, count)
    polled = subprocess.run(
        [str(AGGREGATOR), "--config", str(one), "poll", "--all"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert polled.returncode == 0, polled.stderr[-3000:]
    expected = 5 + 240
    assert query(single, "SELECT count(*) FROM articles") == [(expected,)]
    writer = Daemon(
        _config(tmp_path, "w", split, httpserver, count), db=split, args=("run", "--role", "dedup")
    )
    daemons.append(writer)
    writer.wait_for_log("the writer now")
    fetch = Daemon(
        _config(tmp_path, "f", split, httpserver, count), db=split, args=("run", "--role", "fetch")
    )
    daemons.append(fetch)

    def stored() -> int:
        return int(str(query(split, "SELECT count(*) FROM articles")[0][0]))

    wait_for_progress(stored, expected, writer.said(f"{expected} articles stored"))
    wait_for(lambda: query(split, "SELECT count(*) FROM staged") == [(0,)], "nothing staged")
    clusters, carriers, stories = _outcome(single)
    assert len(clusters) > 10 and carriers  # the planted passages and the seeds' were found
    assert any(members == {"001", "004"} for members, _ in clusters)
    assert stories == {frozenset({"000"}), frozenset({"001", "004"}), frozenset({"002", "003"})}
    assert _outcome(split) == (clusters, carriers, stories)
    for node in (fetch, writer):
        assert node.stop() == 0


@pytest.mark.slow  # two scheduler processes on PostgreSQL
def test_one_scheduler_writes_the_digest_and_a_standby_takes_over(
    tmp_path: Path, pg_url: PostgresURL, daemons: list[Daemon]
) -> None:
    """The seeds stored, then two scheduler nodes: one writes the digest due (the
    last one was never written) and the stories feed; the other stands by, and
    takes over when the first is killed with SIGKILL."""
    digests = tmp_path / "digests"
    body = (
        "[daemon]\ntick_seconds = 0.2\nheartbeat_seconds = 0.3\n"
        f'[digest]\ndirectory = "{digests}"\n'
    )
    configs = [write_config(tmp_path / f"sched{k}.toml", body, pg_url) for k in range(2)]
    ingested = subprocess.run(
        [str(AGGREGATOR), "--config", str(configs[0]), "ingest", str(SEEDS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ingested.returncode == 0, ingested.stderr
    first = Daemon(configs[0], db=pg_url, args=("run", "--role", "scheduler"))
    daemons.append(first)
    first.wait_for_log("the scheduler now")
    first.wait_for_log("digest written")
    second = Daemon(configs[1], db=pg_url, args=("run", "--role", "scheduler"))
    daemons.append(second)
    second.wait_for_log("scheduler node")
    atom = digests / "stories.atom"
    wait_for(atom.exists, first.said("the stories feed"))
    assert "Iraq closes airspace" in atom.read_text(encoding="utf-8")
    assert sorted(p.suffix for p in digests.glob("digest-*")) == [".html", ".md"]
    assert "the scheduler now" not in second.text()  # it stands by
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    second.wait_for_log("the scheduler now")
    assert second.text().count("digest written") == 0  # the day's digest was written once
    assert second.stop() == 0
