"""Shared fixtures: a configuration pointing at a database in the test's tmp dir."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config import Config
from aggregator.errors import SourceError
from aggregator.model import RawDocument
from aggregator.pipeline import Ingester, Outcome
from aggregator.sources.folder import discover, read_file
from aggregator.store import Store

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
AGGREGATOR = Path(sys.executable).parent / "aggregator"


def needs_tool(name: str | None, what: str) -> pytest.MarkDecorator:
    """Skip a test when a tool is missing, except in CI (AGGREGATOR_REQUIRE_TOOLS=1),
    where the test runs anyway and fails for want of it."""
    missing = name is None and os.environ.get("AGGREGATOR_REQUIRE_TOOLS") != "1"
    return pytest.mark.skipif(missing, reason=f"{what} is not installed (.ci/run installs it)")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return replace(Config(), database=tmp_path / "test.db", folders=(SEEDS,))


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
    store = Store(config.database, config.dedup.minhash)
    try:
        return list(Ingester(store, config).ingest(read_all(paths, config)))
    finally:
        store.close()


def ingest_docs(config: Config, docs: Iterable[RawDocument]) -> list[Outcome]:
    store = Store(config.database, config.dedup.minhash)
    try:
        return list(Ingester(store, config).ingest(docs))
    finally:
        store.close()


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
