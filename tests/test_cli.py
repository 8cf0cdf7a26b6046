"""The command line: help texts, database selection, JSON output and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from aggregator import __version__
from aggregator.cli.main import cli
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
REPO_CONFIG = REPO / "config" / "aggregator.toml"
AGGREGATOR = Path(sys.executable).parent / "aggregator"

CLUSTER_FIELDS = {"id", "title", "size", "sources", "latest", "articles"}
CLUSTER_ARTICLE_FIELDS = {"id", "canonical", "source", "title", "published_at", "location"}
DUPLICATE_FIELDS = {
    "article_id",
    "title",
    "location",
    "passage",
    "other_article_id",
    "other_title",
    "other_location",
    "other_passage",
    "similarity",
}


def _commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(cli))
COMMAND_IDS = [" ".join(path) or "aggregator" for path, _ in ALL_COMMANDS]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}


def _run(
    *args: str | Path, env: dict[str, str] | None = None, new_process: bool = False
) -> subprocess.CompletedProcess[str]:
    """The console script's `main` (in this process unless `new_process`); the repo's
    config is always given, with --db where it matters."""
    return run_cli(*args, env=env if env is not None else _env(), new_process=new_process)


def _invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _no_aggregator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DB", raising=False)
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the five seed articles, shared by the read-only tests."""
    db = tmp_path_factory.mktemp("seeded") / "seeds.db"
    result = CliRunner().invoke(
        cli, ["--config", str(REPO_CONFIG), "--db", str(db), "ingest", str(SEEDS)]
    )
    assert result.exit_code == 0, result.output
    return db


def _json(db: Path, *args: str) -> Any:
    result = _invoke("--config", REPO_CONFIG, "--db", db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- help ------------------------------------------------------------------------------------


def test_the_group_has_every_documented_command() -> None:
    assert {" ".join(path) for path, _ in ALL_COMMANDS} >= {
        "ingest",
        "clusters",
        "cluster",
        "duplicates",
        "stats",
        "config",
        "config show",
    }


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=COMMAND_IDS)
def test_every_command_help_has_an_example(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help
    assert "Example" in command.help


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=COMMAND_IDS)
def test_help_option_works_for_every_command(path: tuple[str, ...], command: click.Command) -> None:
    result = _invoke("--config", REPO_CONFIG, *path, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert "Example" in result.stdout


def test_help_works_through_the_console_script() -> None:
    result = _run("--help", new_process=True)
    assert result.returncode == 0
    assert "ingest" in result.stdout
    assert result.stderr == ""


# -- version -----------------------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout == f"aggregator, version {__version__}\n"


# -- choosing the database ----------------------------------------------------------------------


def test_db_option_selects_the_database(tmp_path: Path) -> None:
    db = tmp_path / "chosen.db"
    result = _invoke("--config", REPO_CONFIG, "--db", db, "ingest", sorted(SEEDS.glob("*.txt"))[0])
    assert result.exit_code == 0, result.output
    assert db.is_file()
    stats = _json(db, "stats")
    assert isinstance(stats, dict)
    assert stats["database"] == str(db)
    assert stats["tables"]["articles"] == 1


def test_aggregator_db_env_selects_the_database(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    env = {"AGGREGATOR_DB": str(db)}
    result = _invoke("--config", REPO_CONFIG, "ingest", SEEDS, env=env)
    assert result.exit_code == 0, result.output
    assert db.is_file()
    stats = _invoke("--config", REPO_CONFIG, "stats", "--json", env=env)
    assert json.loads(stats.stdout)["tables"]["articles"] == 5


def test_db_option_wins_over_aggregator_db_env(tmp_path: Path) -> None:
    env = {"AGGREGATOR_DB": str(tmp_path / "env.db")}
    result = _invoke("--config", REPO_CONFIG, "--db", tmp_path / "opt.db", "ingest", SEEDS, env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "opt.db").is_file()
    assert not (tmp_path / "env.db").exists()


def test_aggregator_db_env_through_the_console_script(tmp_path: Path, seeded_db: Path) -> None:
    env = _env() | {"AGGREGATOR_DB": str(seeded_db)}
    result = _run("--config", REPO_CONFIG, "stats", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["database"] == str(seeded_db)


# -- reading a database that does not exist -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("clusters",), ("clusters", "--json"), ("cluster", "1"), ("duplicates",), ("stats",)],
    ids=lambda a: " ".join(a),
)
def test_reading_a_missing_database_is_a_one_line_error(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "missing.db"
    result = _run("--config", REPO_CONFIG, "--db", db, *args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"aggregator: error: database {db}: does not exist")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""
    assert not db.exists()


# -- typo'd paths: only the configured database's folder is created ----------------------------


@pytest.mark.parametrize(
    "args",
    [("ingest", SEEDS), ("rematch",), ("poll",)],
    ids=lambda a: str(a[0]),
)
def test_a_db_path_in_a_missing_folder_is_refused_and_nothing_created(
    tmp_path: Path, args: tuple[str | Path, ...]
) -> None:
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    for how in (("--db", db), ()):
        env = _env() if how else _env() | {"AGGREGATOR_DB": str(db)}
        result = _run("--config", REPO_CONFIG, *how, *args, env=env)
        assert result.returncode == 1, result.stderr
        assert result.stderr == (
            f"aggregator: error: database {db}: folder {db.parent} does not exist "
            "(create it first)\n"
        )
        assert not (tmp_path / "nonexistent").exists()


def test_the_configured_database_gets_its_folder(tmp_path: Path) -> None:
    """The folder the configuration names is its owner's: created (as `make run` needs)."""
    config = tmp_path / "aggregator.toml"
    config.write_text('database = "var/state/news.db"\n', encoding="utf-8")
    result = _run("--config", config, "ingest", SEEDS)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "state" / "news.db").is_file()


def test_digest_out_in_a_missing_folder_is_refused(tmp_path: Path, seeded_db: Path) -> None:
    out = tmp_path / "nonexistent" / "dir" / "d.html"
    result = _run(
        "--config", REPO_CONFIG, "--db", seeded_db, "digest", "--format", "html", "--out", out
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"aggregator: error: {out}: folder {out.parent} does not exist (create it first)\n"
    )
    assert not (tmp_path / "nonexistent").exists()


# -- JSON output after ingesting the seeds ------------------------------------------------------


def test_clusters_json_has_the_documented_fields(seeded_db: Path) -> None:
    clusters = _json(seeded_db, "clusters")
    assert isinstance(clusters, list)
    assert len(clusters) == 1
    [story] = clusters
    assert set(story) >= CLUSTER_FIELDS
    assert story["size"] == len(story["articles"]) == 2
    for article in story["articles"]:
        assert set(article) >= CLUSTER_ARTICLE_FIELDS
    assert sum(a["canonical"] for a in story["articles"]) == 1
    assert sorted(Path(a["location"]).name[:3] for a in story["articles"]) == ["001", "004"]


def test_duplicates_json_has_the_documented_fields(seeded_db: Path) -> None:
    rows = _json(seeded_db, "duplicates")
    assert isinstance(rows, list)
    assert len(rows) == 2
    for row in rows:
        assert set(row) >= DUPLICATE_FIELDS
        assert row["article_id"] != row["other_article_id"]
        assert 0.0 < row["similarity"] <= 1.0
        assert row["passage"].strip()
        assert row["other_passage"].strip()
        pair = sorted(Path(row[k]).name[:3] for k in ("location", "other_location"))
        assert pair == ["001", "004"]


def test_duplicates_json_passages_are_text_from_the_files(seeded_db: Path) -> None:
    for row in _json(seeded_db, "duplicates"):
        assert row["passage"] in Path(row["location"]).read_text(encoding="utf-8")
        assert row["other_passage"] in Path(row["other_location"]).read_text(encoding="utf-8")


def test_cluster_json_shows_articles_and_passages(seeded_db: Path) -> None:
    [story] = _json(seeded_db, "clusters")
    shown = _json(seeded_db, "cluster", str(story["id"]))
    assert isinstance(shown, dict)
    assert shown["id"] == story["id"]
    assert {a["id"] for a in shown["articles"]} == {a["id"] for a in story["articles"]}
    assert len(shown["passages"]) == 2


def test_text_outputs_mention_the_story_and_passages(seeded_db: Path) -> None:
    clusters = _invoke("--config", REPO_CONFIG, "--db", seeded_db, "clusters")
    assert clusters.exit_code == 0
    assert clusters.stdout.startswith("story ")
    duplicates = _invoke("--config", REPO_CONFIG, "--db", seeded_db, "duplicates")
    assert duplicates.exit_code == 0
    assert duplicates.stdout.count("similarity ") == 2


def test_clusters_on_an_empty_database_says_so(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    one = sorted(SEEDS.glob("*.txt"))[0]
    assert _invoke("--config", REPO_CONFIG, "--db", db, "ingest", one).exit_code == 0
    result = _invoke("--config", REPO_CONFIG, "--db", db, "clusters")
    assert result.exit_code == 0
    assert result.stdout == "no clusters yet: no two articles share a passage\n"
    assert _json(db, "clusters") == []


# -- other errors ---------------------------------------------------------------------------------


def test_unknown_cluster_is_a_one_line_error(seeded_db: Path) -> None:
    result = _run("--config", REPO_CONFIG, "--db", seeded_db, "cluster", "999")
    assert result.returncode == 1
    assert result.stderr == "aggregator: error: cluster 999: no such cluster\n"
    assert result.stdout == ""


def test_non_numeric_cluster_id_is_a_usage_error(seeded_db: Path) -> None:
    result = _run("--config", REPO_CONFIG, "--db", seeded_db, "cluster", "abc")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_ingest_without_paths_or_folders_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("folders = []\n", encoding="utf-8")
    result = _run("--config", config, "--db", tmp_path / "t.db", "ingest")
    assert result.returncode == 2
    assert "no PATH given and no folders in the configuration" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_without_paths_uses_the_configured_folders(tmp_path: Path) -> None:
    config = tmp_path / "seeds.toml"
    config.write_text(f'folders = ["{SEEDS}"]\n', encoding="utf-8")
    result = _invoke("--config", config, "--db", tmp_path / "t.db", "ingest")
    assert result.exit_code == 0, result.output
    assert "5 new, 0 updated, 0 unchanged, 0 failed" in result.stdout


def test_database_built_with_other_minhash_parameters_is_a_one_line_error(
    tmp_path: Path, seeded_db: Path
) -> None:
    config = tmp_path / "other.toml"
    config.write_text("[dedup]\nnum_perm = 64\nbands = 16\n", encoding="utf-8")
    result = _run("--config", config, "--db", seeded_db, "stats")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"aggregator: error: database {seeded_db}: built with other")
    assert "num_perm=128 (config: 64)" in result.stderr


def test_subcommand_help_works_with_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[dedup]\njaccard_threshold = "high"\n', encoding="utf-8")
    result = _run("--config", config, "ingest", "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout


def test_digest_date_and_since_together_is_a_usage_error(seeded_db: Path) -> None:
    both = _run(
        "--config",
        REPO_CONFIG,
        "--db",
        seeded_db,
        "digest",
        "--date",
        "2026-12-01",
        "--since",
        "3d",
    )
    assert both.returncode == 2 and both.stdout == ""
    assert "Error: --date and --since both say which period: give one" in both.stderr
    for one in (("--date", "2026-12-01"), ("--since", "3d"), ()):
        alone = _run("--config", REPO_CONFIG, "--db", seeded_db, "digest", *one)
        assert alone.returncode == 0, alone.stderr


def test_paragraph_numbers_agree_in_text_json_and_the_view(seeded_db: Path) -> None:
    """Numbered from 1 everywhere a person reads them; the oracle is the seed file,
    whose paragraphs are its lines after the title."""
    expected = {}
    for seed in ("001", "004"):
        lines = next(SEEDS.glob(f"{seed}_*.txt")).read_text(encoding="utf-8").splitlines()[1:]
        paragraphs = [line for line in lines if line.strip()]
        expected[seed] = 1 + next(
            i for i, p in enumerate(paragraphs) if "constructive partner" in p
        )
    rows = [r for r in _json(seeded_db, "duplicates") if "constructive partner" in r["passage"]]
    assert len(rows) == 1
    [row] = rows
    by_file = {Path(row[s + "location"]).name[:3]: row[s + "paragraph"] for s in ("", "other_")}
    assert by_file == expected
    text = _invoke("--config", REPO_CONFIG, "--db", seeded_db, "duplicates").stdout
    for side in ("", "other_"):
        assert f"({row[side + 'location']}, paragraph {row[side + 'paragraph']})" in text
    groups = _json(seeded_db, "duplicates", "--passages")
    carriers = [c for g in groups for c in g["carriers"] if "constructive partner" in c["passage"]]
    assert {Path(c["location"]).name[:3]: c["paragraph"] for c in carriers} == expected
