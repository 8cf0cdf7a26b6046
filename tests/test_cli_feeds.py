"""The feed commands end to end: add, poll (a good and a failing feed), list, remove."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from aggregator.cli.main import cli
from aggregator.config import Config
from aggregator.ingest.feeds import (
    FeedEdit,
    change_for,
    error_interval,
    min_interval_seconds,
    success_interval,
)
from aggregator.model import FeedChange, FeedSource, parse_time
from aggregator.storage.schema import SCHEMA_VERSION
from aggregator.storage.store import Store
from tests.clirun import run_cli
from tests.conftest import REPO

RSS = (
    '<rss version="2.0"><channel><title>Wire</title><ttl>90</ttl>'
    "<item><guid>w1</guid><title>Talks resume</title>"
    "<description>Negotiators met again on Monday after a week of silence.</description>"
    "</item></channel></rss>"
)


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_poll_reports_each_feed_and_list_shows_their_state(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    httpserver.expect_request("/good").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    good, bad = httpserver.url_for("/good"), httpserver.url_for("/bad")
    assert _run(config, "sources", "add", good, "--name", "Wire", "--full-text", "never")[0] == 0
    assert _run(config, "sources", "add", bad, "--name", "Broken", "--no-check")[0] == 0

    code, out, err = _run(config, "poll")
    assert code == 1, "a failed feed makes the poll exit non-zero"
    assert "feed 1: ingested, 1 new of 1 entries" in out
    assert f"error: feed 2 {bad}: HTTP 500" in err
    assert "2 feeds polled, 1 failed" in err

    code, out, _ = _run(config, "sources", "list")
    assert code == 0
    wire, broken = out.split("[2]")
    assert "[1] Wire: ok" in wire and "next check" in wire and "(in 90 min)" in wire
    assert "Broken: failing" in broken and "1 error in a row, last: HTTP 500" in broken

    listed = json.loads(_run(config, "sources", "list", "--json")[1])
    assert [(f["name"], f["error_count"], f["last_error"]) for f in listed] == [
        ("Wire", 0, None),
        ("Broken", 1, "HTTP 500"),
    ]

    code, _, err = _run(config, "poll")
    assert (code, err.strip()) == (0, "0 feeds polled, 0 failed"), "nothing is due yet"

    assert _run(config, "sources", "remove", "1")[0] == 0
    assert "Wire: disabled" in _run(config, "sources", "list")[1], "it has an article"


def test_status_names_the_failing_feeds_with_their_errors(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Twelve failing feeds: the text lists the ten that failed last, each with its
    error, and says how many more; --json lists them all."""
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    httpserver.expect_request("/good").respond_with_data(RSS, content_type="application/rss+xml")
    assert _run(config, "sources", "add", httpserver.url_for("/good"), "--name", "Wire")[0] == 0
    for n in range(12):
        httpserver.expect_request(f"/bad{n}").respond_with_data("", status=500 + n % 4)
        url = httpserver.url_for(f"/bad{n}")
        assert _run(config, "sources", "add", url, "--name", f"Broken {n}", "--no-check")[0] == 0
    assert _run(config, "poll")[0] == 1

    code, out, _ = _run(config, "status")
    assert code == 3, "no daemon runs"
    assert "feeds: 13 enabled, 0 due, 12 failing" in out
    named = [line for line in out.splitlines() if line.startswith("  feed ")]
    assert len(named) == 10
    for line in named:
        number = int(line.split()[1])  # feed ids 2..13 are Broken 0..11
        url = httpserver.url_for(f"/bad{number - 2}")
        assert line == f"  feed {number} Broken {number - 2} ({url}) failed once:"
        assert f"{line}\n    HTTP {500 + (number - 2) % 4}\n" in out
    assert "  ... and 2 more failing (aggregator status --json lists all)" in out

    report = json.loads(_run(config, "status", "--json")[1])
    assert report["feeds_failing"] == 12
    assert sorted(f["name"] for f in report["failing_feeds"]) == sorted(
        f"Broken {n}" for n in range(12)
    )
    assert all(
        f["error_count"] == 1 and f["last_success_at"] is None for f in report["failing_feeds"]
    )


# -- sources set, enable, disable; a feed's own minimum interval (issue 13) ----------------


def _feeds_config(httpserver: HTTPServer, tmp_path: Path) -> Path:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    return config


def _listed(config: Path) -> list[dict[str, object]]:
    feeds: list[dict[str, object]] = json.loads(_run(config, "sources", "list", "--json")[1])
    return feeds


def _minutes_to_next_check(config: Path, index: int = 0) -> float:
    stamp = _listed(config)[index]["next_check_at"]
    assert isinstance(stamp, str)
    return (parse_time(stamp) - datetime.now(UTC)).total_seconds() / 60


def _fails(config: Path, *args: str) -> tuple[int, str]:
    """Exit status and stderr of a command run as the console script runs it."""
    result = run_cli("--config", config, *args)
    return result.returncode, result.stderr


def test_sources_set_changes_each_field_and_says_what_it_was(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _feeds_config(httpserver, tmp_path)
    url = httpserver.url_for("/wire")
    assert _run(config, "sources", "add", url, "--name", "Wire", "--no-check")[0] == 0

    def set_(*args: str) -> str:
        code, out, err = _run(config, "sources", "set", *args)
        assert (code, err) == (0, ""), out
        assert out.count("\n") == 1, out
        return out.strip()

    assert set_("1", "--name", "Wire Service") == 'feed 1: name "Wire Service" (was "Wire")'
    assert set_(url, "--full-text", "never") == "feed 1: full text never (was auto)"
    assert set_("1", "--min-interval", "120") == (
        "feed 1: minimum interval 120 min (was the default, 15 min)"
    )
    assert set_("1", "--disabled") == "feed 1: disabled (was enabled)"
    assert set_("1", "--enabled") == "feed 1: enabled (was disabled), due now"
    assert set_("1", "--min-interval", "default") == (
        "feed 1: minimum interval the default, 15 min (was 120 min)"
    )
    assert set_("1", "--full-text", "never") == "feed 1: nothing changed (it is enabled)"
    assert set_("1", "--full-text", "always", "--min-interval", "0.5") == (
        "feed 1: full text always (was never); minimum interval 0.5 min (was the default, 15 min)"
    )
    [feed] = _listed(config)
    assert (feed["name"], feed["full_text"], feed["enabled"], feed["min_interval_minutes"]) == (
        "Wire Service",
        "always",
        True,
        0.5,
    )


def test_sources_set_refuses_unknown_feeds_and_empty_edits(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _feeds_config(httpserver, tmp_path)
    assert _run(config, "sources", "add", httpserver.url_for("/f"), "--no-check")[0] == 0
    assert _fails(config, "sources", "set", "99", "--name", "X") == (
        1,
        "aggregator: error: feed 99: no such feed source\n",
    )
    code, err = _fails(config, "sources", "disable", "https://nowhere.example/feed")
    assert (code, err.count("\n")) == (1, 1) and "no such feed source" in err
    assert _fails(config, "sources", "enable", "7")[0] == 1
    code, err = _fails(config, "sources", "set", "1")
    assert code == 2 and "nothing to change" in err
    code, err = _fails(config, "sources", "set", "1", "--min-interval", "soon")
    assert code == 2 and "'soon' is neither minutes nor 'default'" in err
    assert _fails(config, "sources", "set", "1", "--min-interval", "-5")[0] == 2
    assert _listed(config)[0]["min_interval_minutes"] is None


def test_the_scheduler_honours_a_feeds_own_minimum(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A feed whose max-age is 1 minute: checked after the configured 15 minutes, after
    the feed's own 5 when it has that minimum, after its 120; never later than the
    24-hour maximum. Raising the minimum moves a check already scheduled sooner."""
    config = _feeds_config(httpserver, tmp_path)
    httpserver.expect_request("/fast").respond_with_data(
        RSS.replace("<ttl>90</ttl>", ""),
        content_type="application/rss+xml",
        headers={"Cache-Control": "max-age=60"},
    )
    assert (
        _run(config, "sources", "add", httpserver.url_for("/fast"), "--full-text", "never")[0] == 0
    )
    assert _run(config, "poll", "--all")[0] == 0
    assert 14 < _minutes_to_next_check(config) <= 15

    assert _run(config, "sources", "set", "1", "--min-interval", "5")[0] == 0
    assert 14 < _minutes_to_next_check(config) <= 15, "lowering waits for the next check"
    assert _run(config, "poll", "--all")[0] == 0
    assert 4 < _minutes_to_next_check(config) <= 5, "lower than the configured minimum"

    code, out, _ = _run(config, "sources", "set", "1", "--min-interval", "120")
    assert code == 0
    assert out.startswith("feed 1: minimum interval 120 min (was 5 min); next check ")
    assert 118 < _minutes_to_next_check(config) <= 120, "the scheduled check moved"
    assert _run(config, "poll", "--all")[0] == 0
    assert 119 < _minutes_to_next_check(config) <= 120
    assert "at least 120 min apart" in _run(config, "sources", "list")[1]

    assert _run(config, "sources", "set", "1", "--min-interval", "100000")[0] == 0
    assert _run(config, "poll", "--all")[0] == 0
    assert 24 * 60 - 1 < _minutes_to_next_check(config) <= 24 * 60, "capped at the maximum"


def test_a_failing_feed_backs_off_from_its_own_minimum(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _feeds_config(httpserver, tmp_path)
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    assert _run(config, "sources", "add", httpserver.url_for("/bad"), "--no-check")[0] == 0
    assert _run(config, "sources", "set", "1", "--min-interval", "60")[0] == 0
    assert _run(config, "poll")[0] == 1
    assert 47 < _minutes_to_next_check(config) <= 72, "60 minutes, +-20% jitter"


def test_a_disabled_feed_is_not_polled_until_enabled(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _feeds_config(httpserver, tmp_path)
    for name in ("one", "two"):
        httpserver.expect_request(f"/{name}").respond_with_data(
            RSS.replace("w1", name), content_type="application/rss+xml"
        )
        url = httpserver.url_for(f"/{name}")
        assert _run(config, "sources", "add", url, "--name", name, "--full-text", "never")[0] == 0
    assert _run(config, "sources", "disable", "2")[1] == "feed 2: disabled (was enabled)\n"
    assert (
        _run(config, "sources", "disable", "2")[1] == "feed 2: nothing changed (it is disabled)\n"
    )

    assert _run(config, "poll")[2].strip() == "1 feed polled, 0 failed"
    assert _run(config, "poll", "--all")[2].strip() == "1 feed polled, 0 failed"
    one, two = _listed(config)
    assert one["last_checked_at"] is not None
    assert (two["enabled"], two["last_checked_at"]) == (False, None)
    listing = _run(config, "sources", "list")[1]
    assert "[2] two: disabled" in listing and "next check - (disabled)" in listing

    code, out, _ = _run(config, "sources", "enable", httpserver.url_for("/two"))
    assert (code, out) == (0, "feed 2: enabled (was disabled), due now\n")
    code, out, _ = _run(config, "poll")
    assert (code, out) == (0, "feed 2: ingested, 1 new of 1 entries\n"), "due at once"


def _feed_row(database: Path) -> None:
    """A feed subscription as an older release stored it."""
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(
            "INSERT INTO sources (kind, location, name, created_at, url, next_check_at) "
            "VALUES ('feed', 'https://wire.example/rss', 'Wire', '2026-11-01T00:00:00Z', "
            "'https://wire.example/rss', '2026-11-01T00:00:00Z')"
        )


def _version(database: Path) -> int:
    with closing(sqlite3.connect(database)) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def test_a_v5_database_migrates_through_v6_to_v10(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    shutil.copy(REPO / "tests" / "data" / "schema-v5-seeds-third.db", database)
    _feed_row(database)
    result = run_cli("--db", database, "sources", "set", "2", "--min-interval", "30")
    assert (result.returncode, result.stdout) == (
        0,
        "feed 2: minimum interval 30 min (was the default, 15 min)\n",
    )
    assert _version(database) == SCHEMA_VERSION == 10
    assert _version(database.with_name("old.db.v5.bak")) == 5
    assert run_cli("--db", database, "rematch").returncode == 0  # v6's passage groups
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT count(*) FROM passage_carriers").fetchone()[0] >= 0  # v6
        # v8: the view numbers paragraphs from 1, as the paragraphs' positions + 1.
        numbered = conn.execute(
            "SELECT d.paragraph, p.position FROM duplicate_passages d "
            "JOIN passage_carriers c ON c.id = d.match_id "
            "JOIN paragraphs p ON p.id = c.paragraph_id"
        ).fetchall()
        assert numbered and all(shown == position + 1 for shown, position in numbered)
        rows = conn.execute("SELECT kind, min_interval_minutes FROM sources ORDER BY id").fetchall()
        # v10: the event-story tables, empty: v5's articles keep no story.
        for table in ("event_stories", "event_members", "event_terms"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        # v9: no insert trigger; the articles v5 indexed are still found.
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert {t for (t,) in triggers} == {"articles_ad", "articles_au"}
        found = conn.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'constructive partner'"
        ).fetchone()[0]
        held = conn.execute(
            "SELECT count(*) FROM articles WHERE body LIKE '%constructive partner%'"
        ).fetchone()[0]
        assert found == held > 0
    assert rows == [("folder", None), ("feed", 30.0)]


def test_a_v6_database_gains_the_per_feed_minimum_as_null(tmp_path: Path, config: Config) -> None:
    database = tmp_path / "v6.db"
    Store(database, config.dedup.minhash).close()
    with closing(sqlite3.connect(database)) as conn, conn:  # as release v6 left it
        conn.execute("ALTER TABLE sources DROP COLUMN min_interval_minutes")
        conn.execute("PRAGMA user_version = 6")
    _feed_row(database)
    result = run_cli("--db", database, "sources", "list", "--json")
    assert result.returncode == 0, result.stderr
    [feed] = json.loads(result.stdout)
    assert (feed["name"], feed["min_interval_minutes"]) == ("Wire", None)
    assert _version(database) == SCHEMA_VERSION
    assert _version(database.with_name("v6.db.v6.bak")) == 6
    with closing(sqlite3.connect(database)) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE sources SET min_interval_minutes = 0")  # NULL, or > 0


@pytest.mark.parametrize(
    ("feed_minimum", "ttl", "expected_minutes"),
    [
        (None, 1, 15),  # the configured minimum
        (5, 1, 5),  # the feed's own replaces it, lower...
        (120, 1, 120),  # ...or higher
        (120, 180, 180),  # a floor: a longer TTL still wins
        (5, None, 60),  # without hints: default_interval_minutes
        (100_000, None, 24 * 60),  # never past max_interval_hours
    ],
)
def test_success_interval_with_a_feeds_own_minimum(
    feed_minimum: float | None, ttl: int | None, expected_minutes: float
) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    seconds = success_interval({}, ttl, Config(), now, feed_minimum)
    assert seconds == expected_minutes * 60
    assert min_interval_seconds(Config(), feed_minimum) <= 24 * 3600
    rng = random.Random(1)
    backoff = error_interval(1, Config(), rng, feed_minimum)
    assert 0.8 * min_interval_seconds(Config(), feed_minimum) <= backoff


_CHECKED = FeedSource(
    id=1,
    name="Wire",
    location="https://wire.example/rss",
    url="https://wire.example/rss",
    full_text="auto",
    enabled=True,
    last_checked_at="2026-11-01T12:00:00Z",
    last_success_at="2026-11-01T12:00:00Z",
    last_error=None,
    error_count=0,
    next_check_at="2026-11-01T12:15:00Z",
)


@pytest.mark.parametrize(
    ("before", "edit", "change"),
    [
        (_CHECKED, FeedEdit(name="  Wire Service "), FeedChange(name="Wire Service")),
        (_CHECKED, FeedEdit(name="Wire", full_text="auto", enabled=True), FeedChange()),
        (
            _CHECKED,
            FeedEdit(min_interval_minutes=60),
            FeedChange(min_interval_minutes=60, next_check_at=parse_time("2026-11-01T13:00:00Z")),
        ),
        (_CHECKED, FeedEdit(min_interval_minutes=5), FeedChange(min_interval_minutes=5)),
        (
            _CHECKED,
            FeedEdit(min_interval_minutes=10_000),  # capped at 24 hours
            FeedChange(
                min_interval_minutes=10_000, next_check_at=parse_time("2026-11-02T12:00:00Z")
            ),
        ),
        (
            replace(_CHECKED, min_interval_minutes=60.0),
            FeedEdit(min_interval_minutes=0),
            FeedChange(min_interval_minutes=0),  # back to the configured minimum
        ),
        (
            replace(_CHECKED, enabled=False, next_check_at="2026-11-09T00:00:00Z"),
            FeedEdit(enabled=True),
            FeedChange(enabled=True, next_check_at=parse_time("2026-11-01T12:05:00Z")),  # due now
        ),
        (
            replace(_CHECKED, enabled=False),
            FeedEdit(enabled=True),
            FeedChange(enabled=True, next_check_at=parse_time("2026-11-01T12:05:00Z")),
        ),
        (
            replace(_CHECKED, enabled=False, next_check_at="2026-11-01T12:01:00Z"),
            FeedEdit(enabled=True),
            FeedChange(enabled=True, next_check_at=parse_time("2026-11-01T12:01:00Z")),  # due
        ),
        (_CHECKED, FeedEdit(enabled=False), FeedChange(enabled=False)),
    ],
)
def test_what_an_edit_changes(before: FeedSource, edit: FeedEdit, change: FeedChange) -> None:
    now = datetime(2026, 11, 1, 12, 5, 0, 250_000, tzinfo=UTC)  # stored to the second
    assert change_for(before, edit, Config(), now) == change


def test_a_failed_poll_is_said_once(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The `error:` line alone, not also the poller's log line (which -v shows)."""
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    bad = httpserver.url_for("/bad")
    assert _run(config, "sources", "add", bad, "--no-check")[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    result = run_cli("--config", config, "poll", env=env, new_process=True)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: feed 1 {bad}: HTTP 500",
        "1 feed polled, 1 failed",
    ]
    verbose = run_cli("--config", config, "-v", "poll", "--all", env=env, new_process=True)
    assert sum(bad in line for line in verbose.stderr.splitlines()) == 2, verbose.stderr
