"""The folder source, exercised through `aggregator ingest` (the console script's `main`,
in this process; one test runs the installed script in a process of its own)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from aggregator.errors import SourceError
from aggregator.sources import folder
from aggregator.sources.folder import discover, read_file
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
ERROR_LINE = re.compile(r"^error: (?P<path>.+?): (?P<reason>.+)$")
HUGE = 200 * 1024 * 1024


@dataclass
class Cli:
    """Runs the CLI against a config and a database inside tmp_path."""

    config: Path
    db: Path

    def __call__(
        self, *args: str | Path, new_process: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
        return run_cli(
            "--config",
            self.config,
            "--db",
            self.db,
            *args,
            env=env,
            cwd=self.config.parent,
            new_process=new_process,
        )

    def counts(self) -> dict[str, int]:
        """Rows per table, read with sqlite3 itself (`stats` has tests of its own)."""
        with closing(sqlite3.connect(self.db)) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute(sql, args).fetchall()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    config = tmp_path / "aggregator.toml"
    config.write_text('database = "never-used.db"\nfolders = []\n', encoding="utf-8")
    return Cli(config, tmp_path / "test.db")


@pytest.fixture
def news(tmp_path: Path) -> Path:
    """A folder holding the five seed articles."""
    root = tmp_path / "news"
    root.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, root / seed.name)
    return root.resolve()


def _stored_locations(cli: Cli) -> set[str]:
    return {str(row[0]) for row in cli.query("SELECT location FROM articles")}


# -- a folder with every kind of bad file ---------------------------------------------------


@pytest.fixture
def messy(tmp_path: Path, news: Path) -> dict[str, str]:
    """Add one bad file of each kind to `news`; return {file name: expected reason words}."""
    (news / "bad.txt").write_bytes(b"\xff\xfe\xfa\xfb not text at all")
    (news / "empty.txt").write_bytes(b"")
    (news / "binary.txt").write_bytes(b"Headline\n\x00\x00\x00\x01\x02 body")
    with (news / "huge.txt").open("wb") as f:
        f.truncate(HUGE)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("Outside headline\nOutside body text.\n")
    (news / "link.txt").symlink_to(outside / "secret.txt")
    os.mkfifo(news / "fifo.txt")
    return {
        "bad.txt": "not UTF-8",
        "empty.txt": "empty",
        "binary.txt": "binary",
        "huge.txt": "size cap",
        "link.txt": "outside",
        "fifo.txt": "not a regular file",
    }


def test_bad_files_exit_status_is_1(cli: Cli, news: Path, messy: dict[str, str]) -> None:
    assert cli("ingest", news).returncode == 1


def test_bad_files_each_get_exactly_one_error_line(
    cli: Cli, news: Path, messy: dict[str, str]
) -> None:
    result = cli("ingest", news)
    lines = result.stderr.splitlines()
    assert len(lines) == len(messy), result.stderr
    for name in messy:
        named = [line for line in lines if line.startswith(f"error: {news / name}: ")]
        assert len(named) == 1, (name, result.stderr)


def test_bad_file_error_lines_give_the_reason(cli: Cli, news: Path, messy: dict[str, str]) -> None:
    result = cli("ingest", news)
    reasons = {}
    for line in result.stderr.splitlines():
        match = ERROR_LINE.match(line)
        assert match, line
        reasons[Path(match["path"]).name] = match["reason"]
    for name, words in messy.items():
        assert words in reasons[name], (name, reasons[name])


def test_bad_files_produce_no_traceback(cli: Cli, news: Path, messy: dict[str, str]) -> None:
    result = cli("ingest", news, new_process=True)  # the installed console script
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_bad_files_do_not_stop_good_files(cli: Cli, news: Path, messy: dict[str, str]) -> None:
    result = cli("ingest", news)
    assert "5 new, 0 updated, 0 unchanged, 6 failed" in result.stdout
    assert cli.counts()["articles"] == 5
    assert _stored_locations(cli) == {str(p) for p in news.glob("0*.txt")}


def test_huge_file_is_refused_by_size_not_by_content(
    cli: Cli, news: Path, messy: dict[str, str]
) -> None:
    # The sparse file is all NUL bytes: had it been read, it would be a "binary" error.
    result = cli("ingest", news / "huge.txt")
    assert result.returncode == 1
    assert (
        result.stderr
        == f"error: {news / 'huge.txt'}: file is 200.0 MiB, over the 10.0 MiB size cap\n"
    )


def test_huge_file_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(HUGE)
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(folder.os, "read", counting_read)
    [task] = list(discover([tmp_path], [".txt"]))
    assert not isinstance(task, SourceError)
    with pytest.raises(SourceError, match="size cap"):
        read_file(task, 10 * 1024 * 1024)
    assert reads == []


def _task_of_size(tmp_path: Path, size: int) -> folder.FileTask:
    (tmp_path / "story.txt").write_bytes(b"Headline\n" + b"x" * (size - 9))
    [task] = list(discover([tmp_path], [".txt"]))
    assert isinstance(task, folder.FileTask)
    return task


def test_file_exactly_at_the_size_cap_is_read(tmp_path: Path) -> None:
    assert len(read_file(_task_of_size(tmp_path, 1024), 1024).content) == 1024


def test_file_one_byte_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="size cap"):
        read_file(_task_of_size(tmp_path, 1025), 1024)


# -- files that are skipped without a word ----------------------------------------------------


def test_hidden_files_and_other_extensions_are_ignored_silently(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "news"
    (root / ".drafts").mkdir(parents=True)
    shutil.copy(next(SEEDS.glob("001_*.txt")), root / "story.txt")
    (root / ".hidden.txt").write_text("Hidden headline\nHidden body.\n")
    (root / ".drafts" / "draft.txt").write_text("Draft headline\nDraft body.\n")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    result = cli("ingest", root)
    assert result.returncode == 0
    assert result.stderr == ""
    assert _stored_locations(cli) == {str((root / "story.txt").resolve())}


def test_symlinked_directory_is_not_followed(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "news"
    root.mkdir()
    shutil.copy(next(SEEDS.glob("001_*.txt")), root / "story.txt")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(next(SEEDS.glob("002_*.txt")), other / "elsewhere.txt")
    (root / "linked").symlink_to(other, target_is_directory=True)
    result = cli("ingest", root)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert _stored_locations(cli) == {str((root / "story.txt").resolve())}


def test_symlink_to_a_file_inside_the_root_is_read(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "news"
    (root / "archive").mkdir(parents=True)
    shutil.copy(next(SEEDS.glob("001_*.txt")), root / "archive" / "story.txt")
    (root / "latest.txt").symlink_to(root / "archive" / "story.txt")
    result = cli("ingest", root)
    assert result.returncode == 0, result.stderr
    assert _stored_locations(cli) == {str((root / "archive" / "story.txt").resolve())}


# -- paths given on the command line ------------------------------------------------------------


def test_missing_path_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = cli("ingest", missing)
    assert result.returncode == 1
    assert result.stderr == f"error: {missing}: no such file or folder\n"


def test_error_paths_are_absolute_however_they_were_typed(
    cli: Cli, tmp_path: Path, news: Path
) -> None:
    """A missing folder typed relative was named as typed, the files found in a
    folder typed relative absolute: now both absolute (run in tmp_path)."""
    (news / "empty.txt").write_text("\n", encoding="utf-8")
    result = cli("ingest", "no-such-folder", "news")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {tmp_path / 'no-such-folder'}: no such file or folder",
        f"error: {news / 'empty.txt'}: no text found",
    ]


def test_explicit_file_with_unknown_extension_is_an_error(cli: Cli, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    result = cli("ingest", photo)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {photo}: unsupported file type '.jpg'"]


def test_explicit_good_file_is_ingested(cli: Cli, news: Path) -> None:
    result = cli("ingest", news / next(SEEDS.glob("003_*.txt")).name)
    assert result.returncode == 0, result.stderr
    assert cli.counts()["articles"] == 1


def test_configured_extension_without_a_known_type_is_refused_naming_the_key(
    cli: Cli, tmp_path: Path
) -> None:
    cli.config.write_text('[ingest]\nextensions = [".txt", ".text"]\n', encoding="utf-8")
    root = tmp_path / "news"
    root.mkdir()
    shutil.copy(next(SEEDS.glob("001_*.txt")), root / "a.txt")
    result = cli("ingest", root)
    assert result.returncode == 1
    assert "internal error" not in result.stderr
    assert result.stderr.startswith("aggregator: error: config key ingest.extensions:")
    assert "'.text'" in result.stderr


# -- re-ingesting ---------------------------------------------------------------------------------


def test_reingest_reports_everything_unchanged(cli: Cli, news: Path) -> None:
    assert cli("ingest", news).returncode == 0
    result = cli("ingest", news)
    assert result.returncode == 0
    assert result.stdout == (
        "0 new, 0 updated, 5 unchanged, 0 failed; 0 passage matches found, 0 linking stories\n"
    )
    assert result.stderr == ""


def test_reingest_adds_no_rows(cli: Cli, news: Path) -> None:
    cli("ingest", news)
    before = cli.counts()
    cli("ingest", news)
    assert cli.counts() == before


def test_edited_file_becomes_a_new_version_of_the_same_article(cli: Cli, news: Path) -> None:
    assert cli("ingest", news).returncode == 0
    before = cli.counts()
    story = news / next(SEEDS.glob("002_*.txt")).name
    with story.open("a", encoding="utf-8") as f:
        f.write("\nA correction was appended to this article after publication.\n")
    result = cli("ingest", news)
    assert result.returncode == 0, result.stderr
    assert f"updated: {story}" in result.stdout
    assert "0 new, 1 updated, 4 unchanged, 0 failed" in result.stdout
    after = cli.counts()
    assert after["articles"] == before["articles"]
    assert after["article_versions"] == before["article_versions"] + 1
    assert cli.query("SELECT version FROM articles WHERE location = ?", str(story)) == [(2,)]
    versions = cli.query(
        "SELECT v.version FROM article_versions v JOIN articles a ON a.id = v.article_id "
        "WHERE a.location = ? ORDER BY v.version",
        str(story),
    )
    assert versions == [(1,), (2,)]


def test_edited_file_keeps_its_article_id(cli: Cli, news: Path) -> None:
    story = news / next(SEEDS.glob("003_*.txt")).name
    cli("ingest", news)
    [(article_id,)] = cli.query("SELECT id FROM articles WHERE location = ?", str(story))
    story.write_text(story.read_text(encoding="utf-8") + "\nOne more line of text.\n")
    cli("ingest", news)
    assert cli.query("SELECT id FROM articles WHERE location = ?", str(story)) == [(article_id,)]
