"""The command line: `aggregator ingest | rematch | clusters | cluster | duplicates | stats |
config`.

The feed commands (`sources`, `poll`) live in `feeds.py` and `sources.py`, the
service commands (`run`, `status`, `digest`) in `daemon.py`, `browse` in
`browse.py`; what the report commands show, as JSON and as text, in
`reports.py`; what every command shares (configuration, store) in `context.py`.

Every failure is one line on stderr and a non-zero exit, never a traceback
(`--debug` shows one). Progress bars appear only when stderr is a terminal.
Exit codes: 0 success; 1 an error, or some inputs failed while the rest went
in; 2 bad usage.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click

from aggregator import __version__
from aggregator.cli.browse import browse_command
from aggregator.cli.context import Context, pass_context
from aggregator.cli.daemon import digest_command, run, status_command
from aggregator.cli.feeds import poll, sources_group
from aggregator.cli.migrate import migrate_command
from aggregator.cli.reports import (
    duplicate_rows,
    list_clusters,
    match_counts,
    matches_line,
    passage_groups,
    print_group,
    print_passage,
    show_cluster,
    stats,
)
from aggregator.cli.stories import stories_command, story_command
from aggregator.config import Database, database_location
from aggregator.configfile import render_config
from aggregator.errors import AggregatorError, ConfigError, SourceError
from aggregator.ingest.pipeline import Ingester
from aggregator.ingest.rematch import rematch
from aggregator.model import RawDocument
from aggregator.plural import counted
from aggregator.sources.folder import FileTask, discover, read_file


def _database_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Database | None:
    """--db: a file path, or a URL naming a PostgreSQL database."""
    if not value:
        return None
    try:
        return database_location(value)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration file (default: $AGGREGATOR_CONFIG, ./config/aggregator.toml, "
    "/etc/aggregator/aggregator.toml).",
)
@click.option(
    "--db",
    callback=_database_option,
    envvar="AGGREGATOR_DB",
    metavar="FILE|URL",
    help="SQLite file or postgresql:// URL; overrides the configuration (env AGGREGATOR_DB).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, db: Database | None, verbose: int, debug: bool
) -> None:
    """Find passages repeated across news articles and group articles into stories.

    \b
    Examples:
      aggregator ingest seeds/            # store articles, find shared passages
      aggregator clusters                 # the stories found so far
      aggregator duplicates --json        # every duplicated passage, both sides
      aggregator --db other.db stats      # counts for another database
      aggregator --db postgresql://news@db.example/news clusters
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(config_path, db, debug)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and the summary.")
@pass_context
def ingest(obj: Context, paths: tuple[Path, ...], quiet: bool) -> None:
    """Ingest article files and folders (recursively): .txt, .md, .html.

    With no PATH, ingests the folders listed in the configuration. Unchanged
    files are skipped; an edited file becomes a new version of its article.
    A file that cannot be used is reported on one line and the rest go on;
    the exit status is then 1.

    \b
    Examples:
      aggregator ingest                   # the configured folders
      aggregator ingest seeds/ ~/news/wire/story.html
    """
    roots = list(paths) or list(obj.config.folders)
    if not roots:
        raise click.UsageError("no PATH given and no folders in the configuration")
    tasks = list(discover(roots, obj.config.ingest.extensions))
    store = obj.open_store()
    try:
        ingester = Ingester(store, obj.config)
        since = store.reports.last_carrier_id()
        tally: Counter[str] = Counter()
        show_bar = sys.stderr.isatty() and len(tasks) > 20
        with click.progressbar(
            length=len(tasks), label="ingesting", file=sys.stderr if show_bar else _Null()
        ) as bar:
            for outcome in ingester.ingest(_read(tasks, obj.config.ingest.max_file_bytes)):
                bar.update(1)
                tally[outcome.status] += 1
                if outcome.status == "failed":
                    click.echo(f"error: {outcome.location}: {outcome.error}", err=True)
                elif not quiet and outcome.status in ("new", "updated") and not show_bar:
                    story = f" story {outcome.cluster_id}" if outcome.cluster_id else ""
                    click.echo(f"{outcome.status}: {outcome.location}{story}")
        ingester.close()
        found = match_counts(store, since)
    finally:
        store.close()
    click.echo(
        f"{tally['new']} new, {tally['updated']} updated, {tally['unchanged']} unchanged, "
        f"{tally['failed']} failed; {matches_line(found)}",
        err=quiet,
    )
    if tally["failed"]:
        sys.exit(1)


@cli.command(name="rematch")
@pass_context
def rematch_command(obj: Context) -> None:
    """Decide every passage and story again from the stored signatures.

    Run it after changing the [clusters] settings (the time window, the
    boilerplate and background rules), to apply them to what is already
    stored; new articles get them anyway. Nothing is read or signed again.
    It runs in one transaction: interrupted, nothing changes. Story ids
    change, but every old id still finds its story.

    \b
    Example:
      aggregator rematch && aggregator clusters
    """
    store = obj.open_store()
    try:
        total = store.reports.article_count()
        show_bar = sys.stderr.isatty() and total > 100
        with click.progressbar(
            length=total, label="deciding", file=sys.stderr if show_bar else _Null()
        ) as bar:
            done = rematch(store, obj.config, lambda n, _: bar.update(n - bar.pos))
        found = match_counts(store)
    finally:
        store.close()
    click.echo(f"{counted(done['articles'], 'article')} replayed; {matches_line(found)}")


class _Null(io.StringIO):
    """Where the progress bar draws when stderr is not a terminal."""

    def write(self, _: str) -> int:
        return 0


def _read(
    tasks: list[FileTask | SourceError], max_bytes: int
) -> Iterator[RawDocument | SourceError]:
    for task in tasks:
        if isinstance(task, SourceError):
            yield task
            continue
        try:
            yield read_file(task, max_bytes)
        except SourceError as e:
            yield e


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def clusters(obj: Context, as_json: bool) -> None:
    """List story clusters: articles that share passages.

    \b
    Examples:
      aggregator clusters
      aggregator clusters --json | jq '.[0].articles'
    """
    result = obj.read(list_clusters)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo("no clusters yet: no two articles share a passage")
        return
    for cluster in result:
        click.echo(
            f"story {cluster['id']}: {cluster['title']} "
            f"({counted(cluster['size'], 'article')}, {counted(cluster['sources'], 'source')})"
        )
        for article in cluster["articles"]:
            mark = "*" if article["canonical"] else " "
            click.echo(
                f"  {mark} [{article['id']}] {article['published_at']}  {article['title']}  "
                f"({article['location']})"
            )


@cli.command()
@click.argument("cluster_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def cluster(obj: Context, cluster_id: int, as_json: bool) -> None:
    """Show one story cluster: its articles and the passages they share.

    \b
    Example:
      aggregator cluster 1
    """
    result = obj.read(lambda store: show_cluster(store, cluster_id))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"story {result['id']}: {result['title']}")
    for article in result["articles"]:
        mark = "*" if article["canonical"] else " "
        click.echo(f"  {mark} [{article['id']}] {article['source']}: {article['title']}")
    click.echo(f"\n{counted(len(result['passages']), 'shared passage')}:")
    for row in result["passages"]:
        print_passage(row)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--unlinked", is_flag=True, help="Also list matches that link no stories, with the reason."
)
@click.option("--boilerplate", "unlinked", is_flag=True, hidden=True)
@click.option(
    "--passages",
    "by_passage",
    is_flag=True,
    help="One entry per passage with every article carrying it, instead of pairs.",
)
@pass_context
def duplicates(obj: Context, as_json: bool, unlinked: bool, by_passage: bool) -> None:
    """List duplicated passages: each copy beside the earlier copy it matched.

    Each row names both articles (id, title, file path or URL), both passage
    texts as printed, and the estimated similarity. A passage carried by N
    articles gives N - 1 rows: each copy is matched to one earlier copy, and
    together they join all N. Matches that link no stories (boilerplate,
    outside the time window, background reused across stories) are left out
    unless --unlinked, which names the reason.

    \b
    Examples:
      aggregator duplicates
      aggregator duplicates --unlinked --json > pairs.json
      aggregator duplicates --passages     # each passage with all its carriers
    """
    if by_passage:
        groups = obj.read(lambda store: passage_groups(store, unlinked=unlinked))
        if as_json:
            click.echo(json.dumps(groups, indent=2))
        elif not groups:
            click.echo("no duplicated passages")
        for group in groups if not as_json else []:
            print_group(group)
        return
    rows = obj.read(lambda store: duplicate_rows(store, unlinked=unlinked))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no duplicated passages")
    for row in rows:
        print_passage(row)


@cli.command(name="stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def stats_command(obj: Context, as_json: bool) -> None:
    """Show row counts and the database size.

    \b
    Example:
      aggregator stats --json
    """
    result = obj.read(stats)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"database: {result['database']} ({result['database_bytes'] / 1e6:.1f} MB)")
    for table, count in result["tables"].items():
        click.echo(f"  {table:<18} {count:>10}")
    click.echo(
        f"stories: {result['live_clusters']} ({counted(result['clustered_articles'], 'article')}), "
        f"unclustered articles: {result['unclustered_articles']}"
    )
    found = result["passage_matches"]
    click.echo(f"passages: {found['passages']}; {matches_line(found)}")


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration.

    \b
    Example:
      aggregator config show
    """


@config_group.command(name="show")
@pass_context
def config_show(obj: Context) -> None:
    """Print the effective configuration as TOML.

    \b
    Example:
      aggregator --config /etc/aggregator/aggregator.toml config show
    """
    click.echo(render_config(obj.config), nl=False)


cli.add_command(sources_group)
cli.add_command(poll)
cli.add_command(run)
cli.add_command(status_command)
cli.add_command(digest_command)
cli.add_command(browse_command)
cli.add_command(migrate_command)
cli.add_command(stories_command)
cli.add_command(story_command)


def main() -> None:
    """Entry point: run the CLI, turning errors into one line and an exit status."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except AggregatorError as e:
        if debug:
            raise
        click.echo(f"aggregator: error: {e}", err=True)
        sys.exit(1)
    except sqlite3.Error as e:  # one the store did not translate (a read mid-cursor)
        if debug:
            raise
        click.echo(f"aggregator: error: database: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        click.echo(
            f"aggregator: internal error: {type(e).__name__}: {e} (--debug for details)", err=True
        )
        sys.exit(1)
