"""`aggregator browse`: the configured database in the browser, through Datasette.

What it decides, and why:

* **Datasette, as an optional extra.** Users already inspect the store with
  sqlite-utils; Datasette is the browser view from the same ecosystem. It is
  the `web` extra (`pip install 'aggregator[web]'`) so that ingesting and the
  daemon never need it; without it this command says so in one line.
* **Never writes, never creates.** The database must exist and be at this
  aggregator's schema version: browsing does not migrate (a writer does,
  after a backup), and a missing file is a one-line error, not a new empty
  database. Every connection is `mode=ro` (`aggregator/web/app.py` says why
  not Datasette's `--immutable`), so the daemon can keep writing meanwhile.
* **Loopback only.** It listens on 127.0.0.1; the socket is bound before
  Datasette starts, so a port in use is one line and `--port 0` picks a free
  one, and the URL printed is live. To publish the database, run Datasette
  itself with the same metadata (README, "Browsing the stories").
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import webbrowser
from pathlib import Path

import click

from aggregator.cli.context import Context, pass_context
from aggregator.errors import BrowseError
from aggregator.storage.dbfile import schema_version
from aggregator.storage.schema import SCHEMA_VERSION

HOST = "127.0.0.1"
DEFAULT_PORT = 8001
INSTALL_HINT = "pip install 'aggregator[web]'"


def check_database(path: Path) -> None:
    """BrowseError (or StoreError) unless PATH is an aggregator database of this version.

    Opened with `mode=ro`, like everything Datasette will open, so the check
    creates and changes nothing.
    """
    if not path.is_file():
        raise BrowseError(f"database {path}: does not exist (run `aggregator ingest` first)")
    version = schema_version(path)
    if version is None:
        raise BrowseError(f"database {path}: not an aggregator database")
    if version < SCHEMA_VERSION:
        raise BrowseError(
            f"database {path}: schema version {version} is older than {SCHEMA_VERSION}; "
            "any command that writes (`aggregator ingest`, the daemon) migrates it first"
        )
    if version > SCHEMA_VERSION:
        raise BrowseError(
            f"database {path}: schema version {version} is newer than this aggregator "
            f"understands ({SCHEMA_VERSION}); upgrade aggregator"
        )


def listen(port: int) -> socket.socket:
    """A socket bound to HOST:PORT and listening (PORT 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise BrowseError(f"cannot listen on {HOST}:{port}: {e.strerror or e}") from e
    return sock


@click.command(name="browse")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@pass_context
def browse_command(obj: Context, port: int, open_browser: bool) -> None:
    """Browse the database in Datasette, read-only, on 127.0.0.1.

    Canned queries: the stories of a day, one story with its shared passages
    side by side, an article's duplicates, boilerplate, feed health; search
    on articles. Nothing is ever written to the database, so the daemon can
    run meanwhile. Needs the web extra: pip install 'aggregator[web]'.
    Ctrl-C stops it.

    \b
    Examples:
      aggregator browse --open                 # http://127.0.0.1:8001/aggregator
      aggregator --db var/aggregator.db browse --port 8080
      aggregator -v browse                     # also log each request
    """
    if importlib.util.find_spec("datasette") is None:
        raise BrowseError(f"Datasette is not installed: {INSTALL_HINT}")
    path = obj.config.database
    if not isinstance(path, Path):
        raise BrowseError(
            f"database {path}: the browser view serves SQLite files only; for PostgreSQL, "
            "point a PostgreSQL client (psql, pgAdmin) at the same views"
        )
    check_database(path)

    from aggregator.web.app import DATABASE_NAME, build_datasette, serve

    ds = build_datasette(path)
    sock = listen(port)
    try:
        url = f"http://{HOST}:{sock.getsockname()[1]}/{DATABASE_NAME}"
        click.echo(f"browsing {path} read-only at {url} (Ctrl-C stops)")
        if open_browser:
            webbrowser.open(url)  # the socket listens: the request waits for the server
        serve(ds, sock, access_log=logging.getLogger().getEffectiveLevel() <= logging.INFO)
    finally:
        sock.close()
