"""The two stores side by side: the same input gives the same stories, passages and digest.

Each test feeds one SQLite file and one new PostgreSQL database the same input,
in the same order, and compares what the CLI's reports and the digest make of
them. Nothing is compared with a stored expectation: each store is the other's
oracle (and the SQLite side is checked on its own by the rest of the suite).
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.cli.reports import duplicate_rows, list_clusters, passage_groups
from aggregator.config import Config, PostgresURL
from aggregator.digest.render import to_atom, to_html, to_markdown, to_text
from aggregator.digest.select import build_digest
from aggregator.model import format_time
from aggregator.storage.store import Store
from tests.conftest import AGGREGATOR, SEEDS, THIRD_OUTLET, ingest, needs_tool
from tests.daemons import article
from tests.postgres import INITDB, PostgresServer

pytestmark = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
VIEW_QUERIES = (
    "select cluster_id, canonical, source, title, location from cluster_articles",
    "select similarity, reason, source, title, passage, other_source, other_title, "
    "other_passage from duplicate_passages",
)


@pytest.fixture
def pair(config: Config, postgres: PostgresServer) -> tuple[Config, Config]:
    """The test's SQLite configuration and the same on a new PostgreSQL database."""
    return config, replace(config, database=PostgresURL(postgres.database()))


def _reports(config: Config) -> dict[str, object]:
    with Store(config.database, config.dedup.minhash) as store:
        with store.write():  # one arrival time, so that one digest window holds all
            store.execute("UPDATE articles SET first_seen_at = ?", (format_time(DAY),))
        digest = build_digest(store, DAY - timedelta(hours=1), DAY + timedelta(hours=1))
        return {
            "clusters": list_clusters(store),
            "duplicates": duplicate_rows(store),
            "passages": passage_groups(store),
            "counts": store.counts(),
            "digest": [to_html(digest), to_markdown(digest), to_text(digest)],
            "atom": to_atom(digest, "urn:uuid:00000000-0000-4000-8000-000000000000"),
            # The README's queries of the inspection views, as a user types them.
            "views": [store.execute(q).fetchall() for q in VIEW_QUERIES],
        }


def test_the_seeds_give_the_same_story_passages_and_digest(pair: tuple[Config, Config]) -> None:
    sqlite, postgres = pair
    for config in pair:
        ingest(config, SEEDS)
    here, there = _reports(sqlite), _reports(postgres)
    assert [len(c["articles"]) for c in here["clusters"]] == [2]  # type: ignore[index,attr-defined]
    assert there == here


def test_a_syndicated_passage_and_its_edits_give_the_same_stories(
    pair: tuple[Config, Config], tmp_path: Path
) -> None:
    """40 outlets in one folder; one wire paragraph in 30 of them, edited in some, inside
    their own paragraphs in others; then the seeds and a third outlet."""
    rng = random.Random(5)
    folder = tmp_path / "outlets"
    folder.mkdir()
    wire = article(random.Random(99), 0).splitlines()[1]
    for n in range(40):
        lines = article(rng, n).splitlines()
        if n < 30:
            carried = wire if n % 4 else wire.replace(wire.split()[3], "reportedly", 1)
            lines.insert(2, carried if n % 5 else f"{lines.pop(2)} {carried}")
        (folder / f"outlet{n:02d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for config in pair:
        ingest(config, folder, SEEDS, THIRD_OUTLET)
    here, there = _reports(pair[0]), _reports(pair[1])
    assert max(len(g["carriers"]) for g in here["passages"]) >= 25  # type: ignore[attr-defined,index]
    assert there == here


def _feed(titles: list[str]) -> str:
    items = "".join(
        f"<item><guid>g{n}</guid><title>{t}</title><link>https://example.org/{n}</link>"
        f"<description>{article(random.Random(n), n).splitlines()[1]}</description></item>"
        for n, t in enumerate(titles)
    )
    return f'<rss version="2.0"><channel><title>Local</title>{items}</channel></rss>'


def test_aggregator_poll_on_postgresql_stores_what_sqlite_stores(
    pair: tuple[Config, Config], httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The CLI on a `database = "postgresql://..."` configuration polls feeds."""
    httpserver.expect_request("/feed").respond_with_data(
        _feed(["Bridge opens", "Harbour closes", "Grain prices rise"]),
        content_type="application/rss+xml",
    )
    outputs = []
    for n, config in enumerate(pair):
        path = tmp_path / f"agg{n}.toml"
        path.write_text(
            f'database = "{config.database}"\n[feeds]\n'
            f'urls = ["{httpserver.url_for("/feed")}"]\nallow = ["localhost:{httpserver.port}"]\n',
            encoding="utf-8",
        )
        run = subprocess.run(
            [str(AGGREGATOR), "--config", str(path), "poll", "--all"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        outputs.append(run.stderr.splitlines()[-1])
        with Store(config.database, config.dedup.minhash) as store:
            titles = [r[0] for r in store.execute("SELECT title FROM articles ORDER BY title")]
        assert titles == ["Bridge opens", "Grain prices rise", "Harbour closes"]
    assert outputs[0] == outputs[1] == "1 feed polled, 0 failed"
