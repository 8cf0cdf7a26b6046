"""The feed commands: `aggregator sources ...` and `aggregator poll`."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click

from aggregator.cli.context import Context, pass_context
from aggregator.cli.sources import sources_add, sources_disable, sources_enable, sources_set
from aggregator.ingest.feeds import (
    export_opml,
    find_feed,
    import_opml,
    remove_feed,
    sync_config_feeds,
)
from aggregator.ingest.poll import Poller, PollOutcome
from aggregator.model import FeedSource, parse_time
from aggregator.plural import counted


@click.group(name="sources")
def sources_group() -> None:
    """Manage feed subscriptions (polling them comes with `aggregator poll`).

    \b
    Examples:
      aggregator sources add https://example.org/feed.xml --name Example
      aggregator sources list
      aggregator sources set 3 --full-text never --min-interval 60
      aggregator sources export-opml > subscriptions.opml
    """


sources_group.add_command(sources_add)
sources_group.add_command(sources_set)
sources_group.add_command(sources_enable)
sources_group.add_command(sources_disable)


@sources_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def sources_list(obj: Context, as_json: bool) -> None:
    """List feed sources with their status, last success, last error and next check.

    A disabled feed says so and is not polled; a feed with its own minimum
    interval (`sources set --min-interval`) shows it. --json gives every
    field (`enabled`, `min_interval_minutes`: null for the configured one).

    \b
    Example:
      aggregator sources list --json
    """
    store = obj.open_store()
    try:
        sync_config_feeds(store, obj.config.feeds.urls)
        feeds = store.feeds.all()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([asdict(f) for f in feeds], indent=2))
        return
    if not feeds:
        click.echo("no feed sources; add one with `aggregator sources add URL`")
    now = datetime.now(UTC)
    for f in feeds:
        click.echo(f"[{f.id}] {f.name}: {feed_status(f)}  {f.url}")
        minimum = (
            f"; at least {f.min_interval_minutes:g} min apart" if f.min_interval_minutes else ""
        )
        click.echo(
            f"    last success {f.last_success_at or 'never'}; "
            f"next check {_when(f.next_check_at, now) if f.enabled else '- (disabled)'}{minimum}"
        )
        if f.error_count:
            noun = "error" if f.error_count == 1 else "errors"
            click.echo(f"    {f.error_count} {noun} in a row, last: {f.last_error}")
        elif f.last_error:
            click.echo(f"    last error: {f.last_error}")
        if f.last_warning:
            click.echo(f"    warning: {f.last_warning}")


def feed_status(feed: FeedSource) -> str:
    """One word for a feed's state: disabled, new, failing or ok."""
    if not feed.enabled:
        return "disabled"
    if feed.error_count:
        return "failing"
    return "ok" if feed.last_success_at else "new"


def _when(stamp: str | None, now: datetime) -> str:
    if stamp is None:
        return "now (never checked)"
    seconds = (parse_time(stamp) - now).total_seconds()
    if seconds <= 0:
        return f"{stamp} (due)"
    minutes = round(seconds / 60)
    span = f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return f"{stamp} (in {span})"


@sources_group.command(name="remove")
@click.argument("source")
@pass_context
def sources_remove(obj: Context, source: str) -> None:
    """Unsubscribe from a feed, by id or URL (a feed with articles is disabled instead).

    \b
    Example:
      aggregator sources remove 3
    """
    store = obj.open_store()
    try:
        click.echo(remove_feed(store, source))
    finally:
        store.close()


@sources_group.command(name="import-opml")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def sources_import(obj: Context, path: Path) -> None:
    """Subscribe to every feed listed in an OPML file.

    \b
    Example:
      aggregator sources import-opml subscriptions.opml
    """
    store = obj.open_store()
    try:
        added, skipped = import_opml(store, path)
    finally:
        store.close()
    click.echo(f"{added} feeds added, {skipped} already subscribed or invalid")


@sources_group.command(name="export-opml")
@pass_context
def sources_export(obj: Context) -> None:
    """Print every enabled feed as OPML 2.0.

    \b
    Example:
      aggregator sources export-opml > subscriptions.opml
    """
    click.echo(obj.read(export_opml), nl=False)


@click.command()
@click.option("--source", "source_keys", multiple=True, help="Poll this feed (id or URL) now.")
@click.option("--all", "poll_all", is_flag=True, help="Poll every enabled feed now.")
@pass_context
def poll(obj: Context, source_keys: tuple[str, ...], poll_all: bool) -> None:
    """Poll feeds once: the due ones, or those given, and ingest new entries.

    A feed that fails is reported on one line and retried later with back-off;
    the rest go on.

    \b
    Examples:
      aggregator poll                 # the feeds that are due
      aggregator poll --all
      aggregator poll --source 3
    """
    store = obj.open_store()
    # Each outcome is printed below; the poller's own line per failed feed (for the
    # daemon's journal) would say it a second time, unless -v asks for it.
    poll_log = logging.getLogger("aggregator.ingest.poll")
    level = poll_log.level
    try:
        sync_config_feeds(store, obj.config.feeds.urls)
        if source_keys:
            feeds = [find_feed(store, key) for key in source_keys]
        elif poll_all:
            feeds = [f for f in store.feeds.all() if f.enabled]
        else:
            feeds = store.feeds.due(datetime.now(UTC))
        failed = 0
        if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
            poll_log.setLevel(logging.ERROR)
        with Poller(store, obj.config) as poller:
            for outcome in poller.poll(feeds):
                failed += _report(outcome)
    finally:
        poll_log.setLevel(level)
        store.close()
    click.echo(f"{counted(len(feeds), 'feed')} polled, {failed} failed", err=True)
    if failed:
        sys.exit(1)


def _report(outcome: PollOutcome) -> int:
    """Print one feed's outcome (errors to stderr); 1 if it failed."""
    if outcome.status in ("error", "gone"):
        click.echo(f"error: feed {outcome.source_id} {outcome.url}: {outcome.error}", err=True)
        return 1
    counts = f", {outcome.new} new of {outcome.entries} entries" if outcome.entries else ""
    warning = f" (warning: {outcome.error})" if outcome.error else ""
    click.echo(f"feed {outcome.source_id}: {outcome.status}{counts}{warning}")
    return 0
