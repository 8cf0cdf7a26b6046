"""`aggregator migrate --to URL`: the configured SQLite database copied into PostgreSQL.

The copy and its checks are `storage/transfer.py`; this command opens both
ends, shows progress per table, and says what to do next. The source is only
read (a daemon may keep running on it); the target must be a new, empty
PostgreSQL database, which gets the schema on the way.
"""

from __future__ import annotations

from pathlib import Path

import click

from aggregator.cli.context import Context, pass_context
from aggregator.config import PostgresURL, database_location
from aggregator.errors import ConfigError
from aggregator.plural import counted
from aggregator.storage.postgres import PostgresEngine
from aggregator.storage.sqlite import SQLiteEngine
from aggregator.storage.store import Store
from aggregator.storage.transfer import copy_to_postgres


@click.command(name="migrate")
@click.option(
    "--to", "target", required=True, metavar="URL", help="The new PostgreSQL database (a URL)."
)
@pass_context
def migrate_command(obj: Context, target: str) -> None:
    """Copy the SQLite database into a new PostgreSQL database, and check the copy.

    Every row is copied with its id, in one transaction; then the rows of every
    table are counted on both sides and a sample of passages is compared as
    text. The SQLite file is opened as every command opens it (an older schema
    is first migrated, after a backup) and then only read, so a daemon may keep
    running on it; the copy is of one moment. Afterwards, set `database` in the
    configuration to the URL.

    \b
    Examples:
      aggregator migrate --to postgresql://news@db.example.org/news
      aggregator --db var/aggregator.db migrate --to postgresql:///news
    """
    source = obj.config.database
    if not isinstance(source, Path):
        raise click.UsageError(f"the database is already PostgreSQL ({source}); nothing to copy")
    try:
        url = database_location(target)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--to") from e
    if not isinstance(url, PostgresURL):
        raise click.BadParameter(f"{target!r} is not a postgresql:// URL", param_hint="--to")
    if not source.exists():
        raise click.UsageError(f"database {source}: does not exist; nothing to copy")
    params = obj.config.dedup.minhash
    with obj.open_store() as reading, Store(url, params) as writing:
        if not isinstance(reading.engine, SQLiteEngine) or not isinstance(
            writing.engine, PostgresEngine
        ):
            raise click.UsageError("migrate copies a SQLite database into PostgreSQL")
        click.echo(f"copying {reading.location} into {writing.location}", err=True)
        copied = copy_to_postgres(
            reading.engine,
            writing.engine,
            progress=lambda table, rows: click.echo(f"  {table}: {counted(rows, 'row')}", err=True),
        )
    click.echo(
        f"copied {counted(copied.rows['articles'], 'article')}, "
        f"{counted(copied.rows['passages'], 'passage')} and "
        f"{counted(copied.rows['clusters'], 'cluster')}; every table's rows counted on both "
        f"sides, {counted(copied.sampled, 'passage carrier')} compared as text"
    )
    click.echo(f'next: set database = "{url}" in the configuration')
