"""The PostgreSQL engine: the store on an existing server, for more than one machine.

Selected by a `postgresql://` URL as `database` (config, --db, AGGREGATOR_DB);
needs the `postgres` extra (psycopg 3). What it decides:

* **Same statements, same rows.** The parts' SQL runs as written
  (`engine.to_pyformat` rewrites the placeholders). Values are bound by the
  server, and psycopg prepares a statement the fifth time it runs, so the
  writer's few dozen statement texts are parsed and planned once per
  connection, not once per article; a parameter whose type PostgreSQL cannot
  infer from its place needs a `CAST`. The schema (`pgschema.py`) keeps
  SQLite's column types, so rows read the same on both engines. Behind a
  pooler in transaction mode (PgBouncer), prepared statements need its
  `max_prepared_statements` (1.21 and later).
* **Writers are serialised as in SQLite.** Every write transaction first takes
  one transaction-level advisory lock, the equivalent of `BEGIN IMMEDIATE`: a
  writer sees every earlier writer's units (`Articles.units_since`) before it
  matches, whichever machine wrote them. Readers never wait (MVCC).
* **Autocommit outside `write()`**, so a read holds no transaction open and a
  long-lived daemon never pins old row versions.
* **A lost connection is opened again** (the server restarted, a proxy dropped
  it): a statement outside a write that finds it lost is retried once on a new
  connection; inside a write, the write fails (the server has rolled it back)
  and the next one starts on a new connection. The daemon's next job goes on.
* **Errors become one line** naming the database (its URL without a password):
  cannot connect, disk full, read-only, or the server's message;
  `RefusedError` for a verdict on one statement's values (a data error, a
  constraint, a value too large for an index).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from aggregator.config import PostgresURL
from aggregator.errors import AlreadyRunningError, RefusedError, StoreError
from aggregator.storage.engine import POSTGRESQL, Args, Dialect, Rows, to_pyformat
from aggregator.storage.pgschema import migrate_postgres

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Any constant of our own: it only has to differ from other users' advisory locks.
WRITE_LOCK = 0x616767_7772_6974  # "aggwrit"
CONNECT_TIMEOUT = 10  # seconds


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise StoreError(
            "PostgreSQL needs the postgres extra: pip install 'aggregator[postgres]'"
        ) from e
    return psycopg


class PostgresEngine:
    """A connection to one PostgreSQL database."""

    dialect: Dialect = POSTGRESQL

    def __init__(
        self, url: PostgresURL, initial_meta: Mapping[str, str], *, readonly: bool = False
    ) -> None:
        """Connect, and create or migrate the schema (`pgschema.migrate_postgres`)."""
        self.url = url
        self.location = str(url)
        self.readonly = readonly
        self._writing = False
        self._sequences: dict[str, str] = {}  # table -> its id column's sequence
        self._pg = _psycopg()
        self.conn = self._connect()
        try:
            if not readonly:
                migrate_postgres(self.conn, initial_meta)
            elif not self._has_schema():
                raise StoreError(
                    f"database {self.location}: holds no aggregator schema "
                    "(run `aggregator ingest` first)"
                )
        except BaseException:
            self.conn.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self.url, "aggregator")
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    def _has_schema(self) -> bool:
        row = self.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        return bool(row[0])

    def _revive(self) -> None:
        """Open the connection again if it was lost while idle."""
        if self.conn.broken or self.conn.closed:
            log.warning("database %s: connection lost; opening it again", self.location)
            self.conn = self._connect()

    def execute(self, sql: str, args: Args = ()) -> Rows:
        """Run one statement. Outside a write, a connection found lost (the server
        restarted, a proxy dropped it) is opened again and the statement retried once:
        every statement outside `write()` is a read, so running it twice is harmless."""
        query, params = (sql, None) if not args else (to_pyformat(sql), args)
        if not self._writing:
            self._revive()
        try:
            return self.conn.execute(query, params)
        except self._pg.OperationalError as e:
            if self._writing or not self.conn.broken:
                raise self._translate(e) from e
        except self._pg.Error as e:
            raise self._translate(e) from e
        self._revive()
        try:
            return self.conn.execute(query, params)
        except self._pg.Error as e:
            raise self._translate(e) from e

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), list(rows))
        except self._pg.Error as e:
            raise self._translate(e) from e

    @contextmanager
    def write(self, serialised: bool = True, pipelined: bool = True) -> Iterator[None]:
        """One write transaction, after the advisory write lock; rolled back on any error.
        `serialised=False`: without that lock, for writes no other writer's depend on
        (a fetch node's leases and staged entries, storage/nodes.py).

        `pipelined` (the default): the transaction runs in psycopg's pipeline mode.
        A statement whose result nobody reads (an UPDATE, an INSERT without
        RETURNING) is sent without waiting for its answer, so this process and
        the server work at the same time instead of taking turns; an error still
        surfaces before the commit, at the next result read or at the end (what
        it saves: docs/benchmarks.md, "Several nodes, after cutting the writer's
        round trips"). COPY cannot run in a pipeline: a bulk copy passes False."""
        self._revive()
        try:
            with (
                self.conn.pipeline() if pipelined else nullcontext(),
                self.conn.transaction(),
            ):
                self._writing = True
                if serialised:
                    self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield
        except self._pg.Error as e:
            raise self._translate(e) from e
        finally:
            self._writing = False

    def reserve_ids(self, table: str, count: int) -> list[int]:
        """`count` values of the table's identity sequence (storage/ids.py)."""
        sequence = self._sequences.get(table)
        if sequence is None:
            row = self.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()
            sequence = self._sequences[table] = str(row[0])
        rows = self.execute(
            "SELECT nextval(?::regclass) FROM generate_series(1, ?)", (sequence, count)
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def check(self) -> None:
        """StoreError unless the server answers and the schema is there."""
        if not self._has_schema():
            raise StoreError(f"database {self.location}: the aggregator schema is missing")

    def size(self) -> int:
        return int(self.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def _translate(self, error: Exception) -> StoreError:
        errors = self._pg.errors
        text = _first_line(error)
        where = f"database {self.location}"
        if isinstance(
            error,
            self._pg.DataError | self._pg.IntegrityError | errors.ProgramLimitExceeded,
        ):
            return RefusedError(f"{where}: {text}", text)
        if isinstance(error, errors.DiskFull):
            return StoreError(
                f"{where}: disk full ({text}); nothing of the current write was kept, "
                "and writing resumes once there is space"
            )
        if isinstance(error, errors.ReadOnlySqlTransaction | errors.InsufficientPrivilege):
            return StoreError(f"{where}: cannot write ({text}); check the user's privileges")
        if isinstance(error, self._pg.OperationalError):
            return StoreError(f"{where}: {text}; the connection is opened again on next use")
        return StoreError(f"{where}: {text}")


def connect(url: PostgresURL, application: str, **options: Any) -> psycopg.Connection[Any]:
    """An autocommit connection named `application` on the server (what
    `pg_stat_activity` shows); a one-line StoreError if there is none."""
    pg = _psycopg()
    try:
        conn: psycopg.Connection[Any] = pg.connect(
            url.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application,
            **options,
        )
    except pg.Error as e:
        raise StoreError(
            f"database {url}: cannot connect ({_first_line(e)}); check the URL "
            "and that the server is running and accepts this user"
        ) from e
    return conn


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# The daemon's lock: another constant of our own (see WRITE_LOCK).
DAEMON_LOCK = 0x616767_6461_656D  # "aggdaem"
_HOLDER = "aggregator daemon pid "


class PostgresDaemonLock:
    """One daemon per PostgreSQL database: a session advisory lock on a connection of
    its own, held for the daemon's lifetime.

    The server releases it when that connection ends, however the daemon ends
    (`kill -9` included): nothing is left to clean up. The holder names itself
    in `application_name`, so `status` on any machine can say which pid holds it.
    """

    def __init__(self, url: PostgresURL) -> None:
        self.url = url
        self.path = f"{url} (advisory lock {DAEMON_LOCK})"
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> None:
        conn = connect(self.url, f"{_HOLDER}{os.getpid()} on {socket.gethostname()}"[:63])
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK,)).fetchone()
        if not (row and row[0]):
            holder = self._holder(conn)
            conn.close()
            raise AlreadyRunningError(
                f"{self.url}: already served by a running daemon "
                f"({holder or 'another process'}); stop it first"
            )
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def held_elsewhere(self) -> int | None:
        """The pid of a running daemon holding the lock (-1 if unknown), or None."""
        with connect(self.url, "aggregator status") as conn:
            holder = self._holder(conn)
        if holder is None:
            return None
        pid = holder.removeprefix(_HOLDER).split(" ")[0]
        return int(pid) if holder.startswith(_HOLDER) and pid.isdigit() else -1

    @staticmethod
    def _holder(conn: psycopg.Connection[Any]) -> str | None:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
            (DAEMON_LOCK >> 32, DAEMON_LOCK & 0xFFFFFFFF),
        ).fetchone()
        return None if row is None else str(row[0])


# One active process per role that must run once in a deployment (service/roles.py).
ROLE_LOCKS = {"dedup": 0x616767_6465_6475, "scheduler": 0x616767_7363_6864}  # aggdedu, aggschd


class PostgresRoleLock:
    """The one active node of a role: a session advisory lock on a connection of its
    own. A standby asks again (`try_acquire`) until the holder's connection ends, which
    the server notices at once when the holder is killed (`kill -9` included)."""

    def __init__(self, url: PostgresURL, role: str) -> None:
        self.url = url
        self.key = ROLE_LOCKS[role]
        self.name = f"aggregator {role} pid {os.getpid()} on {socket.gethostname()}"[:63]
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = connect(self.url, self.name)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def listen(self, channel: str) -> None:
        """Be told of `NOTIFY channel` on the lock's connection (see `wait`)."""
        assert self._conn is not None
        self._conn.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notification; whether one came."""
        assert self._conn is not None
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
        except _psycopg().Error:
            return False  # `alive` says the rest
        return False

    def alive(self) -> bool:
        """Still held: the lock's connection answers (a server restart ends it)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except _psycopg().Error:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
