"""`aggregator stories` and `aggregator story ID`: event stories and why each member joined.

An event story (stories/) groups the articles that report one event, whether
or not they share a passage; a passage cluster (`clusters`) groups copies.
Both commands read only; `--json` gives the same fields as the text.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from aggregator.cli.context import Context, pass_context
from aggregator.errors import AggregatorError
from aggregator.plural import counted
from aggregator.storage.protocol import Store


def _stories(store: Store, limit: int) -> list[dict[str, Any]]:
    result = []
    for row in store.events.listing(limit):
        story = asdict(row)
        story["members"] = [asdict(m) for m in store.events.members(row.id)]
        result.append(story)
    return result


def _story(store: Store, story_id: int) -> dict[str, Any]:
    members = store.events.members(story_id)
    if not members:
        raise AggregatorError(f"event story {story_id}: no such story (see `aggregator stories`)")
    return {"id": story_id, "members": [asdict(m) for m in members]}


def _why(member: dict[str, Any]) -> str:
    """Why a member joined, in words: the first, a passage link, or its score."""
    if member["reason"] == "new":
        return "first"
    if member["reason"] == "passage":
        return f"shares a passage (passage cluster {member['cluster_id']})"
    why = f"score {member['score']:.2f}"
    if member["shared"]:
        why += f", shared terms: {member['shared']}"
    if member["days_apart"] is not None:
        why += f", {counted(member['days_apart'], 'day')} from the story's nearest day"
    return why


@click.command("stories")
@click.option("--limit", default=50, show_default=True, help="At most this many stories.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def stories_command(obj: Context, limit: int, as_json: bool) -> None:
    """List event stories: articles reporting one event, with or without a shared passage.

    Newest activity first; stories of a single article are left out.

    \b
    Examples:
      aggregator stories
      aggregator stories --json | jq '.[0].members[].title'
    """
    result = obj.read(lambda store: _stories(store, limit))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo("no event stories of more than one article yet")
        return
    for story in result:
        days = f", reporting on {story['event_days']}" if story["event_days"] else ""
        click.echo(
            f"event story {story['id']}: {counted(story['articles'], 'article')}, "
            f"{story['first_at']} to {story['last_at']}{days}"
        )
        click.echo(f"  terms: {story['terms']}")
        for member in story["members"]:
            click.echo(f"  [{member['article_id']}] {member['source']}: {member['title']}")


@click.command("story")
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def story_command(obj: Context, story_id: int, as_json: bool) -> None:
    """Show one event story: each member, and why it joined.

    \b
    Example:
      aggregator story 3
    """
    result = obj.read(lambda store: _story(store, story_id))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"event story {story_id}: {counted(len(result['members']), 'article')}")
    for member in result["members"]:
        day = f", reports on {member['event_day']}" if member["event_day"] else ""
        click.echo(
            f"  [{member['article_id']}] {member['published_at']} {member['source']}: "
            f"{member['title']}{day}"
        )
        click.echo(f"      {_why(member)}")
