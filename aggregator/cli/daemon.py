"""The service commands: `aggregator run` (the daemon), `status` and `digest`."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import click

from aggregator.cli.context import Context, pass_context
from aggregator.config import DIGEST_FORMATS
from aggregator.digest.publish import day_period, render, send_mail, since_period, write_atomically
from aggregator.digest.select import build_digest
from aggregator.errors import DigestError
from aggregator.model import parse_time
from aggregator.service.state import Status, exit_code, status
from aggregator.service.system import configure_logging


@click.command()
@click.option(
    "--role",
    type=click.Choice(["all", "fetch", "dedup", "scheduler"]),
    default="all",
    show_default=True,
    help="all: the whole service in this process. On PostgreSQL, one part of it: "
    "fetch (any number of nodes), dedup (one writer, others stand by) or "
    "scheduler (the digest and stories feed; one active, others stand by).",
)
@pass_context
def run(obj: Context, role: str) -> None:
    """Run the aggregator as a foreground service until SIGTERM or Ctrl-C.

    Polls due feeds every tick, re-scans the configured folders, and keeps
    going through bad feeds and files. SIGHUP reloads the configuration.
    Under systemd it speaks the notify protocol (Type=notify, WatchdogSec);
    one daemon per database. With --role, on a PostgreSQL database, the work
    is split over nodes on any number of machines (docs/architecture.md).

    \b
    Examples:
      aggregator run
      aggregator --config /etc/aggregator/aggregator.toml -v run
      aggregator --db postgresql://agg@db.lan/news run --role fetch
      aggregator --db postgresql://agg@db.lan/news run --role dedup
      aggregator --db postgresql://agg@db.lan/news run --role scheduler
    """
    level = logging.getLogger().getEffectiveLevel()
    configure_logging(min(level, logging.INFO))
    if role != "all":
        from aggregator.service.roles import run_role

        code = run_role(obj.config_path, obj.db, role)
    else:
        from aggregator.service.daemon import Daemon  # APScheduler is imported only to run

        code = Daemon(obj.config_path, obj.db).run()
    # Everything is committed and closed. Leave without the interpreter's exit
    # handlers: they join worker threads and pools, and a fetch abandoned on
    # shutdown (or a killed parse pool) could hold the exit past the grace.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def status_command(obj: Context, as_json: bool) -> None:
    """Show whether the daemon runs, how its jobs last ended, the failing feeds,
    and what the database holds.

    Exit status, for a health check: 0 running and healthy; 3 not running; 4
    running but degraded (a job's last run failed, or no feed tick finished
    for three ticks and a tick budget); 1 the status could not be read.

    \b
    Examples:
      aggregator status
      aggregator status --json
      aggregator status >/dev/null || echo "aggregator needs attention"
    """
    report = obj.read(lambda store: status(store, obj.config.database, obj.config.daemon))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    else:
        for line in describe(report, datetime.now(UTC)):
            click.echo(line)
    code = exit_code(report)
    if code:
        raise SystemExit(code)


@click.command(name="digest")
@click.option("--date", "day", help="A whole local day, YYYY-MM-DD (daemon.timezone).")
@click.option("--since", help="Or a period back from now (default: 24h).")
@click.option(
    "--format", "fmt", type=click.Choice(DIGEST_FORMATS), default="text", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--mail", is_flag=True, help="Also send it to digest.mail_to by SMTP.")
@pass_context
def digest_command(
    obj: Context, day: str | None, since: str | None, fmt: str, out: Path | None, mail: bool
) -> None:
    """Each story once: canonical copy first, then only what later articles added.

    Stories are the clusters with an article that arrived in the period, the
    most widely carried first; articles without a partner follow compactly.

    \b
    Examples:
      aggregator digest                          # the last 24 hours, as text
      aggregator digest --date 2026-11-23 --format html --out today.html
      aggregator digest --since 7d --format atom
    """
    if day is not None and since is not None:
        raise click.UsageError("--date and --since both say which period: give one")
    if day is not None:
        try:
            start, end = day_period(date.fromisoformat(day), obj.config.daemon.timezone)
        except ValueError:
            raise DigestError(f"--date {day!r}: expected YYYY-MM-DD") from None
    else:
        start, end = since_period(since or "24h", datetime.now(UTC))
    store = obj.open_store()
    try:
        digest = build_digest(store, start, end)
        text = render(digest, fmt, store)
    finally:
        store.close()
    if out is None:
        click.echo(text, nl=False)
    else:
        write_atomically(out, text)
        click.echo(f"wrote {out}", err=True)
    if mail:
        send_mail(digest, obj.config)
        click.echo(f"mailed to {', '.join(obj.config.digest.mail_to)}", err=True)


FAILING_SHOWN = 10  # failing feeds listed by name in the text status


def describe(report: Status, now: datetime) -> list[str]:
    """The status as lines of text."""
    running = f"running (pid {report.pid}), {report.health}" if report.running else "not running"
    if report.running and report.pid is None and report.nodes:
        running = f"running as {len(report.nodes)} nodes, {report.health}"
    lines = [f"daemon: {running}"]
    lines.extend(f"  problem: {problem}" for problem in report.problems)
    if report.started_at:
        lines.append(f"  started {_ago(report.started_at, now)}")
    for name, outcome in report.jobs.items():
        if outcome is None:
            lines.append(f"  job {name}: not run yet")
        elif outcome.ok:
            detail = f": {report.last_tick}" if name == "tick" and report.last_tick else ""
            lines.append(f"  job {name}: ok {_ago(outcome.at, now)}{detail}")
        else:
            lines.append(f"  job {name}: FAILED {_ago(outcome.at, now)}: {outcome.error}")
    lines.append(f"  last folder scan {_ago(report.last_scan_at, now)}")
    lines.append(f"  last digest {_ago(report.last_digest_at, now)}")
    lines.append(
        f"feeds: {report.feeds} enabled, {report.feeds_due} due, {report.feeds_failing} failing"
    )
    for feed in report.failing_feeds[:FAILING_SHOWN]:
        times = "once" if feed.error_count == 1 else f"{feed.error_count} times in a row"
        lines.append(f"  feed {feed.id} {feed.name} ({feed.location}) failed {times}:")
        lines.append(f"    {feed.last_error}")
    if len(report.failing_feeds) > FAILING_SHOWN:
        more = len(report.failing_feeds) - FAILING_SHOWN
        lines.append(f"  ... and {more} more failing (aggregator status --json lists all)")
    lines += _nodes(report)
    if report.index_units is not None:
        lines.append(f"index: {report.index_units:,} units in memory, {_reach(report)}")
    counts = ", ".join(f"{table} {n}" for table, n in report.counts.items())
    lines.append(f"database: {report.database} ({report.database_bytes / 2**20:.1f} MiB)")
    lines.append(f"  {counts}")
    return lines


def _nodes(report: Status) -> list[str]:
    """The live nodes of a deployment of several (none: nothing to say)."""
    queue = report.queue
    if not report.nodes or queue is None:
        return []
    lines = [f"nodes: {len(report.nodes)} live"]
    for n in report.nodes:
        lines.append(
            f"  node {n.id} {n.role} on {n.host} pid {n.pid}: {n.state}, "
            f"heartbeat {n.heartbeat_age:.1f} s ago, {n.feeds_in_flight} feeds in flight"
        )
    lag = "" if queue.oldest_age is None else f", the oldest {queue.oldest_age:.1f} s old"
    lines.append(f"queue: {queue.batches} staged batches ({queue.articles} articles){lag}")
    return lines


def _reach(report: Status) -> str:
    """How far back the daemon's index reaches, against the match window."""
    if not report.index_since:
        return "every stored unit"
    reach = (
        f"articles first seen since {report.index_since}; older units left it "
        "(raise dedup.index_max_units to keep them)"
    )
    days, window = report.index_days, report.window_days
    if days is None or window is None:
        return reach
    if days >= window:
        return f"{reach}: the whole {window:g}-day match window"
    return (
        f"{reach}: only the last {days:.1f} days of the {window:g}-day match window, "
        "copies of older articles in it are missed"
    )


def _ago(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "never"
    seconds = max(0, int((now - parse_time(stamp)).total_seconds()))
    if seconds < 120:
        span = f"{seconds} s"
    elif seconds < 7200:
        span = f"{seconds // 60} min"
    else:
        span = f"{seconds / 3600:.1f} h"
    return f"{stamp} ({span} ago)"
