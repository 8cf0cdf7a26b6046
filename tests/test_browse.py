"""`aggregator browse`: Datasette on a seeds database, as a real process on 127.0.0.1.

Every canned query is checked through Datasette's JSON API against what this file
works out itself from the database with plain sqlite3 and from what it planted (the
seeds' story, an outlet's footer, two feeds); then search, labels, hidden tables,
that writes are refused and the file is unchanged, and a headless Chromium
screenshot of the story page (test-artifacts/datasette-story.png).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator.config import Config
from aggregator.ingest.feeds import add_feed
from aggregator.storage.store import Store
from tests.chromium import ARTIFACTS, needs_chromium, render
from tests.clirun import run_cli
from tests.conftest import AGGREGATOR, REPO, SEEDS, ingest, ingest_docs, text_doc

FOOTER = (
    "Reporting by the wire desk staff in the capital city newsroom, editing by the night "
    "shift editors; contact the desk for corrections and further information."
)
_VOCAB = [f"term{i}" for i in range(3000)]


def _filler(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.sample(_VOCAB, 18)).capitalize() + "." for _ in range(2))


@dataclass(frozen=True)
class Browsed:
    db: Path
    url: str  # http://127.0.0.1:PORT/aggregator
    fingerprint: tuple[int, int, str]  # the file's size, mtime and hash before serving
    process: subprocess.Popen[str]


def _fingerprint(path: Path) -> tuple[int, int, str]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def _build(db: Path) -> None:
    """Seeds, two articles of one outlet sharing a footer, a failing and a quiet feed."""
    config = replace(Config(), database=db, folders=(SEEDS,))
    ingest(config, SEEDS)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    ingest_docs(
        config,
        [
            text_doc("/t/paper", name, f"Paper {name}", [_filler(n), _filler(n + 10), FOOTER], when)
            for n, name in enumerate(["p1", "p2"])
        ],
    )
    with Store(db, config.dedup.minhash) as store:
        add_feed(store, "https://wire.example/rss", "Wire")
        add_feed(store, "https://quiet.example/atom", "Quiet")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE sources SET last_error = 'HTTP 500', error_count = 3, "
            "next_check_at = '2030-01-01T00:00:00Z' WHERE name = 'Wire'"
        )
        conn.execute(
            "UPDATE sources SET last_success_at = '2026-01-01T00:00:00Z', "
            "last_warning = '2 entries not taken' WHERE name = 'Quiet'"
        )
    conn.close()


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browsed]:
    """`aggregator browse --port 0` on a fresh database; stopped with Ctrl-C at the end."""
    folder = tmp_path_factory.mktemp("browse")
    db = folder / "news.db"  # not aggregator.db: the database is still named aggregator
    _build(db)
    before = _fingerprint(db)
    stderr = (folder / "stderr.txt").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [str(AGGREGATOR), "--db", str(db), "browse", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "HOME": str(folder)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "read-only at http://127.0.0.1:" in line, (folder / "stderr.txt").read_text()
        url = line.split(" at ", 1)[1].split()[0]
        with httpx.Client(trust_env=False) as client:
            deadline = time.monotonic() + 30
            while client.get(url.rsplit("/", 1)[0] + "/-/versions.json").status_code != 200:
                assert time.monotonic() < deadline, "Datasette did not answer in 30 s"
                time.sleep(0.1)
        yield Browsed(db, url, before, process)
    finally:
        if process.poll() is None:
            _stop(process)
        if process.stdout:
            process.stdout.close()
        stderr.close()


def _get(url: str, **params: Any) -> Any:
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _query(browsed: Browsed, name: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _get(f"{browsed.url}/{name}.json", _shape="array", **params)
    return rows


def _rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _article_id(db: Path, location_end: str) -> int:
    [row] = _rows(db, "SELECT id FROM articles WHERE location LIKE ?", f"%{location_end}")
    return int(row["id"])


def _texts(db: Path) -> dict[int, str]:
    """Each passage carrier's text, cut here from its paragraph."""
    return {
        r["id"]: r["text"][r["char_start"] : r["char_end"]]
        for r in _rows(
            db,
            "SELECT c.id, c.char_start, c.char_end, p.text FROM passage_carriers c "
            "JOIN paragraphs p ON p.id = c.paragraph_id",
        )
    }


CHECKED = {"stories_of_a_day", "story", "article_duplicates", "boilerplate", "feed_health"}


def test_every_canned_query_is_checked_here(browsed: Browsed) -> None:
    """A query added to aggregator/web/metadata.yaml needs its test in this file."""
    queries = _get(f"{browsed.url}.json")["queries"]
    assert {q["name"] for q in queries} == CHECKED


def test_stories_of_a_day_rank_like_the_digest(browsed: Browsed) -> None:
    """The digest's rules, worked out here: stories by sources, then latest arrival;
    then the articles with no partner, newest first."""
    articles = _rows(
        browsed.db,
        "SELECT a.id, a.published_at, a.first_seen_at, s.name AS source "
        "FROM articles a JOIN sources s ON s.id = a.source_id ORDER BY a.id",
    )
    first = _article_id(browsed.db, "001_a6bde1a4b5b05d85.txt")
    day = next(a["first_seen_at"][:10] for a in articles if a["id"] == first)
    until = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    story_of = dict(_rows(browsed.db, "SELECT article_id, cluster_id FROM cluster_members"))
    leader = dict(_rows(browsed.db, "SELECT id, canonical_article_id FROM clusters"))
    arrived = [a for a in articles if a["first_seen_at"][:10] == day]
    stories = []
    for story in sorted({story_of[a["id"]] for a in arrived if a["id"] in story_of}):
        members = [
            a for a in articles if story_of.get(a["id"]) == story and a["first_seen_at"] < until
        ]
        sources = len({a["source"] for a in members})
        latest = max(a["first_seen_at"] for a in members)
        stories.append((sources, latest, (story, leader[story], sources, len(members))))
    stories.sort(key=lambda s: s[1], reverse=True)
    stories.sort(key=lambda s: s[0], reverse=True)
    singles = sorted(
        (a for a in arrived if a["id"] not in story_of),
        key=lambda a: a["published_at"],
        reverse=True,
    )
    expected = [s[2] for s in stories] + [(None, a["id"], 1, 1) for a in singles]
    rows = _query(browsed, "stories_of_a_day", day=day)
    assert [(r["story"], r["article"], r["sources"], r["articles"]) for r in rows] == expected
    # The seeds' one story: 001 leads, 004 joined; 3 more seeds and 2 papers are alone.
    assert rows[0]["article"] == first and rows[0]["articles"] == 2
    assert len(rows) == 1 + 3 + 2
    assert _query(browsed, "stories_of_a_day", day="1999-01-01") == []


def test_the_story_shows_each_later_copy_beside_the_earlier_one(browsed: Browsed) -> None:
    first = _article_id(browsed.db, "001_a6bde1a4b5b05d85.txt")
    later = _article_id(browsed.db, "004_e5c7ce075aa33b3d.txt")
    [(cluster,)] = _rows(
        browsed.db, "SELECT cluster_id FROM cluster_members WHERE article_id = ?", first
    )
    texts = _texts(browsed.db)
    pairs = _rows(
        browsed.db,
        "SELECT id, matched_id, similarity, reason FROM passage_carriers "
        "WHERE article_id = ? AND matched_id IS NOT NULL ORDER BY id",
        later,
    )
    rows = _query(browsed, "story", cluster_id=cluster)
    assert [(r["article"], r["canonical"], r["passage"]) for r in rows[:1]] == [(first, 1, None)]
    got = {
        (
            r["article"],
            r["passage"],
            r["matched_article"],
            r["matched_passage"],
            r["similarity"],
            r["reason"],
        )
        for r in rows[1:]
    }
    assert got == {
        (later, texts[p["id"]], first, texts[p["matched_id"]], round(p["similarity"], 3), "linked")
        for p in pairs
    }
    assert len(rows) == 3 and {r["source"] for r in rows} == {"seeds"}
    partner = next(r for r in rows[1:] if "constructive partner" in r["passage"])
    assert "the USA would work" in partner["passage"]
    assert "the US would work" in partner["matched_passage"]
    assert _query(browsed, "story", cluster_id=999) == []


def test_an_article_s_duplicates_are_every_other_copy(browsed: Browsed) -> None:
    first = _article_id(browsed.db, "001_a6bde1a4b5b05d85.txt")
    later = _article_id(browsed.db, "004_e5c7ce075aa33b3d.txt")
    texts = _texts(browsed.db)
    carriers = _rows(browsed.db, "SELECT * FROM passage_carriers WHERE article_id = ?", first)
    expected = set()
    for mine in carriers:
        for other in _rows(
            browsed.db,
            "SELECT * FROM passage_carriers WHERE passage_id = ? AND article_id != ?",
            mine["passage_id"],
            first,
        ):
            direct = other if other["matched_id"] == mine["id"] else None
            expected.add(
                (
                    mine["passage_id"],
                    texts[mine["id"]],
                    other["article_id"],
                    texts[other["id"]],
                    round(direct["similarity"], 3) if direct else None,
                )
            )
    rows = _query(browsed, "article_duplicates", article_id=first)
    assert {
        (r["passage"], r["text"], r["other_article"], r["other_text"], r["similarity"])
        for r in rows
    } == expected
    assert len(rows) == 2 and {r["other_article"] for r in rows} == {later}
    lonely = _article_id(browsed.db, "000_2014b5a3539f3a02.txt")
    assert _query(browsed, "article_duplicates", article_id=lonely) == []


def test_boilerplate_lists_the_outlet_s_footer(browsed: Browsed) -> None:
    p1, p2 = _article_id(browsed.db, "/t/paper/p1.txt"), _article_id(browsed.db, "/t/paper/p2.txt")
    rows = _query(browsed, "boilerplate")
    assert [
        (r["reason"], r["article"], r["matched_article"], r["source"], r["text"]) for r in rows
    ] == [("boilerplate", p2, p1, "paper", FOOTER)]


def test_feed_health_puts_the_failing_feed_first(browsed: Browsed) -> None:
    rows = _query(browsed, "feed_health")
    assert [
        (r["name"], r["url"], r["enabled"], r["error_count"], r["last_error"]) for r in rows
    ] == [
        ("Wire", "https://wire.example/rss", 1, 3, "HTTP 500"),
        ("Quiet", "https://quiet.example/atom", 1, 0, None),
    ]
    assert rows[0]["next_check_at"] == "2030-01-01T00:00:00Z"
    assert rows[1]["last_success_at"] == "2026-01-01T00:00:00Z"
    assert rows[1]["last_warning"] == "2 entries not taken"


def test_search_labels_and_hidden_tables(browsed: Browsed) -> None:
    found = _get(f"{browsed.url}/articles.json", _search="constructive", _shape="array")
    bodies = _rows(browsed.db, "SELECT id, body FROM articles")
    assert sorted(r["id"] for r in found) == sorted(
        r["id"] for r in bodies if "constructive" in r["body"].lower()
    )
    assert len(found) == 2
    members = _get(f"{browsed.url}/cluster_members.json", _labels="on", _shape="array")
    titles = dict(_rows(browsed.db, "SELECT id, title FROM articles"))
    assert {m["article_id"]["label"] for m in members} == {
        titles[m["article_id"]["value"]] for m in members
    }
    articles = _get(f"{browsed.url}/articles.json", _labels="on", _shape="array", _size=1)
    assert articles[0]["source_id"]["label"] in {"seeds", "paper"}
    tables = {t["name"]: t["hidden"] for t in _get(f"{browsed.url}.json")["tables"]}
    for internal in (
        "units",
        "unit_signatures",
        "meta",
        "service_state",
        "articles_fts",
        "articles_fts_data",
        "sqlite_sequence",
    ):
        assert tables[internal], internal
    for shown in ("articles", "sources", "clusters", "passages", "passage_carriers"):
        assert not tables[shown], shown
    with httpx.Client(trust_env=False) as client:
        page = client.get(browsed.url).text
        home = client.get(browsed.url.rsplit("/", 1)[0] + "/").text
    assert 'href="/aggregator/articles"' in page
    assert "/aggregator/unit_signatures" not in page and "unit_signatures" not in home
    assert _get(browsed.url.rsplit("/", 1)[0] + "/-/plugins.json") == [], "no plugins loaded"


def test_writes_are_refused_and_the_file_is_unchanged(browsed: Browsed) -> None:
    with httpx.Client(trust_env=False) as client:
        posted = client.post(f"{browsed.url}/story", data={"cluster_id": "1"})
        deleted = client.delete(f"{browsed.url}/articles")
        # Datasette lets WITH ... through as a read; SQLite refuses the write.
        sneaky = client.get(
            f"{browsed.url}.json", params={"sql": "WITH x AS (SELECT 1) DELETE FROM articles"}
        ).json()
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert deleted.status_code == 405
    assert not sneaky["ok"] and "readonly" in sneaky["error"]
    assert _rows(browsed.db, "SELECT count(*) FROM articles")[0][0] == 7
    assert _fingerprint(browsed.db) == browsed.fingerprint


def test_datasette_s_own_write_connection_is_read_only(browsed: Browsed) -> None:
    from aggregator.web.app import DATABASE_NAME, build_datasette

    ds = build_datasette(browsed.db, settings={"num_sql_threads": 0})
    db = ds.get_database(DATABASE_NAME)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            asyncio.run(db.execute_write("DELETE FROM articles"))
    finally:
        db.close()
    assert _fingerprint(browsed.db) == browsed.fingerprint


@needs_chromium
def test_the_story_page_renders_in_headless_chromium(browsed: Browsed, tmp_path: Path) -> None:
    first = _article_id(browsed.db, "001_a6bde1a4b5b05d85.txt")
    [(cluster,)] = _rows(
        browsed.db, "SELECT cluster_id FROM cluster_members WHERE article_id = ?", first
    )
    page = f"{browsed.url}/story?cluster_id={cluster}"
    screenshot = ARTIFACTS / "datasette-story.png"
    dom = render(page, screenshot, (1400, 1000), tmp_path)
    assert "One story, side by side" in dom and "constructive partner" in dom
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1400, 1000)
    assert len(png) > 30_000, "a blank page compresses to a few kilobytes"


def test_a_missing_database_is_one_line_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    result = run_cli("--db", db, "browse")
    assert result.returncode == 1
    assert (
        result.stderr == f"aggregator: error: database {db}: does not exist "
        "(run `aggregator ingest` first)\n"
    )
    assert not db.exists()


def test_an_older_database_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(REPO / "tests" / "data" / "schema-v5-seeds-third.db", db)
    before = _fingerprint(db)
    result = run_cli("--db", db, "browse")
    assert result.returncode == 1 and "schema version 5 is older" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert _fingerprint(db) == before and not list(tmp_path.glob("*.bak"))


def test_without_the_web_extra_it_says_what_to_install(tmp_path: Path) -> None:
    hide = (
        "import sys; sys.modules['datasette'] = None; from aggregator.cli.main import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide, "--db", str(tmp_path / "x.db"), "browse"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "aggregator: error: Datasette is not installed: pip install 'aggregator[web]'\n"
    )


def test_the_readme_one_liner_for_plain_datasette(browsed: Browsed, tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    [line] = [x for x in text.splitlines() if x.startswith("datasette serve ")]
    db = tmp_path / "aggregator.db"  # the name the metadata files its queries under
    shutil.copy(browsed.db, db)
    before = _fingerprint(db)
    argv = [a if a != "var/aggregator.db" else str(db) for a in shlex.split(line)]
    datasette = Path(sys.executable).parent / "datasette"
    out = subprocess.run(
        [str(datasette), *argv[1:], "--get", "/aggregator/feed_health.json?_shape=array"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert [row["name"] for row in json.loads(out)] == ["Wire", "Quiet"]
    assert _fingerprint(db) == before


def test_the_check_before_browsing_reads_the_file_only(tmp_path: Path, store: Store) -> None:
    """`check_database` (in process): the current schema passes; another SQLite
    database, an older schema and a file that is no database are refused, and none
    of them is changed."""
    from aggregator.cli.browse import check_database
    from aggregator.errors import BrowseError, CorruptDatabaseError

    check_database(store.engine.path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # an empty file: a database of no schema
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, " * 256)
    old = tmp_path / "old.db"
    shutil.copy(REPO / "tests" / "data" / "schema-v5-seeds-third.db", old)
    for path, error, says in (
        (other, BrowseError, "not an aggregator database"),
        (garbage, CorruptDatabaseError, "corrupted"),
        (old, BrowseError, "schema version 5 is older"),
    ):
        before = _fingerprint(path)
        with pytest.raises(error, match=says):
            check_database(path)
        assert _fingerprint(path) == before


def test_a_postgresql_database_is_one_line_saying_browse_serves_sqlite_files() -> None:
    result = run_cli("--db", "postgresql://news:pw@db.example.invalid/news", "browse")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "the browser view serves SQLite files only" in line
    assert "postgresql://news:***@db.example.invalid/news" in line
