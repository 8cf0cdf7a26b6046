"""Acceptance on the seed corpus: the user's own example must be found, and nothing else."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from aggregator.cli.reports import duplicate_rows, list_clusters
from aggregator.config import Config, Database, PostgresURL
from tests.conftest import AGGREGATOR, REPO, SEEDS, OpenStore, ingest

pytestmark = pytest.mark.both_stores


def _seed_no(location: str) -> str:
    return Path(location).name[:3]


def test_seeds_cluster_001_with_004_and_nothing_else(config: Config, open_store: OpenStore) -> None:
    outcomes = ingest(config, SEEDS)
    assert [o.status for o in outcomes] == ["new"] * 5
    store = open_store()
    clusters = list_clusters(store)
    assert len(clusters) == 1
    members = sorted(_seed_no(a["location"]) for a in clusters[0]["articles"])
    assert members == ["001", "004"]
    pairs = {
        frozenset((_seed_no(r["location"]), _seed_no(r["other_location"])))
        for r in duplicate_rows(store, unlinked=True)
    }
    assert pairs == {frozenset(("001", "004"))}


def test_seeds_duplicates_show_both_shared_passages(config: Config, open_store: OpenStore) -> None:
    ingest(config, SEEDS)
    store = open_store()
    rows = duplicate_rows(store)
    assert len(rows) == 2
    by_side = {_seed_no(r["location"]): r for r in rows}
    partner = next(r for r in rows if "constructive partner" in r["passage"])
    texts = {_seed_no(partner["location"]): partner, _seed_no(partner["other_location"]): partner}
    assert set(texts) == {"001", "004"}
    seed_001 = (SEEDS / "001_a6bde1a4b5b05d85.txt").read_text().splitlines()
    seed_004 = (SEEDS / "004_e5c7ce075aa33b3d.txt").read_text().splitlines()
    # 001's whole paragraph against the middle of 004's longer paragraph.
    side_001 = (
        partner["passage"] if _seed_no(partner["location"]) == "001" else partner["other_passage"]
    )
    side_004 = partner["other_passage"] if side_001 is partner["passage"] else partner["passage"]
    paragraph_001 = next(p for p in seed_001 if "constructive partner" in p)
    paragraph_004 = next(p for p in seed_004 if "constructive partner" in p)
    assert side_001.startswith("While doubts remain about whether the US would")
    assert side_001 in paragraph_001
    assert "the USA would work" in side_004
    assert side_004 in paragraph_004
    assert not paragraph_004.startswith(side_004), "passage sits inside 004's paragraph"
    assert partner["similarity"] >= 0.8
    planes = next(r for r in rows if "French planes" in r["passage"])
    both = planes["passage"] + " | " + planes["other_passage"]
    assert "oil targets in Deir el-Zour" in planes["passage"]
    assert "oil targets in Deir el-Zour" in planes["other_passage"]
    assert "United States and French planes" in both and "U.S. and French planes" in both
    assert set(by_side) <= {"001", "004"}


def _counts(db: Database) -> dict[str, int]:
    """Rows per table, read by another client: the sqlite-utils CLI, or psycopg."""
    if isinstance(db, PostgresURL):
        with psycopg.connect(db.url) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            ).fetchall()
            return {
                t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # type: ignore[index]
                for (t,) in tables
            }
    out = subprocess.run(
        [str(AGGREGATOR.parent / "sqlite-utils"), "tables", str(db), "--counts"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {row["table"]: row["count"] for row in json.loads(out)}


def test_reingesting_the_same_folder_adds_no_rows(config: Config) -> None:
    ingest(config, SEEDS)
    before = _counts(config.database)
    outcomes = ingest(config, SEEDS)
    assert {o.status for o in outcomes} == {"unchanged"}
    assert _counts(config.database) == before
    assert before["articles"] == 5


def test_make_run_prints_the_story_and_both_passages(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    base = [str(AGGREGATOR), "--config", str(REPO / "config" / "aggregator.toml"), "--db", str(db)]
    subprocess.run([*base, "ingest"], check=True, capture_output=True)
    clusters = subprocess.run([*base, "clusters"], check=True, capture_output=True, text=True)
    assert "2 articles" in clusters.stdout
    assert "001_a6bde1a4b5b05d85.txt" in clusters.stdout
    assert "004_e5c7ce075aa33b3d.txt" in clusters.stdout
    dupes = subprocess.run(
        [*base, "duplicates", "--json"], check=True, capture_output=True, text=True
    )
    rows = json.loads(dupes.stdout)
    assert len(rows) == 2
