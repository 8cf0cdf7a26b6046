"""The commands that change one subscription: `sources add` (checked first),
`sources set`, `sources enable` and `sources disable`.

Each says what it did in one line: what `add` found at the URL, or each field
`set` changed with its old value (`feed 3: full text never (was auto)`).
Errors (an unknown feed, a URL that is no feed) are `SourceConfigError`s,
which the CLI prints as one line with exit status 1.
"""

from __future__ import annotations

import math

import click

from aggregator.cli.context import Context, pass_context
from aggregator.errors import SeveralFeedsError
from aggregator.ingest.feedcheck import CheckedFeed, check_feed
from aggregator.ingest.feeds import (
    FULL_TEXT_MODES,
    FeedEdit,
    add_feed,
    edit_feed,
    refuse_subscribed,
)
from aggregator.model import FeedSource
from aggregator.plural import counted

_TITLE_CHARS = 80  # of a feed's title, shown in a line
_NAME_CHARS = 200  # of a feed's title, taken as its name


@click.command(name="add")
@click.argument("url")
@click.option("--name", help="Display name (default: the feed's title, else its URL).")
@click.option(
    "--full-text",
    type=click.Choice(FULL_TEXT_MODES),
    default="auto",
    show_default=True,
    help="Fetch the linked page when an entry has only a summary.",
)
@click.option("--no-check", is_flag=True, help="Subscribe without fetching the URL first.")
@click.option(
    "--pick",
    type=click.IntRange(min=1),
    metavar="N",
    help="Of the feeds an HTML page links, subscribe to the Nth as listed.",
)
@pass_context
def sources_add(
    obj: Context, url: str, name: str | None, full_text: str, no_check: bool, pick: int | None
) -> None:
    """Subscribe to a feed by URL, checked first: RSS, Atom, JSON Feed, or a page linking one.

    The URL is fetched and read once, as a poll would (the same address rules,
    limits and parser), and what it is is said in one line. An HTML page is
    searched for the feeds it links (<link rel="alternate"> in its head): one
    is subscribed; several are listed, and none is subscribed until you run
    again with the chosen URL or --pick N. A URL that is no feed (an error
    status, a binary file, a page without feeds, nothing listening) adds
    nothing and exits 1. --no-check subscribes without fetching.

    \b
    Examples:
      aggregator sources add https://example.org/feed.xml --full-text always
      aggregator sources add https://example.org/            # the feed its page links
      aggregator sources add https://example.org/ --pick 2   # the second one listed
      aggregator sources add https://example.org/feed.xml --no-check
    """
    store = obj.open_store()
    try:
        refuse_subscribed(store, url)
        if no_check:
            feed = add_feed(store, url, name, full_text)
            click.echo(f"{_added(feed)} feed {feed.id}: {feed.location} (not checked)")
            return
        try:
            checked = check_feed(url, obj.config, pick)
        except SeveralFeedsError as e:
            click.echo(f"{url} links {len(e.links)} feeds:")
            for number, link in enumerate(e.links, 1):
                title = f'"{_cut(link.title, _TITLE_CHARS)}"' if link.title else "(no title)"
                click.echo(f"  {number}. {link.kind}: {title} {link.url}")
            raise
        if checked.found_on:
            click.echo(f"found feed {checked.url} on the page")
        default_name = checked.title[:_NAME_CHARS].strip() or None
        feed = add_feed(store, checked.url, name or default_name, full_text)
    finally:
        store.close()
    click.echo(f"{_added(feed)} feed {feed.id}: {describe_found(checked)}")


def _added(feed: FeedSource) -> str:
    return "added" if feed.last_checked_at is None else "enabled again"


def describe_found(checked: CheckedFeed) -> str:
    """`RSS 2.0, 20 entries, "Title"`, and the parser's warning if it had one."""
    if checked.entries == 0:
        parts = [checked.format, "no entries yet"]
    else:
        parts = [checked.format, counted(checked.entries, "entry")]
    if checked.title:
        parts.append(f'"{_cut(checked.title, _TITLE_CHARS)}"')
    warning = f" (warning: {_cut(checked.warning, 200)})" if checked.warning else ""
    return ", ".join(parts) + warning


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _minutes(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """--min-interval: minutes > 0, or `default` (or 0) for the configuration's minimum."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "default":
        return 0.0
    try:
        minutes = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither minutes nor 'default'") from None
    if not math.isfinite(minutes) or minutes < 0:
        raise click.BadParameter(f"{value!r}: give minutes > 0, or 'default'")
    return minutes


@click.command(name="set")
@click.argument("source")
@click.option("--name", help="Display name.")
@click.option("--full-text", type=click.Choice(FULL_TEXT_MODES), help="Full-text mode.")
@click.option("--enabled/--disabled", default=None, help="Poll the feed, or stop polling it.")
@click.option(
    "--min-interval",
    callback=_minutes,
    metavar="MINUTES",
    help="Least time between two checks of this feed, replacing feeds.min_interval_minutes "
    "for it (capped at feeds.max_interval_hours); 'default' or 0 clears it.",
)
@pass_context
def sources_set(
    obj: Context,
    source: str,
    name: str | None,
    full_text: str | None,
    enabled: bool | None,
    min_interval: float | None,
) -> None:
    """Change a subscription, by id or URL; prints each change with its old value.

    \b
    Examples:
      aggregator sources set 3 --full-text never
      aggregator sources set https://example.org/feed.xml --name "Example News"
      aggregator sources set 3 --min-interval 120       # at most every two hours
      aggregator sources set 3 --min-interval default   # feeds.min_interval_minutes again
      aggregator sources set 3 --disabled
    """
    edit = FeedEdit(name, full_text, enabled, min_interval)
    if edit == FeedEdit():
        raise click.UsageError(
            "nothing to change: give --name, --full-text, --enabled/--disabled or --min-interval"
        )
    click.echo(_apply(obj, source, edit))


@click.command(name="enable")
@click.argument("source")
@pass_context
def sources_enable(obj: Context, source: str) -> None:
    """Poll a feed again, by id or URL; it is checked at the next poll.

    \b
    Example:
      aggregator sources enable 3
    """
    click.echo(_apply(obj, source, FeedEdit(enabled=True)))


@click.command(name="disable")
@click.argument("source")
@pass_context
def sources_disable(obj: Context, source: str) -> None:
    """Stop polling a feed, by id or URL; its articles and settings are kept.

    \b
    Example:
      aggregator sources disable 3
    """
    click.echo(_apply(obj, source, FeedEdit(enabled=False)))


def _apply(obj: Context, source: str, edit: FeedEdit) -> str:
    store = obj.open_store()
    try:
        before, after = edit_feed(store, source, edit, obj.config)
    finally:
        store.close()
    changes = describe_changes(before, after, obj.config.feeds.min_interval_minutes)
    if changes:
        return f"feed {after.id}: {'; '.join(changes)}"
    state = "enabled" if after.enabled else "disabled"
    return f"feed {after.id}: nothing changed (it is {state})"


def describe_changes(before: FeedSource, after: FeedSource, default_minimum: float) -> list[str]:
    """Each changed field as `new (was old)`, in the order of `sources set`'s options."""

    def minimum(feed: FeedSource) -> str:
        if feed.min_interval_minutes is None:
            return f"the default, {default_minimum:g} min"
        return f"{feed.min_interval_minutes:g} min"

    changes = []
    if after.name != before.name:
        changes.append(f'name "{after.name}" (was "{before.name}")')
    if after.full_text != before.full_text:
        changes.append(f"full text {after.full_text} (was {before.full_text})")
    if after.enabled != before.enabled:
        changes.append(
            "enabled (was disabled), due now" if after.enabled else "disabled (was enabled)"
        )
    if after.min_interval_minutes != before.min_interval_minutes:
        changes.append(f"minimum interval {minimum(after)} (was {minimum(before)})")
    enabled_now = after.enabled and not before.enabled  # "due now" says when
    if after.next_check_at != before.next_check_at and not enabled_now:
        changes.append(f"next check {after.next_check_at} (was {before.next_check_at or 'unset'})")
    return changes
