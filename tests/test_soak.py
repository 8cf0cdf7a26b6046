"""A short soak (issue 6): the real daemon against the fault-injecting feed farm.

20 feeds for 40 s, every fault kind of `bench/farm.py` injected at least once,
two reader processes looping over the CLI and sqlite-utils (on PostgreSQL: the
CLI with `--db URL` and a psycopg client process); then the farm goes
quiet, the daemon's final polls are awaited, and the ledger is checked: every
entry served intact stored exactly once, nothing stored that was never sent,
every feed's final titles current, the daemon alive and exiting 0 on SIGTERM,
no reader failing or seeing "locked". About 50-60 s on a 2-core machine. Nothing
here is judged by the clock: the soak runs on until every fault kind was injected,
the final wait lasts while feeds keep catching up, and a failure lists what is
missing (the run's files, daemon.log, ledger.json and report.json, stay in the
test's tmp dir).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.config import Database
from bench.farm import FAULT_KINDS
from bench.soak import SoakConfig, run_soak

pytestmark = pytest.mark.both_stores


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_short_soak_loses_nothing_stores_nothing_twice_and_no_reader_sees_locked(
    tmp_path: Path, database: Database
) -> None:
    # 40 s at least, longer on a loaded machine until every fault kind has been injected;
    # the final wait gives up only when no feed has caught up for 120 s.
    config = SoakConfig(
        out=tmp_path,
        database=database,
        feeds=20,
        seconds=40,
        until_every_fault=6,
        final_timeout=120,
    )
    report = run_soak(config)
    shown = json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1, default=str)[
        :6000
    ]
    ledger = report["ledger"]

    assert not report["final_wait_missing"], (
        f"feeds whose final state the daemon never stored: {report['final_wait_missing']}"
    )
    assert report["daemon_alive_at_end"], f"the daemon died during the soak:\n{shown}"
    assert report["daemon_exit"] == 0, f"SIGTERM exit: {report['daemon_exit']}"
    assert ledger["served_entries"] > 50, f"the farm served too little to judge:\n{shown}"
    assert ledger["lost"] == [], f"served intact but never stored: {ledger['lost']}"
    assert ledger["twice"] == [], f"stored more than once: {ledger['twice']}"
    assert ledger["phantom"] == [], f"stored but never sent: {ledger['phantom']}"
    assert ledger["stale"] == [], f"final titles not current: {ledger['stale']}"
    assert ledger["clusters_with_several_articles"] > 0, "syndicated copies were never linked"

    never = set(FAULT_KINDS) - set(report["faults_injected"])
    assert not never, f"fault kinds never injected: {never}"
    errors = report["daemon_errors"]
    for kind in ("HTTP 500", "HTTP 429", "connection reset", "body over max_bytes"):
        assert errors.get(kind), f"the daemon never reported {kind!r}: {errors}"
    assert "INTERNAL ERROR" not in errors, f"a poll crashed: {report['daemon_problems']}"
    assert report["daemon_problems"] == [], f"ERROR lines in the daemon log: {shown}"

    readers = report["readers"]
    assert readers["locked"] == 0, f"a reader saw 'database is locked': {readers['failures']}"
    assert readers["failures"] == [], f"reader failures: {readers['failures']}"
    assert len(readers["runs"]) == 4, f"not every reader command ran: {readers['runs']}"
    assert report["ticks"]["count"] > 5, f"too few ticks timed: {report['ticks']}"
