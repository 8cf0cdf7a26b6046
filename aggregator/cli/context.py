"""What every CLI command shares: the configuration, read lazily, and the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import click

from aggregator.config import Config, Database
from aggregator.configfile import find_config, load_config
from aggregator.service.system import run_as_owner
from aggregator.storage.store import Store

T = TypeVar("T")


class Context:
    """What every command needs: the configuration and a way to open the store.

    The configuration is read on first use, not when the group starts, so that
    `aggregator COMMAND --help` works even when the configuration is broken.
    """

    def __init__(self, config_path: Path | None, db: Database | None, debug: bool) -> None:
        self.config_path = config_path
        self.db = db
        self.debug = debug
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            config = load_config(find_config(self.config_path))
            self._config = replace(config, database=self.db) if self.db else config
        return self._config

    def open_store(self, readonly: bool = False) -> Store:
        """The store; the folder of the configured database is created if missing,
        never that of a --db path (`Store`). As root, the command first becomes
        the database's owner (`service.run_as_owner`)."""
        run_as_owner(self.config.database)
        return Store(
            self.config.database,
            self.config.dedup.minhash,
            readonly=readonly,
            create_folder=self.db is None,
        )

    def read(self, query: Callable[[Store], T]) -> T:
        """Run one read-only query against the database and close it."""
        store = self.open_store(readonly=True)
        try:
            return query(store)
        finally:
            store.close()


pass_context = click.make_pass_decorator(Context)
