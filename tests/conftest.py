"""Shared fixtures: a configuration pointing at a database in the test's tmp dir."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
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
