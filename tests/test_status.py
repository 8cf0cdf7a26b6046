"""`aggregator status` as a health check (issue 13, item 2): each daemon job's last
outcome, the failing feeds, and an exit code that says healthy (0), not running (3)
or degraded (4)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, DaemonConfig, Database
from aggregator.model import format_time
from aggregator.service.state import (
    EXIT_DEGRADED,
    EXIT_HEALTHY,
    EXIT_NOT_RUNNING,
    JobOutcome,
    degraded_by,
    index_record,
    short_reach,
)
from aggregator.storage.store import Store
from tests.clirun import run_cli
from tests.conftest import AGGREGATOR, SEEDS, ingest
from tests.daemons import DEADLINE, FAST, Daemon, wait_for, write_articles, write_config

pytestmark = pytest.mark.both_stores


def _status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "status", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def _outcome(daemon: Daemon, job: str) -> JobOutcome | None:
    recorded = daemon.state(f"job_{job}")
    return JobOutcome.from_json(recorded) if recorded else None


def test_a_missing_folder_makes_the_scan_fail_and_the_service_degraded_until_it_is_there(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    folder = tmp_path / "inbox"  # configured, not there (the README's /etc/seeds case)
    config = write_config(tmp_path / "agg.toml", f'folders = ["{folder}"]\n{FAST}', database)
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for(lambda: _outcome(daemon, "scan") is not None, daemon.said("a scan outcome"))
    wait_for(lambda: _outcome(daemon, "tick") is not None, daemon.said("a tick outcome"))

    shown = _status(config)
    assert shown.returncode == EXIT_DEGRADED, shown.stdout + shown.stderr
    pid = daemon.process.pid
    assert shown.stdout.startswith(f"daemon: running (pid {pid}), degraded\n  problem: job scan")
    scan = next(line for line in shown.stdout.splitlines() if line.startswith("  job scan: "))
    assert scan.startswith("  job scan: FAILED ") and scan.endswith(
        f"{folder}: no such file or folder"
    )
    assert "  job tick: ok " in shown.stdout

    report = json.loads(_status(config, "--json").stdout)
    assert report["health"] == "degraded"
    assert report["jobs"]["scan"]["ok"] is False
    assert report["jobs"]["scan"]["error"] == f"{folder}: no such file or folder"
    assert report["problems"] == [
        f"job scan failed at {report['jobs']['scan']['at']}: {folder}: no such file or folder"
    ]

    write_articles(folder, 2)
    wait_for(lambda: daemon.articles() == 2, daemon.said("the folder's two articles"))
    wait_for(lambda: (o := _outcome(daemon, "scan")) is not None and o.ok, daemon.said("ok"))
    healthy = _status(config)
    assert healthy.returncode == EXIT_HEALTHY, healthy.stdout
    assert healthy.stdout.startswith(f"daemon: running (pid {pid}), healthy\n")
    assert "problem:" not in healthy.stdout
    [index] = [line for line in healthy.stdout.splitlines() if line.startswith("index: ")]
    held = daemon_index_units(index)
    assert held > 0 and index.endswith(" units in memory, every stored unit")
    assert daemon.stop() == 0

    stopped = _status(config)
    assert stopped.returncode == EXIT_NOT_RUNNING, stopped.stdout
    assert stopped.stdout.startswith("daemon: not running\n")


def test_a_digest_that_cannot_be_written_is_a_failed_job_and_the_daemon_goes_on(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    """The README's service install put the digest folder where the service cannot
    write; the job failed with a traceback in the log and `status` said nothing."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the digest folder's parent should be\n")
    config = write_config(
        tmp_path / "agg.toml", f'{FAST}[digest]\ndirectory = "{blocker / "digests"}"\n', database
    )
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    # The digest last due was never written (a new database): it runs at start.
    wait_for(lambda: _outcome(daemon, "digest") is not None, daemon.said("a digest outcome"))
    wait_for(lambda: _outcome(daemon, "tick") is not None, daemon.said("a tick outcome"))

    shown = _status(config)
    assert shown.returncode == EXIT_DEGRADED, shown.stdout
    digest = _outcome(daemon, "digest")
    assert digest is not None and not digest.ok and digest.error is not None
    assert digest.error.startswith(("FileExistsError", "NotADirectoryError"))
    assert str(blocker) in digest.error and "\n" not in digest.error
    assert f"  job digest: FAILED {digest.at} " in shown.stdout
    assert daemon.process.poll() is None, "the daemon goes on"
    assert daemon.stop() == 0


def test_a_tick_overdue_for_three_ticks_and_a_budget_is_a_problem() -> None:
    daemon = DaemonConfig(tick_seconds=60, tick_budget_seconds=300)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    allowed = timedelta(seconds=3 * 60 + 300)
    on_time = {"last_tick_at": format_time(now - allowed)}
    assert degraded_by({}, on_time, daemon, now) == []
    late = {"last_tick_at": format_time(now - allowed - timedelta(seconds=1))}
    assert degraded_by({}, late, daemon, now) == [
        f"no feed tick finished since {late['last_tick_at']} (expected every 60 s)"
    ]
    # Before its first tick, a daemon is judged from when it started.
    starting = {"started_at": format_time(now - timedelta(seconds=30))}
    assert degraded_by({"tick": None}, starting, daemon, now) == []


def test_a_recorded_outcome_that_is_not_one_reads_as_none() -> None:
    for text in ("", "{", "[]", '{"at": "x"}', '{"at": 1, "ok": true, "seconds": "x"}'):
        assert JobOutcome.from_json(text) is None
    outcome = JobOutcome("2026-12-02T12:00:00Z", False, "disk full", 1.5)
    assert JobOutcome.from_json(outcome.to_json()) == outcome


def daemon_index_units(line: str) -> int:
    return int(line.removeprefix("index: ").split(" ")[0].replace(",", ""))


def test_status_says_since_when_a_bounded_index_reaches(config: Config) -> None:
    """The daemon records its index's reach after each job; here it is recorded by hand
    as the daemon would, for an index that dropped its oldest units."""
    ingest(config, SEEDS)
    with Store(config.database, config.dedup.minhash) as store:
        floor = int(store.execute("SELECT min(id) FROM units").fetchone()[0]) + 5
        since = store.articles.unit_seen_at(floor)
        store.state.write({"index": json.dumps({"units": 1234, "since": since})})
    shown = run_cli("--db", str(config.database), "status")
    assert (
        f"index: 1,234 units in memory, articles first seen since {since}; older units left "
        "it (raise dedup.index_max_units to keep them)"
    ) in shown.stdout.splitlines()
    report = json.loads(run_cli("--db", str(config.database), "status", "--json").stdout)
    assert (report["index_units"], report["index_since"]) == (1234, since)


def test_status_weighs_the_index_reach_against_the_match_window(config: Config) -> None:
    """Recorded as the daemon records it: an index reaching back five days covers the
    3-day window; one reaching back a day says how much of the window it misses."""
    ingest(config, SEEDS)
    now = datetime.now(UTC)
    expected = {
        5.0: "the whole 3-day match window",
        1.0: "only the last 1.0 days of the 3-day match window, copies of older articles "
        "in it are missed",
    }
    for days, tail in expected.items():
        since = format_time(now - timedelta(days=days))
        with Store(config.database, config.dedup.minhash) as store:
            store.state.write({"index": index_record(1234, since, 3.0)})
        shown = run_cli("--db", str(config.database), "status").stdout.splitlines()
        [line] = [x for x in shown if x.startswith("index: ")]
        assert line == (
            f"index: 1,234 units in memory, articles first seen since {since}; older units "
            f"left it (raise dedup.index_max_units to keep them): {tail}"
        )
        report = json.loads(run_cli("--db", str(config.database), "status", "--json").stdout)
        assert report["window_days"] == 3.0
        assert report["index_days"] == pytest.approx(days, abs=0.01)
        warning = short_reach(since, 3.0, now)
        assert (warning is None) == (days >= 3)
    assert short_reach("", 3.0, now) is None


def test_a_bound_short_of_the_window_is_logged_and_shown(
    tmp_path: Path, daemons: list[Daemon], database: Database
) -> None:
    """400 articles (about 1,800 units) into an index bounded at 1,000 units: the daemon
    drops the oldest, all first seen minutes ago, so the index reaches back less than the
    3-day window; the log says so and `status` shows how much of the window is held."""
    folder = tmp_path / "inbox"
    write_articles(folder, 400)
    body = f'folders = ["{folder}"]\n{FAST}[dedup]\nindex_max_units = 1000\n'
    config = write_config(tmp_path / "agg.toml", body, database)
    daemon = Daemon(config, db=database)
    daemons.append(daemon)
    daemon.wait_started()
    wait_for(lambda: daemon.articles() == 400, daemon.said("400 articles"))
    daemon.wait_for_log("less than the 3-day match window")
    wait_for(lambda: "match window" in _status(config).stdout, daemon.said("the reach"))
    [line] = [x for x in _status(config).stdout.splitlines() if x.startswith("index: ")]
    assert 1000 <= daemon_index_units(line) <= 1100
    assert line.endswith(
        "days of the 3-day match window, copies of older articles in it are missed"
    )
    report = json.loads(_status(config, "--json").stdout)
    assert report["index_days"] < 0.1 and report["window_days"] == 3.0
    assert daemon.stop() == 0
