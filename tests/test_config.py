"""Configuration: defaults, path resolution, validation errors that name the key, `config show`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli.main import cli
from aggregator.config import Config
from aggregator.configfile import find_config, load_config
from aggregator.errors import ConfigError
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parent.parent
REPO_CONFIG = REPO / "config" / "aggregator.toml"
AGGREGATOR = Path(sys.executable).parent / "aggregator"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _config_error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path / "aggregator.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)
    monkeypatch.delenv("AGGREGATOR_DB", raising=False)


# -- defaults and the shipped file ------------------------------------------------------------


def test_defaults_load_without_a_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.database == Path("aggregator.db")
    assert config.folders == ()
    assert config.path is None


def test_default_values_match_the_documented_ones() -> None:
    config = Config()
    minhash = config.dedup.minhash
    assert (minhash.num_perm, minhash.bands, minhash.rows) == (128, 32, 4)
    assert (minhash.seed, minhash.shingle_words) == (1, 2)
    assert config.dedup.min_unit_words == 12
    assert config.dedup.jaccard_threshold == 0.5
    assert config.dedup.containment_threshold == 0.8
    assert config.dedup.min_shared_shingles == 8
    assert config.ingest.max_file_bytes == 10 * 1024 * 1024
    assert config.clusters.window_days == 3.0
    assert config.clusters.canonical == "earliest"
    assert config.clusters.boilerplate_edge_paragraphs == 1
    assert config.clusters.boilerplate_min_similarity == 0.9
    assert config.clusters.background_min_stories == 3
    assert config.clusters.background_min_hours == 24.0


def test_the_retired_boilerplate_count_still_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "old.toml", "[clusters]\nboilerplate_min_articles = 3\n")
    assert load_config(path).clusters == Config().clusters
    assert "boilerplate_min_articles is no longer used" in caplog.text


def test_empty_file_gives_the_defaults_with_database_beside_it(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path / "empty.toml", ""))
    assert config.database == tmp_path.resolve() / "aggregator.db"
    assert config.digest.directory == tmp_path.resolve() / "digests"
    defaults = replace(Config().digest, directory=config.digest.directory)
    assert replace(config, database=Path("aggregator.db"), path=None) == replace(
        Config(), digest=defaults
    )


def test_repo_config_resolves_against_its_own_folder() -> None:
    config = load_config(REPO_CONFIG)
    assert config.database == REPO / "var" / "aggregator.db"
    assert config.folders == (REPO / "seeds",)
    assert config.dedup == Config().dedup
    assert config.clusters == Config().clusters
    assert config.ingest == Config().ingest


# -- path resolution --------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path / "etc" / "aggregator.toml",
        'database = "data/news.db"\nfolders = ["../wire", "local"]\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path(os.path.relpath(path, elsewhere)))
    base = tmp_path.resolve()
    assert config.database == base / "etc" / "data" / "news.db"
    assert config.folders == (base / "wire", base / "etc" / "local")


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    db = tmp_path.resolve() / "abs" / "news.db"
    config = load_config(_write(tmp_path / "conf" / "a.toml", f'database = "{db}"\n'))
    assert config.database == db


# -- unknown keys -------------------------------------------------------------------------------


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    message = _config_error(tmp_path, 'database = "x.db"\ndatabse = "y.db"\n')
    assert message.startswith("config key databse: unknown key")


def test_unknown_dedup_key_is_named(tmp_path: Path) -> None:
    message = _config_error(tmp_path, "[dedup]\njacard_threshold = 0.5\n")
    assert message.startswith("config key dedup.jacard_threshold: unknown key")
    assert "jaccard_threshold" in message  # the allowed keys are listed


@pytest.mark.parametrize("section", ["ingest", "clusters"])
def test_unknown_key_in_other_sections_is_named(tmp_path: Path, section: str) -> None:
    message = _config_error(tmp_path, f"[{section}]\nspeed = 3\n")
    assert message.startswith(f"config key {section}.speed: unknown key")


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("[dedup]\nnum_perms = 64\n", "dedup.num_perm"),  # a MinHash key of [dedup]
        ("[dedup]\nband = 16\n", "dedup.bands"),
        ("[digest]\ndirectroy = 'x'\n", "digest.directory"),
        ("[feeds]\nmax_entry_per_poll = 5\n", "feeds.max_entries_per_poll"),
        ("databse = 'y.db'\n", "database"),
    ],
)
def test_a_misspelt_key_suggests_the_key_meant(tmp_path: Path, text: str, suggested: str) -> None:
    """Every allowed key of the section is listed, and the closest one named."""
    message = _config_error(tmp_path, text)
    assert f"unknown key (did you mean {suggested}? allowed: " in message
    listed = message.split("allowed: ", 1)[1].rstrip(")").split(", ")
    assert suggested.rsplit(".", 1)[-1] in listed


def test_a_key_like_no_other_suggests_nothing(tmp_path: Path) -> None:
    message = _config_error(tmp_path, "[dedup]\nzzzz = 1\n")
    assert "did you mean" not in message and "num_perm" in message


def test_minhash_field_name_is_not_a_dedup_key(tmp_path: Path) -> None:
    message = _config_error(tmp_path, "[dedup]\nminhash = 1\n")
    assert message.startswith("config key dedup.minhash: unknown key")


# -- wrong types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[dedup]\njaccard_threshold = "high"\n', "dedup.jaccard_threshold"),
        ("[dedup]\nnum_perm = 128.0\n", "dedup.num_perm"),
        ("[dedup]\nbands = true\n", "dedup.bands"),
        ("[ingest]\nmax_file_bytes = true\n", "ingest.max_file_bytes"),
        ('[ingest]\nextensions = ".txt"\n', "ingest.extensions"),
        ('[clusters]\nwindow_days = "3"\n', "clusters.window_days"),
        ("[clusters]\ncanonical = 1\n", "clusters.canonical"),
        ("database = 5\n", "database"),
        ('folders = "seeds"\n', "folders"),
        ("dedup = 3\n", "dedup"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert _config_error(tmp_path, text).startswith(f"config key {key}: ")


def test_wrong_type_message_shows_the_value(tmp_path: Path) -> None:
    message = _config_error(tmp_path, '[dedup]\njaccard_threshold = "high"\n')
    assert message == "config key dedup.jaccard_threshold: expected float, got 'high'"


def test_integer_is_accepted_for_a_float_key(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path / "a.toml", "[dedup]\njaccard_threshold = 1\n"))
    assert config.dedup.jaccard_threshold == 1.0
    assert isinstance(config.dedup.jaccard_threshold, float)


# -- values out of range --------------------------------------------------------------------------


def test_bands_times_rows_over_num_perm_is_refused(tmp_path: Path) -> None:
    message = _config_error(tmp_path, "[dedup]\nnum_perm = 64\nbands = 32\nrows = 4\n")
    assert message.startswith("config key dedup.bands: ")
    assert "128" in message
    assert "64" in message


def test_bands_times_rows_equal_to_num_perm_is_accepted(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path / "a.toml", "[dedup]\nnum_perm = 64\nbands = 16\n"))
    assert config.dedup.minhash.bands * config.dedup.minhash.rows == 64


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[dedup]\njaccard_threshold = 0\n", "dedup.jaccard_threshold"),
        ("[dedup]\ncontainment_threshold = 1.5\n", "dedup.containment_threshold"),
        ("[dedup]\nnum_perm = 8\nbands = 2\n", "dedup.num_perm"),
        ("[dedup]\nshingle_words = 9\n", "dedup.shingle_words"),
        ("[dedup]\nindex_max_units = 999\n", "dedup.index_max_units"),
        ("[digest]\natom_max_articles = 0\n", "digest.atom_max_articles"),
        ('[clusters]\ncanonical = "newest"\n', "clusters.canonical"),
        ("[clusters]\nwindow_days = 0\n", "clusters.window_days"),
        ("[ingest]\nmax_file_bytes = 10\n", "ingest.max_file_bytes"),
    ],
)
def test_out_of_range_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert _config_error(tmp_path, text).startswith(f"config key {key}: ")


# -- unreadable files -----------------------------------------------------------------------------


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.toml", "database = \n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"config file {path}: invalid TOML")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


# -- where the file comes from ----------------------------------------------------------------


def test_aggregator_config_env_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    path = _write(tmp_path / "env.toml", "[dedup]\njaccard_threshold = 0.7\n")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(path))
    assert find_config(None) == path


def test_explicit_config_wins_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(tmp_path / "env.toml"))
    assert find_config(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"


def test_config_in_working_directory_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    _write(tmp_path / "config" / "aggregator.toml", "")
    monkeypatch.chdir(tmp_path)
    assert find_config(None) == Path("config/aggregator.toml")


def test_no_config_anywhere_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    if Path("/etc/aggregator/aggregator.toml").is_file():
        pytest.skip("a system-wide configuration exists on this machine")
    monkeypatch.chdir(tmp_path)
    assert find_config(None) is None


def test_aggregator_config_env_is_honoured_by_the_cli(tmp_path: Path, clean_env: None) -> None:
    path = _write(tmp_path / "env.toml", "[dedup]\njaccard_threshold = 0.7\n")
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "t.db"), "config", "show"],
        env={"AGGREGATOR_CONFIG": str(path)},
    )
    assert result.exit_code == 0, result.output
    assert f"(from {path})" in result.stdout
    assert tomllib.loads(result.stdout)["dedup"]["jaccard_threshold"] == 0.7


# -- config show ----------------------------------------------------------------------------------

CUSTOM = """
database = "db/news.db"
folders = ["wire", "/srv/feeds"]
[ingest]
max_file_bytes = 2048
extensions = [".txt", ".md"]
[dedup]
num_perm = 64
bands = 16
rows = 2
seed = 7
shingle_words = 3
min_unit_words = 10
jaccard_threshold = 0.6
containment_threshold = 0.9
min_shared_shingles = 5
index_max_units = 250000
[clusters]
window_days = 1.5
canonical = "longest"
boilerplate_edge_paragraphs = 2
boilerplate_min_similarity = 0.95
background_min_stories = 4
background_min_hours = 12
"""


def _show(config_path: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *extra, "config", "show"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_config_show_prints_toml_with_the_same_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "custom.toml", CUSTOM)
    shown = tomllib.loads(_show(path))
    base = tmp_path.resolve()
    assert shown == {
        "database": str(base / "db" / "news.db"),
        "folders": [str(base / "wire"), "/srv/feeds"],
        "ingest": {
            "max_file_bytes": 2048,
            "extensions": [".txt", ".md"],
            "max_title_chars": 1000,
            "max_paragraphs": 2000,
            "max_text_chars": 1024 * 1024,
        },
        "dedup": {
            "num_perm": 64,
            "bands": 16,
            "rows": 2,
            "seed": 7,
            "shingle_words": 3,
            "min_unit_words": 10,
            "jaccard_threshold": 0.6,
            "containment_threshold": 0.9,
            "min_shared_shingles": 5,
            "min_sentence_words": 8,
            "index_max_units": 250_000,
        },
        "clusters": {
            "window_days": 1.5,
            "canonical": "longest",
            "boilerplate_edge_paragraphs": 2,
            "boilerplate_min_similarity": 0.95,
            "background_min_stories": 4,
            "background_min_hours": 12.0,
        },
        "stories": {
            "enabled": True,
            "threshold": 0.08,
            "undated_threshold": 0.4,
            "window_days": 3.0,
            "date_tolerance_days": 2,
            "date_penalty": 0.1,
            "quiet_articles": 150,
            "title_weight": 2.0,
            "name_weight": 2.0,
            "number_weight": 1.5,
            "lead_words": 250,
        },
        "feeds": {
            "urls": [],
            "allow": [],
            "min_interval_minutes": 15.0,
            "max_interval_hours": 24.0,
            "default_interval_minutes": 60.0,
            "max_entries_per_poll": 200,
            "max_bytes": 15 * 1024 * 1024,
            "deadline_seconds": 30.0,
            "concurrency": 16,
            "per_host": 2,
            "parse_workers": 0,
        },
        "daemon": {
            "tick_seconds": 60.0,
            "batch_size": 50,
            "tick_budget_seconds": 300.0,
            "scan_minutes": 5.0,
            "digest_time": "07:00",
            "timezone": "UTC",
            "stop_grace_seconds": 10.0,
            "job_timeout_seconds": 900.0,
            "lease_seconds": 60.0,
            "heartbeat_seconds": 5.0,
            "fetch_nice": 10,
        },
        "digest": {
            "directory": str(base / "digests"),
            "keep": 30,
            "formats": ["html", "md"],
            "atom_file": "stories.atom",
            "atom_days": 3.0,
            "atom_max_articles": 500,
            "mail_to": [],
            "mail_from": "aggregator@localhost",
            "smtp_host": "",
            "smtp_port": 587,
            "smtp_security": "starttls",
        },
    }


def test_config_show_output_loads_back_to_the_same_config(tmp_path: Path) -> None:
    original = load_config(_write(tmp_path / "custom.toml", CUSTOM))
    again = load_config(_write(tmp_path / "shown" / "shown.toml", _show(tmp_path / "custom.toml")))
    assert replace(again, path=None) == replace(original, path=None)


def test_config_show_reflects_db_override(tmp_path: Path) -> None:
    db = tmp_path / "override.db"
    shown = tomllib.loads(_show(REPO_CONFIG, "--db", str(db)))
    assert shown["database"] == str(db)
    assert not db.exists()


def test_config_show_of_repo_config_names_its_source() -> None:
    assert _show(REPO_CONFIG).startswith(f"# effective configuration (from {REPO_CONFIG})\n")


def test_config_show_escapes_quotes_and_backslashes_in_paths(tmp_path: Path) -> None:
    db = tmp_path / 'say "hi" \\ bye.db'
    assert tomllib.loads(_show(REPO_CONFIG, "--db", str(db)))["database"] == str(db)


# -- through the console script's main ----------------------------------------------------------


def _run(*args: str, new_process: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return run_cli(*args, env=env, new_process=new_process)


def test_cli_bad_config_key_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", '[dedup]\njaccard_threshold = "high"\n')
    result = _run("--config", str(path), "--db", str(tmp_path / "t.db"), "stats")
    assert result.returncode == 1
    assert result.stderr == (
        "aggregator: error: config key dedup.jaccard_threshold: expected float, got 'high'\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "t.db").exists()


def test_cli_unknown_config_key_is_one_line_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", "[dedup]\njacard_threshold = 0.5\n")
    result = _run(
        "--config", str(path), "--db", str(tmp_path / "t.db"), "config", "show", new_process=True
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("aggregator: error: config key dedup.jacard_threshold: unknown key")
    assert "Traceback" not in result.stderr


def test_cli_invalid_toml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.toml", "[dedup\n")
    result = _run("--config", str(path), "--db", str(tmp_path / "t.db"), "config", "show")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"aggregator: error: config file {path}: invalid TOML")


def test_cli_honours_aggregator_config_env(tmp_path: Path) -> None:
    path = _write(tmp_path / "env.toml", '[clusters]\ncanonical = "longest"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env["AGGREGATOR_CONFIG"] = str(path)
    result = run_cli("--db", str(tmp_path / "t.db"), "config", "show", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["clusters"]["canonical"] == "longest"


def test_bad_feeds_allow_entry_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", '[feeds]\nallow = ["not a network"]\n')
    with pytest.raises(ConfigError, match=r"config key feeds\.allow"):
        load_config(path)


def test_non_http_feed_url_in_config_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", '[feeds]\nurls = ["file:///etc/passwd"]\n')
    with pytest.raises(ConfigError, match=r"config key feeds\.urls: 'file:///etc/passwd'"):
        load_config(path)


@pytest.mark.parametrize(
    ("section", "body", "message"),
    [
        ("feeds", "concurrency = 0", r"feeds\.concurrency: must be 1 to 256"),
        ("feeds", "concurrency = 4\nper_host = 5", r"feeds\.per_host: must be 1 to concurrency"),
        ("feeds", "parse_workers = -1", r"feeds\.parse_workers: must be 0 to 64"),
        ("daemon", 'digest_time = "25:00"', r"daemon\.digest_time: '25:00' is not a time of day"),
        ("daemon", 'timezone = "Mars/Olympus"', r"daemon\.timezone: unknown time zone"),
        ("daemon", "tick_seconds = 0", r"daemon\.tick_seconds: must be >= 0.1"),
        ("daemon", "tick_seconds = 'often'", r"daemon\.tick_seconds: expected float, got 'often'"),
        ("daemon", "job_timeout_seconds = 10", r"daemon\.job_timeout_seconds: must be at least"),
        ("daemon", "lease_seconds = 10", r"daemon\.lease_seconds: must be at least 3 x heart"),
        ("daemon", "heartbeat_seconds = 0", r"daemon\.heartbeat_seconds: must be >= 0.1"),
        ("daemon", "fetch_nice = 20", r"daemon\.fetch_nice: must be in 0\.\.19"),
        ("daemon", "fetch_nice = -5", r"daemon\.fetch_nice: must be in 0\.\.19"),
        ("daemon", "restart = true", r"daemon\.restart: unknown key"),
        ("digest", 'formats = ["pdf"]', r"digest\.formats: \['pdf'\] not one of html, md"),
        ("digest", 'mail_to = ["a@b.example\\r\\nBcc: x@y"]', r"digest\.mail_to: .* not a plain"),
        ("digest", 'mail_to = ["a@b.example"]', r"digest\.smtp_host: must be set when mail_to is"),
        ("digest", 'smtp_security = "ssl3"', r"digest\.smtp_security: must be starttls, tls or"),
    ],
)
def test_bad_service_settings_name_the_key(
    tmp_path: Path, section: str, body: str, message: str
) -> None:
    path = _write(tmp_path / "bad.toml", f"[{section}]\n{body}\n")
    with pytest.raises(ConfigError, match=rf"config key {message}"):
        load_config(path)
