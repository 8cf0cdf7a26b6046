"""The feed commands: `aggregator sources ...` and `aggregator poll`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click

from aggregator.clicontext import Context, pass_context
from aggregator.feeds import (
    FULL_TEXT_MODES,
    add_feed,
    export_opml,
    find_feed,
    import_opml,
    list_feeds,
    remove_feed,
    sync_config_feeds,
)
from aggregator.poll import Poller, due_feeds


@click.group(name="sources")
def sources_group() -> None:
    """Manage feed subscriptions (polling them comes with `aggregator poll`).

    \b
    Examples:
      aggregator sources add https://example.org/feed.xml --name Example
      aggregator sources list
      aggregator sources export-opml > subscriptions.opml
    """


@sources_group.command(name="add")
@click.argument("url")
@click.option("--name", help="Display name (default: the URL).")
@click.option(
    "--full-text",
    type=click.Choice(FULL_TEXT_MODES),
    default="auto",
    show_default=True,
    help="Fetch the linked page when an entry has only a summary.",
)
@pass_context
def sources_add(obj: Context, url: str, name: str | None, full_text: str) -> None:
    """Subscribe to a feed (RSS, Atom or JSON Feed) by URL.

    \b
    Example:
      aggregator sources add https://example.org/feed.xml --full-text always
    """
    store = obj.open_store()
    try:
        feed = add_feed(store, url, name, full_text)
    finally:
        store.close()
    click.echo(f"added feed {feed.id}: {feed.location}")


@sources_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def sources_list(obj: Context, as_json: bool) -> None:
    """List feed sources with their status, last success, last error and next check.

    \b
    Example:
      aggregator sources list --json
    """
    store = obj.open_store()
    try:
        sync_config_feeds(store, obj.config.feeds.urls)
        feeds = list_feeds(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([asdict(f) for f in feeds], indent=2))
        return
    if not feeds:
        click.echo("no feed sources; add one with `aggregator sources add URL`")
    for f in feeds:
        status = "enabled" if f.enabled else "disabled"
        error = f", {f.error_count} errors, last: {f.last_error}" if f.error_count else ""
        click.echo(
            f"[{f.id}] {f.name} ({status}) {f.url}\n"
            f"    last success {f.last_success_at or 'never'}, next check "
            f"{f.next_check_at or '-'}{error}"
        )


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
    try:
        sync_config_feeds(store, obj.config.feeds.urls)
        if source_keys:
            feeds = [find_feed(store, key) for key in source_keys]
        elif poll_all:
            feeds = [f for f in list_feeds(store) if f.enabled]
        else:
            feeds = due_feeds(store, datetime.now(UTC))
        failed = 0
        for outcome in Poller(store, obj.config).poll(feeds):
            if outcome.status in ("error", "gone"):
                failed += 1
                click.echo(
                    f"error: feed {outcome.source_id} {outcome.url}: {outcome.error}", err=True
                )
            else:
                click.echo(
                    f"feed {outcome.source_id}: {outcome.status}"
                    + (
                        f", {outcome.new} new of {outcome.entries} entries"
                        if outcome.entries
                        else ""
                    )
                )
    finally:
        store.close()
    click.echo(f"{len(feeds)} feeds polled, {failed} failed", err=True)
    if failed:
        sys.exit(1)
