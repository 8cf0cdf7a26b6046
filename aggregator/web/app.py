"""Datasette on one aggregator database: the wrapper around Datasette and uvicorn.

What it decides, and why:

* **In-process, not the `datasette` command.** Datasette names a database
  after its file, and the packaged metadata (canned queries, labels, hidden
  tables) is keyed by that name; built here, the database is always
  `aggregator` whatever the file is called (`--db /tmp/x.db` too), so the URLs
  in the README and in bookmarks hold. No `_memory` database is attached.
* **Every connection is read-only.** Datasette already reads through
  `file:...?mode=ro` connections, but opens its write connection (for plugins
  and writable canned queries) in SQLite's default read-write-create mode.
  `ReadOnlyDatabase` opens that one with `mode=ro` too, and `query_only` on
  every connection, so any write, from a URL, a canned query or a plugin,
  fails inside SQLite ("attempt to write a readonly database").
* **Only GET and HEAD.** Datasette 0.65 answers a POST to a table or a
  read-only canned query with a 500 and a traceback; `refuse_writes` turns
  every request with another method away first, with 405 and `Allow`.
  Browsing needs nothing else (no logins, no writable canned queries).
* **Not immutable.** Datasette's `-i`/`--immutable` opens the file with
  `immutable=1`, which tells SQLite the file never changes: no locks, no WAL.
  The daemon writes this database while it is browsed, so that would show
  stale or torn pages. A `mode=ro` connection is an ordinary WAL reader: it
  never blocks the writer, and the next page load shows new articles. Like any
  reader of a WAL database it may create the `-wal`/`-shm` files beside it
  (when the writer is not running); the database file itself is not written.
* **The metadata ships in the package** (`metadata.yaml`), read through
  importlib.resources so it works from an installed wheel.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from datasette.app import Datasette
from datasette.database import Database

from aggregator import __version__
from aggregator.storage.dbfile import connect_read_only

DATABASE_NAME = "aggregator"
READ_METHODS = frozenset({"GET", "HEAD"})
# A keep-alive connection left open by a browser does not hold the exit longer.
SHUTDOWN_SECONDS = 5

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

# Downloading the file is offered only for immutable databases anyway; the
# rest are Datasette's defaults (1 s per query, 1,000 rows, 3 SQL threads).
SETTINGS: dict[str, Any] = {"allow_download": False}


def load_metadata() -> dict[str, Any]:
    """The packaged Datasette metadata: canned queries, labels, search, hidden tables."""
    text = files(__package__).joinpath("metadata.yaml").read_text(encoding="utf-8")
    metadata: dict[str, Any] = yaml.safe_load(text)
    return metadata


class ReadOnlyDatabase(Database):  # type: ignore[misc]  # Datasette is untyped
    """A Datasette database whose every connection, the write one included, is read-only."""

    def __init__(self, ds: Datasette, path: Path) -> None:
        super().__init__(ds, path=str(path), is_mutable=True)
        self._file = path.resolve()

    def connect(self, write: bool = False) -> sqlite3.Connection:
        conn = connect_read_only(self._file)
        # Datasette closes these on shutdown (Database.close).
        self._all_file_connections.append(conn)
        return conn


def build_datasette(path: Path, settings: dict[str, Any] | None = None) -> Datasette:
    """Datasette serving PATH read-only as the `aggregator` database."""
    ds = Datasette(
        metadata=load_metadata(),
        settings={**SETTINGS, **(settings or {})},
        version_note=f"aggregator {__version__}",
    )
    ds.remove_database("_memory")  # attached when no file is given
    ds.add_database(ReadOnlyDatabase(ds, path), name=DATABASE_NAME)
    return ds


def refuse_writes(app: ASGIApp) -> ASGIApp:
    """APP behind a guard that answers any HTTP method but GET and HEAD with 405."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b"read-only: GET and HEAD only\n"})
            return
        await app(scope, receive, send)

    return guarded


def serve(ds: Datasette, sock: socket.socket, access_log: bool) -> None:
    """Serve until Ctrl-C or SIGTERM on a socket already bound and listening.

    uvicorn's log goes through the handlers the CLI configured (`log_config=None`);
    each request is logged only with `access_log` (`aggregator -v browse`).
    Ctrl-C is the way to stop it, so it returns normally rather than as an
    interruption.
    """
    config = uvicorn.Config(
        refuse_writes(ds.app()),
        log_config=None,
        log_level=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stopped on
        uvicorn.Server(config).run(sockets=[sock])
