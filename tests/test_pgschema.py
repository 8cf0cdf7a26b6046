"""The PostgreSQL schema (aggregator/storage/pgschema.py) against a real server.

The oracle for names is SQLite's own: a fresh database made by `Store`, read
from sqlite_master and PRAGMA table_info, minus FTS5's tables (PostgreSQL has
a generated `search` column on articles instead).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aggregator.config import MinHashParams
from aggregator.errors import StoreError
from aggregator.storage.pgschema import PG_SCHEMA_VERSION, migrate_postgres
from aggregator.storage.store import Store
from tests.conftest import needs_tool
from tests.postgres import INITDB, PostgresServer

needs_postgres = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")

NOW = "2026-12-02T10:00:00+00:00"


@pytest.fixture
def conn(postgres: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    """A new database, migrated."""
    with psycopg.connect(postgres.database()) as connection:
        migrate_postgres(connection)
        yield connection


@pytest.fixture(scope="module")
def sqlite_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A fresh SQLite database at the final schema version."""
    store = Store(tmp_path_factory.mktemp("oracle") / "oracle.db", MinHashParams())
    try:
        yield store.conn
    finally:
        store.close()


def _sqlite_names(db: sqlite3.Connection, kind: str) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
    return {
        name
        for (name,) in rows
        if not name.startswith(("sqlite_", "articles_fts")) and name != "sqlite_sequence"
    }


def _pg_columns(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


@needs_postgres
def test_every_sqlite_table_and_view_is_there_with_its_columns(
    conn: psycopg.Connection[Any], sqlite_oracle: sqlite3.Connection
) -> None:
    tables = _sqlite_names(sqlite_oracle, "table")
    views = _sqlite_names(sqlite_oracle, "view")
    assert {"articles", "passage_carriers", "meta", "service_state"} <= tables
    assert views == {"cluster_articles", "duplicate_passages"}
    pg_tables = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    }
    pg_views = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'"
        )
    }
    # PostgreSQL's own: its version, and the tables of several nodes (storage/nodes.py).
    assert pg_tables == tables | {"schema_version", "nodes", "feed_leases", "staged"}
    assert pg_views == views
    pg_columns = _pg_columns(conn)
    for name in tables | views:
        expected = [row[1] for row in sqlite_oracle.execute(f"PRAGMA table_info({name})")]
        if name == "articles":
            expected.append("search")  # the tsvector that replaces articles_fts
        assert pg_columns[name] == expected, name


@needs_postgres
def test_every_named_sqlite_index_is_there(
    conn: psycopg.Connection[Any], sqlite_oracle: sqlite3.Connection
) -> None:
    pg_indexes = {
        name
        for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    }
    assert _sqlite_names(sqlite_oracle, "index") | {"articles_search"} <= pg_indexes


@needs_postgres
def test_a_second_migration_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    def snapshot() -> tuple[object, ...]:
        return (
            conn.execute("SELECT version FROM schema_version").fetchall(),
            _pg_columns(conn),
            conn.execute("SELECT indexname FROM pg_indexes ORDER BY 1").fetchall(),
        )

    before = snapshot()
    assert migrate_postgres(conn) == PG_SCHEMA_VERSION
    assert snapshot() == before
    assert before[0] == [(PG_SCHEMA_VERSION,)]


@needs_postgres
def test_a_staged_payload_is_stored_out_of_line_without_compression(
    conn: psycopg.Connection[Any],
) -> None:
    """Schema v4: MinHash values do not compress, so the server must not try
    (`e`: external, uncompressed); a large payload still reads back whole."""
    storage = conn.execute(
        "SELECT attstorage FROM pg_attribute "
        "WHERE attrelid = 'staged'::regclass AND attname = 'payload'"
    ).fetchone()
    assert storage == ("e",)
    payload = bytes(range(256)) * 4096  # 1 MiB
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO staged (articles, payload) VALUES (1, %s) RETURNING id", (payload,)
        ).fetchone()
    assert row is not None
    stored = conn.execute(
        "SELECT payload, pg_column_size(payload) FROM staged WHERE id = %s", (row[0],)
    ).fetchone()
    assert stored is not None and bytes(stored[0]) == payload
    assert stored[1] >= len(payload)  # stored as is: this payload would compress well


@needs_postgres
def test_a_newer_database_is_refused(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("UPDATE schema_version SET version = %s", (PG_SCHEMA_VERSION + 1,))
    with pytest.raises(
        StoreError, match=rf"version {PG_SCHEMA_VERSION + 1} is newer .*'s {PG_SCHEMA_VERSION}"
    ):
        migrate_postgres(conn)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [
        (PG_SCHEMA_VERSION + 1,)
    ]


def _article(conn: psycopg.Connection[Any], source: int, identity: str, body: str) -> int:
    row = conn.execute(
        "INSERT INTO articles (source_id, identity, location, title, body, published_at, "
        "first_seen_at, updated_at, version, content_hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, 'h') RETURNING id",
        (source, identity, f"/{identity}.txt", f"Title {identity}", body, NOW, NOW, NOW),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _paragraphs(conn: psycopg.Connection[Any], article: int, texts: list[str]) -> list[int]:
    row = conn.execute(
        "INSERT INTO article_versions (article_id, version, content_hash, title, "
        "published_at, seen_at) VALUES (%s, 1, 'h', 't', %s, %s) RETURNING id",
        (article, NOW, NOW),
    ).fetchone()
    assert row is not None
    ids = []
    for position, text in enumerate(texts):
        made = conn.execute(
            "INSERT INTO paragraphs (version_id, article_id, position, text) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            (row[0], article, position, text),
        ).fetchone()
        assert made is not None
        ids.append(int(made[0]))
    return ids


def _source(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute(
        "INSERT INTO sources (kind, location, name, created_at) "
        "VALUES ('folder', %s, %s, %s) RETURNING id",
        (f"/{name}", name, NOW),
    ).fetchone()
    assert row is not None
    return int(row[0])


@needs_postgres
def test_the_search_column_finds_an_article_by_a_word_of_its_body(
    conn: psycopg.Connection[Any],
) -> None:
    source = _source(conn, "wire")
    wanted = _article(conn, source, "a", "Talks were described as constructive by both sides.")
    _article(conn, source, "b", "Nothing to see here.")
    found = conn.execute(
        "SELECT id FROM articles WHERE search @@ plainto_tsquery('simple', 'constructive')"
    ).fetchall()
    assert found == [(wanted,)]


@needs_postgres
def test_duplicate_passages_numbers_paragraphs_from_one(conn: psycopg.Connection[Any]) -> None:
    shared = "The minister called the talks a constructive partnership."
    first, second = _source(conn, "Wire"), _source(conn, "Daily")
    origin = _article(conn, first, "a", "x")
    copy = _article(conn, second, "b", "y")
    origin_paragraphs = _paragraphs(conn, origin, [shared])
    copy_paragraphs = _paragraphs(conn, copy, ["Intro.", "Quote: " + shared])
    passage = conn.execute(
        "INSERT INTO passages (created_at, first_published_at, last_published_at, carriers) "
        "VALUES (%s, %s, %s, 2) RETURNING id",
        (NOW, NOW, NOW),
    ).fetchone()
    assert passage is not None
    carrier = (
        "INSERT INTO passage_carriers (passage_id, article_id, paragraph_id, char_start, "
        "char_end, first_unit_id, last_unit_id, edge, matched_id, similarity, linked, "
        "reason, found_at) VALUES (%s, %s, %s, %s, %s, 1, 1, 0, %s, %s, %s, %s, %s) "
        "RETURNING id"
    )
    matched = conn.execute(
        carrier,
        (passage[0], origin, origin_paragraphs[0], 0, len(shared), None, None, 0, "origin", NOW),
    ).fetchone()
    assert matched is not None
    start = len("Quote: ")
    conn.execute(
        carrier,
        (
            passage[0],
            copy,
            copy_paragraphs[1],
            start,
            start + len(shared),
            matched[0],
            0.91234,
            1,
            "linked",
            NOW,
        ),
    )
    rows = conn.execute(
        "SELECT article_id, source, paragraph, passage, other_article_id, other_source, "
        "other_paragraph, other_passage, similarity, boilerplate, linked "
        "FROM duplicate_passages"
    ).fetchall()
    assert rows == [(copy, "Daily", 2, shared, origin, "Wire", 1, shared, 0.912, 0, 1)]


@needs_postgres
def test_deleting_an_article_deletes_its_paragraphs(conn: psycopg.Connection[Any]) -> None:
    source = _source(conn, "wire")
    kept, gone = _article(conn, source, "kept", "k"), _article(conn, source, "gone", "g")
    _paragraphs(conn, kept, ["one"])
    _paragraphs(conn, gone, ["one", "two"])
    conn.execute("DELETE FROM articles WHERE id = %s", (gone,))
    counts = conn.execute(
        "SELECT article_id, count(*) FROM paragraphs GROUP BY article_id"
    ).fetchall()
    assert counts == [(kept, 1)]
    versions = conn.execute("SELECT count(*) FROM article_versions").fetchone()
    assert versions == (1,)


def test_the_module_imports_without_psycopg(tmp_path: Path) -> None:
    """`aggregator` must import without the postgres extra: psycopg is hidden here."""
    import subprocess
    import sys

    blocker = tmp_path / "psycopg.py"
    blocker.write_text("raise ImportError('psycopg is not installed')\n")
    code = "import aggregator.storage.pgschema as m; print(len(m.PG_MIGRATIONS))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(PG_SCHEMA_VERSION)
