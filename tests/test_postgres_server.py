"""The PostgreSQL server the test session starts (tests/postgres.py): real, on
127.0.0.1 only, a new database per test, gone when the session ends."""

from __future__ import annotations

import socket

import psycopg

from tests.conftest import needs_tool
from tests.postgres import INITDB, PostgresServer

needs_postgres = needs_tool(INITDB, "PostgreSQL (initdb, pg_ctl)")


@needs_postgres
def test_the_session_server_answers_on_loopback(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.database()) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        listening = conn.execute("SHOW listen_addresses").fetchone()
    assert version is not None and int(version[0].split(".")[0]) >= 13
    assert listening == ("127.0.0.1",)
    with socket.socket() as sock:  # the port is the loopback one, and open
        assert sock.connect_ex(("127.0.0.1", postgres.port)) == 0


@needs_postgres
def test_each_database_is_new_and_empty(postgres: PostgresServer) -> None:
    first, second = postgres.database(), postgres.database()
    assert first != second
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (x int)")
    with psycopg.connect(second) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
