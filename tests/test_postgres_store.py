"""What only the PostgreSQL engine does (aggregator/storage/postgres.py), on a real server:
connections lost and opened again, writers on several connections serialised, errors
that name the database without its password, the daemon's advisory lock."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from aggregator.config import Config, PostgresURL
from aggregator.errors import AlreadyRunningError, StoreError
from aggregator.ingest.pipeline import Ingester
from aggregator.storage.postgres import PostgresDaemonLock
from aggregator.storage.store import Store
from tests.conftest import SEEDS, ingest, needs_tool, raw_rows, read_all
from tests.postgres import INITDB, PostgresServer

pytestmark = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")

SEED_001 = next(SEEDS.glob("001_*.txt"))
SEED_004 = next(SEEDS.glob("004_*.txt"))


@pytest.fixture
def pg(config: Config, postgres: PostgresServer) -> Config:
    return replace(config, database=PostgresURL(postgres.database()))


def _terminate(url: PostgresURL, application: str = "aggregator") -> int:
    """End the server connections whose application name is like `application`, as a
    server restart (or the death of their process) would."""
    with psycopg.connect(url.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE %s "
            "AND pid <> pg_backend_pid()",
            (application,),
        ).fetchall()
    return len(rows)


def test_a_connection_lost_while_idle_is_opened_again(pg: Config) -> None:
    assert isinstance(pg.database, PostgresURL)
    with Store(pg.database, pg.dedup.minhash) as store:
        ingest(pg, SEED_001)
        assert _terminate(pg.database) >= 1
        assert store.counts()["articles"] == 1  # a read: retried on a new connection
        assert _terminate(pg.database) >= 1
        [outcome] = list(Ingester(store, pg).ingest(read_all([SEED_004], pg)))
        assert (outcome.status, outcome.passages) == ("new", 2)


def test_a_write_that_loses_its_connection_fails_whole_and_the_next_one_works(
    pg: Config,
) -> None:
    assert isinstance(pg.database, PostgresURL)
    with Store(pg.database, pg.dedup.minhash) as store:
        with pytest.raises(StoreError) as info, store.write():
            store.execute(
                "INSERT INTO service_state (key, value, updated_at) VALUES (?, ?, ?)",
                ("half", "written", "2026-12-02T10:00:00Z"),
            )
            _terminate(pg.database)
            store.execute("SELECT 1")
        assert str(info.value).startswith(f"database {pg.database}: ")
        store.state.write({"whole": "yes"})
        assert store.state.read() == {"whole": "yes"}


def test_writers_on_two_connections_are_serialised_and_see_each_other(pg: Config) -> None:
    """Two ingests at once, each with its own store (as two processes or machines
    would): each article's write waits for the other's, and the second one to write
    finds the passages of the first, whichever it is."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(path: Path) -> None:
        try:
            with Store(pg.database, pg.dedup.minhash) as store:
                ingester = Ingester(store, pg)
                barrier.wait()
                list(ingester.ingest(read_all([path], pg)))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in (SEED_001, SEED_004)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    rows = raw_rows(pg.database, "SELECT cluster_id, count(*) FROM cluster_members GROUP BY 1")
    assert [count for _, count in rows] == [2]
    assert raw_rows(pg.database, "SELECT count(*) FROM passages") == [(2,)]


def test_errors_name_the_database_without_its_password(postgres: PostgresServer) -> None:
    url = postgres.url().replace("://aggregator@", "://aggregator:s3cret@")
    nowhere = PostgresURL(url.rsplit(":", 1)[0] + ":1/none")
    with pytest.raises(StoreError) as info:
        Store(nowhere, Config().dedup.minhash)
    message = str(info.value)
    assert "s3cret" not in message and "aggregator:***@" in message
    assert "cannot connect" in message and len(message.splitlines()) == 1


def test_a_read_only_open_of_an_empty_database_says_so(postgres: PostgresServer) -> None:
    url = PostgresURL(postgres.database())
    with pytest.raises(StoreError, match="holds no aggregator schema"):
        Store(url, Config().dedup.minhash, readonly=True)
    assert raw_rows(url, "SELECT to_regclass('articles') IS NULL") == [(True,)]


def test_the_daemon_lock_is_held_once_and_released_with_its_connection(pg: Config) -> None:
    assert isinstance(pg.database, PostgresURL)
    with Store(pg.database, pg.dedup.minhash):
        pass
    first = PostgresDaemonLock(pg.database)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunningError, match="already served by a running daemon"):
            PostgresDaemonLock(pg.database).acquire()
        assert PostgresDaemonLock(pg.database).held_elsewhere() is not None
    finally:
        first.release()
    assert PostgresDaemonLock(pg.database).held_elsewhere() is None
    again = PostgresDaemonLock(pg.database)
    again.acquire()
    assert PostgresDaemonLock(pg.database).held_elsewhere() == os.getpid()
    # Its connection ends (the daemon was killed): the server lets go of the lock.
    assert _terminate(pg.database, application="aggregator daemon pid %") == 1
    third = PostgresDaemonLock(pg.database)
    third.acquire()
    third.release()
    again.release()
