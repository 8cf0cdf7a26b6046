"""Module-scoped fixtures of the fuzz tests (module scope: Hypothesis runs many
examples in one test call, and function-scoped fixtures would not be reset between them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import MinHashParams
from aggregator.storage.store import Store


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for the files under test (pytest's tmp dirs: it prunes them)."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def opml_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store to import OPML into, closed when the module's tests are done."""
    store = Store(tmp_path_factory.mktemp("opml") / "t.db", MinHashParams())
    yield store
    store.close()
