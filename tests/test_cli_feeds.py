"""The feed commands end to end: add, poll (a good and a failing feed), list, remove."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from aggregator.cli import cli

RSS = (
    '<rss version="2.0"><channel><title>Wire</title><ttl>90</ttl>'
    "<item><guid>w1</guid><title>Talks resume</title>"
    "<description>Negotiators met again on Monday after a week of silence.</description>"
    "</item></channel></rss>"
)


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_poll_reports_each_feed_and_list_shows_their_state(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    httpserver.expect_request("/good").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    good, bad = httpserver.url_for("/good"), httpserver.url_for("/bad")
    assert _run(config, "sources", "add", good, "--name", "Wire", "--full-text", "never")[0] == 0
    assert _run(config, "sources", "add", bad, "--name", "Broken")[0] == 0

    code, out, err = _run(config, "poll")
    assert code == 1, "a failed feed makes the poll exit non-zero"
    assert "feed 1: ingested, 1 new of 1 entries" in out
    assert f"error: feed 2 {bad}: HTTP 500" in err
    assert "2 feeds polled, 1 failed" in err

    code, out, _ = _run(config, "sources", "list")
    assert code == 0
    wire, broken = out.split("[2]")
    assert "[1] Wire: ok" in wire and "next check" in wire and "(in 90 min)" in wire
    assert "Broken: failing" in broken and "1 error in a row, last: HTTP 500" in broken

    listed = json.loads(_run(config, "sources", "list", "--json")[1])
    assert [(f["name"], f["error_count"], f["last_error"]) for f in listed] == [
        ("Wire", 0, None),
        ("Broken", 1, "HTTP 500"),
    ]

    code, _, err = _run(config, "poll")
    assert (code, err.strip()) == (0, "0 feeds polled, 0 failed"), "nothing is due yet"

    assert _run(config, "sources", "remove", "1")[0] == 0
    assert "Wire: disabled" in _run(config, "sources", "list")[1], "it has an article"


def test_status_names_the_failing_feeds_with_their_errors(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Twelve failing feeds: the text lists the ten that failed last, each with its
    error, and says how many more; --json lists them all."""
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'database = "news.db"\n[feeds]\nallow = ["localhost:{httpserver.port}"]\n',
        encoding="utf-8",
    )
    httpserver.expect_request("/good").respond_with_data(RSS, content_type="application/rss+xml")
    assert _run(config, "sources", "add", httpserver.url_for("/good"), "--name", "Wire")[0] == 0
    for n in range(12):
        httpserver.expect_request(f"/bad{n}").respond_with_data("", status=500 + n % 4)
        url = httpserver.url_for(f"/bad{n}")
        assert _run(config, "sources", "add", url, "--name", f"Broken {n}")[0] == 0
    assert _run(config, "poll")[0] == 1

    code, out, _ = _run(config, "status")
    assert code == 0
    assert "feeds: 13 enabled, 0 due, 12 failing" in out
    named = [line for line in out.splitlines() if line.startswith("  feed ")]
    assert len(named) == 10
    for line in named:
        number = int(line.split()[1])  # feed ids 2..13 are Broken 0..11
        url = httpserver.url_for(f"/bad{number - 2}")
        assert line == f"  feed {number} Broken {number - 2} ({url}) failed once:"
        assert f"{line}\n    HTTP {500 + (number - 2) % 4}\n" in out
    assert "  ... and 2 more failing (aggregator status --json lists all)" in out

    report = json.loads(_run(config, "status", "--json")[1])
    assert report["feeds_failing"] == 12
    assert sorted(f["name"] for f in report["failing_feeds"]) == sorted(
        f"Broken {n}" for n in range(12)
    )
    assert all(
        f["error_count"] == 1 and f["last_success_at"] is None for f in report["failing_feeds"]
    )
