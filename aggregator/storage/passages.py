"""Passages and their carriers: the groups, the link decisions, background.

Every statement about this part of the database is here (storage is the only
package that speaks SQL); callers get and give frozen dataclasses.

The passage recorder (dedup/passages.py) decides from `carriers_of` and
`paragraph_places` and returns a `PassagePlan` (plans.py); `apply` carries it
out placement by placement, in the order they were decided. Background
(dedup/background.py) decides from `summaries` and `spread`, and `withdraw`
carries out its `Withdrawal`. (The rematch's replay reads, `replay_order` and
`replayed`, are on `store.articles`: they read articles, units and signatures.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aggregator.storage.plans import (
    AppliedPassages,
    CarrierRef,
    NewCarrier,
    NewPassage,
    PassagePlan,
    PassageRef,
    Withdrawal,
)

if TYPE_CHECKING:
    from aggregator.storage.store import Store

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]

_CHUNK = 500  # ids per IN (...) list, far below SQLite's variable limit


@dataclass(frozen=True, slots=True)
class StoredCarrier:
    """A stored article's carrier row, as a new copy is matched against it."""

    id: int
    passage_id: int
    article_id: int
    paragraph_id: int
    char_start: int
    char_end: int
    edge: bool
    background: bool  # its passage's


@dataclass(frozen=True, slots=True)
class ParagraphPlace:
    """Where a stored paragraph sits: its position among its version's `count`."""

    position: int
    count: int


@dataclass(frozen=True, slots=True)
class PassageSummary:
    """A passage's counts: whether it is background, its carriers, their dates."""

    id: int
    background: bool
    carriers: int
    first_published_at: str
    last_published_at: str


@dataclass(frozen=True, slots=True)
class Spread:
    """The articles of a passage's newest carriers (`sample`), and the pairs of
    articles that other passages' linking carriers join, touching that sample."""

    sample: tuple[int, ...]
    other_links: tuple[tuple[int, int], ...]


class SQLPassages:
    """The implementation in SQL (SQLite and PostgreSQL alike), reached as `store.passages`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- what the recorder decides from ------------------------------------------------

    def carriers_of(self, article_ids: Sequence[int]) -> list[StoredCarrier]:
        """Every carrier row of these articles."""
        return [
            StoredCarrier(row_id, passage, article, paragraph, start, end, bool(edge), bool(bg))
            for article, row_id, passage, paragraph, start, end, edge, bg in self._select_in(
                "SELECT c.article_id, c.id, c.passage_id, c.paragraph_id, c.char_start, "
                "c.char_end, c.edge, p.background FROM passage_carriers c "
                "JOIN passages p ON p.id = c.passage_id WHERE c.article_id IN ({})",
                article_ids,
            )
        ]

    def paragraph_places(self, paragraph_ids: Sequence[int]) -> dict[int, ParagraphPlace]:
        """Where each of these paragraphs sits in its article's version."""
        return {
            int(paragraph): ParagraphPlace(int(position), int(count))
            for paragraph, position, count in self._select_in(
                "SELECT p.id, p.position, (SELECT count(*) FROM paragraphs q "
                "WHERE q.version_id = p.version_id) FROM paragraphs p WHERE p.id IN ({})",
                paragraph_ids,
            )
        }

    def summaries(self, passage_ids: Sequence[int]) -> list[PassageSummary]:
        """The counts of these passages, by id."""
        rows = self._select_in(
            "SELECT id, background, carriers, first_published_at, last_published_at "
            "FROM passages WHERE id IN ({})",
            passage_ids,
        )
        summaries = [
            PassageSummary(int(i), bool(background), int(carriers), first, last)
            for i, background, carriers, first, last in rows
        ]
        return sorted(summaries, key=lambda s: s.id)

    def spread(self, passage_id: int, sample: int) -> Spread:
        """The articles of the newest `sample` carriers of a passage, and the links
        other passages make between articles of theirs."""
        articles = [
            int(r[0])
            for r in self._store.execute(
                "SELECT article_id FROM passage_carriers WHERE passage_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (passage_id, sample),
            )
        ]
        marks = ",".join("?" * len(articles))
        links = self._store.execute(
            "SELECT c.article_id, m.article_id FROM passage_carriers c "
            "JOIN passage_carriers m ON m.id = c.matched_id "
            f"WHERE c.linked = 1 AND c.passage_id != ? AND c.article_id IN ({marks}) "
            "UNION SELECT c.article_id, m.article_id FROM passage_carriers m "
            "JOIN passage_carriers c ON c.matched_id = m.id "
            f"WHERE c.linked = 1 AND c.passage_id != ? AND m.article_id IN ({marks})",
            (passage_id, *articles, passage_id, *articles),
        )
        return Spread(tuple(articles), tuple((int(a), int(b)) for a, b in links))

    def linked_articles(self, passage_ids: Sequence[int]) -> set[int]:
        """The articles these passages' linking carriers join (both sides)."""
        joined: set[int] = set()
        for pair in self._select_in(
            "SELECT c.article_id, m.article_id FROM passage_carriers c "
            "JOIN passage_carriers m ON m.id = c.matched_id "
            "WHERE c.linked = 1 AND c.passage_id IN ({})",
            passage_ids,
        ):
            joined.update(int(a) for a in pair)
        return joined

    # -- applying decisions -------------------------------------------------------------

    def apply(self, plan: PassagePlan) -> AppliedPassages:
        """Carry out a plan in the caller's transaction; the ids of what it added."""
        execute, ids = self._store.execute, self._store.ids
        least, greatest = self._store.dialect.least, self._store.dialect.greatest
        passages: list[int] = []
        carriers: list[int] = []

        def passage_id(ref: PassageRef) -> int:
            return passages[ref.index] if isinstance(ref, NewPassage) else ref

        def carrier_id(ref: CarrierRef) -> int:
            return carriers[ref.index] if isinstance(ref, NewCarrier) else ref

        for place in plan.placements:
            for w in place.widened:
                execute(
                    "UPDATE passage_carriers SET char_start = ?, char_end = ?, "
                    f"first_unit_id = {least}(first_unit_id, ?), "
                    f"last_unit_id = {greatest}(last_unit_id, ?) WHERE id = ?",
                    (
                        w.char_start,
                        w.char_end,
                        w.first_unit_id,
                        w.last_unit_id,
                        carrier_id(w.carrier),
                    ),
                )
            if place.opened:
                passages.append(ids.one("passages"))
                execute(
                    "INSERT INTO passages (id, created_at, first_published_at, "
                    "last_published_at) "
                    "VALUES (?, ?, '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z')",
                    (passages[-1], plan.now),
                )
            passage = passage_id(place.passage)
            if place.merged:
                self._merge(passage, [passage_id(p) for p in place.merged])
            for c in place.carriers:
                carriers.append(ids.one("passage_carriers"))
                execute(
                    "INSERT INTO passage_carriers (id, passage_id, article_id, paragraph_id, "
                    "char_start, char_end, first_unit_id, last_unit_id, edge, matched_id, "
                    "similarity, linked, reason, found_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        carriers[-1],
                        passage,
                        c.article_id,
                        c.paragraph_id,
                        c.char_start,
                        c.char_end,
                        c.first_unit_id,
                        c.last_unit_id,
                        int(c.edge),
                        None if c.matched is None else carrier_id(c.matched),
                        c.similarity,
                        int(c.linked),
                        c.reason,
                        plan.now,
                    ),
                )
            execute(
                "UPDATE passages SET carriers = carriers + ?, "
                f"first_published_at = {least}(first_published_at, ?), "
                f"last_published_at = {greatest}(last_published_at, ?) WHERE id = ?",
                (len(place.carriers), place.first_published_at, place.last_published_at, passage),
            )
        return AppliedPassages(tuple(passages), tuple(carriers))

    def _merge(self, target: int, others: Sequence[int]) -> None:
        """Fold passages that turned out to be one (a copy matched both) into `target`."""
        marks = ",".join("?" * len(others))
        execute = self._store.execute
        least, greatest = self._store.dialect.least, self._store.dialect.greatest
        execute(
            f"UPDATE passage_carriers SET passage_id = ? WHERE passage_id IN ({marks})",
            (target, *others),
        )
        execute(
            "UPDATE passages SET "
            f"carriers = carriers + (SELECT sum(carriers) FROM passages WHERE id IN ({marks})), "
            f"first_published_at = {least}(first_published_at, (SELECT min(first_published_at) "
            f"FROM passages WHERE id IN ({marks}))), "
            f"last_published_at = {greatest}(last_published_at, (SELECT max(last_published_at) "
            f"FROM passages WHERE id IN ({marks}))) WHERE id = ?",
            (*others, *others, *others, target),
        )
        execute(f"DELETE FROM passages WHERE id IN ({marks})", tuple(others))

    def withdraw(self, withdrawal: Withdrawal) -> None:
        """Mark the passages background and unlink their carriers."""
        for passage in withdrawal.passages:
            self._store.execute("UPDATE passages SET background = 1 WHERE id = ?", (passage,))
            self._store.execute(
                "UPDATE passage_carriers SET linked = 0, reason = 'background' "
                "WHERE passage_id = ? AND linked = 1",
                (passage,),
            )

    # -- rematch ---------------------------------------------------------------------

    def rematch_pending(self) -> bool:
        """Has an upgrade asked for the passages to be decided again?"""
        row = self._store.execute("SELECT value FROM meta WHERE key = 'rematch'").fetchone()
        return row is not None and row[0] == "pending"

    def rematch_done(self) -> None:
        self._store.execute("DELETE FROM meta WHERE key = 'rematch'")

    def clear(self) -> None:
        """Forget every passage and carrier (a rematch decides them all again)."""
        self._store.execute("DELETE FROM passage_carriers")
        self._store.execute("DELETE FROM passages")

    def _select_in(self, sql: str, ids: Iterable[int]) -> list[tuple[Any, ...]]:
        """Rows of `sql` (its IN list `{}`) for all of `ids`, in chunks under SQLite's limit."""
        ids = list(ids)
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _CHUNK):
            batch = ids[start : start + _CHUNK]
            rows.extend(self._store.execute(sql.format(",".join("?" * len(batch))), batch))
        return rows
