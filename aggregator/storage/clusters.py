"""Story clusters: members, merges, splits, and the plans the clusterer decides.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.storage.store import Store


class SQLiteClusters:
    """The SQLite implementation, reached as `store.clusters`."""

    def __init__(self, store: Store) -> None:
        self._store = store
