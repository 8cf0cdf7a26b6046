"""Shared fixtures: a configuration pointing at a database in the test's tmp dir, and
stores that are closed when the test ends (an unclosed Store is a ResourceWarning,
which `filterwarnings = error` turns into a failure)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from pytest_httpserver import HTTPServer

from aggregator.config import Config, Database, FeedsConfig, MinHashParams, PostgresURL
from aggregator.errors import SourceError
from aggregator.ingest.pipeline import Ingester, Outcome
from aggregator.ingest.poll import Poller
from aggregator.model import RawDocument
from aggregator.sources.folder import discover, read_file
from aggregator.storage.store import Store
from tests.postgres import INITDB, PostgresServer

if TYPE_CHECKING:  # tests.daemons imports this module
    from tests.daemons import Daemon

# No verdict hangs on the wall clock (docs/testing.md): Hypothesis's 200 ms deadline
# per example and its "too slow" health check would fail a property test on a
# loaded machine that passes on a quiet one. The fuzz suite's own profiles
# (tests/fuzz/harness.py) still apply where they are loaded.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
if not os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile("suite")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
# A third outlet republishing seed 001's "constructive partner" paragraph (issue 11).
THIRD_OUTLET = REPO / "tests" / "data" / "third-outlet.txt"
AGGREGATOR = Path(sys.executable).parent / "aggregator"


def needs_tool(name: str | None, what: str) -> pytest.MarkDecorator:
    """Skip a test when a tool is missing, except in CI (AGGREGATOR_REQUIRE_TOOLS=1),
    where the test runs anyway and fails for want of it."""
    missing = name is None and os.environ.get("AGGREGATOR_REQUIRE_TOOLS") != "1"
    return pytest.mark.skipif(missing, reason=f"{what} is not installed (.ci/run installs it)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `both_stores` runs once per store (its `config` names a SQLite file,
    then a new database on the session's PostgreSQL server); other tests on SQLite."""
    marked = metafunc.definition.get_closest_marker
    if (
        "store_kind" in metafunc.fixturenames
        and marked("both_stores")
        and not marked("sqlite_only")
    ):
        on_postgres = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")
        kinds = [pytest.param("sqlite"), pytest.param("postgresql", marks=on_postgres)]
        metafunc.parametrize("store_kind", kinds, indirect=True)


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """The store the test runs on: "sqlite" unless the test is marked `both_stores`."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> Database:
    """The test's database: a file in its tmp dir, or a new PostgreSQL database."""
    if store_kind == "sqlite":
        return tmp_path / "test.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return PostgresURL(server.database())


@pytest.fixture
def new_database(
    tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> Callable[[str], Database]:
    """`new_database(name)`: another empty database of the test's kind."""

    def new(name: str) -> Database:
        if store_kind == "sqlite":
            return tmp_path / f"{name}.db"
        server: PostgresServer = request.getfixturevalue("postgres")
        return PostgresURL(server.database())

    return new


def raw_rows(database: Database, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query, read by the engine's own client (sqlite3, psycopg), not
    by the store: an independent look at what the store wrote."""
    if isinstance(database, PostgresURL):
        import psycopg

        with psycopg.connect(database.url) as conn:
            return conn.execute(sql).fetchall()
    with closing(sqlite3.connect(database)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def config(database: Database) -> Config:
    return replace(Config(), database=database, folders=(SEEDS,))


OpenStore = Callable[..., Store]


@pytest.fixture
def open_store(config: Config) -> Iterator[OpenStore]:
    """`open_store(path=None, params=None, **options)`: a Store on the test's database (or
    PATH), closed when the test ends, however it ends."""
    opened: list[Store] = []

    def open_(
        path: Database | None = None, params: MinHashParams | None = None, **kw: bool
    ) -> Store:
        store = Store(path or config.database, params or config.dedup.minhash, **kw)
        opened.append(store)
        return store

    yield open_
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    """The test's database, opened (and created) once; closed when the test ends."""
    return open_store()


def read_all(paths: Iterable[Path], config: Config) -> Iterator[RawDocument | SourceError]:
    for task in discover(list(paths), config.ingest.extensions):
        if isinstance(task, SourceError):
            yield task
            continue
        try:
            yield read_file(task, config.ingest.max_file_bytes)
        except SourceError as e:
            yield e


def ingest(config: Config, *paths: Path) -> list[Outcome]:
    """Ingest files or folders into the configured database; return the outcomes."""
    with Store(config.database, config.dedup.minhash) as store:
        return list(Ingester(store, config).ingest(read_all(paths, config)))


def ingest_docs(config: Config, docs: Iterable[RawDocument]) -> list[Outcome]:
    with Store(config.database, config.dedup.minhash) as store:
        return list(Ingester(store, config).ingest(docs))


def file_doc(
    content: bytes, media_type: str = "text/plain", location: str = "/news/a.txt"
) -> RawDocument:
    """A file of folder /news as the folder source would read it, whatever its bytes."""
    return RawDocument(
        source_kind="folder",
        source_location="/news",
        source_name="news",
        identity=location,
        location=location,
        media_type=media_type,
        content=content,
        modified_at=datetime(2021, 6, 1, 12, 0, tzinfo=UTC),
    )


def text_doc(
    folder: str, name: str, title: str, paragraphs: list[str], when: datetime | None = None
) -> RawDocument:
    """A plain-text article as the folder source would read it from FOLDER/NAME.txt."""
    location = f"{folder}/{name}.txt"
    return RawDocument(
        source_kind="folder",
        source_location=folder,
        source_name=folder.rsplit("/", 1)[-1],
        identity=location,
        location=location,
        media_type="text/plain",
        content=(title + "\n" + "\n".join(paragraphs)).encode(),
        modified_at=when or datetime(2026, 11, 1, tzinfo=UTC),
    )


@pytest.fixture
def seeds_and_third(tmp_path: Path) -> Path:
    """A folder of saved articles: the seeds plus a third outlet carrying 001's passage."""
    folder = tmp_path / "saved"
    shutil.copytree(SEEDS, folder)
    shutil.copy(THIRD_OUTLET, folder)
    return folder


@pytest.fixture
def feeds_config(httpserver: HTTPServer, config: Config) -> Config:
    """The test configuration, allowed to fetch from the loopback server."""
    return replace(config, feeds=FeedsConfig(allow=(f"localhost:{httpserver.port}",)))


@pytest.fixture
def poller(store: Store, feeds_config: Config) -> Iterator[Poller]:
    """A poller on `store`; closing it stops its fetch threads and parse processes."""
    poller = Poller(store, feeds_config)
    try:
        yield poller
    finally:
        poller.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; any still running at the end is killed and reaped."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this session (per xdist worker): tests/postgres.py."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
