"""Passages and their carriers: the groups, the link decisions, background.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.storage.store import Store


class SQLitePassages:
    """The SQLite implementation, reached as `store.passages`."""

    def __init__(self, store: Store) -> None:
        self._store = store
