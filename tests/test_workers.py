"""Concurrency of a poll: per-host limits, the parser pool, and both over real servers."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config, FeedsConfig
from aggregator.errors import ParseError
from aggregator.ingest.feeds import add_feed, list_feeds
from aggregator.ingest.poll import Poller, _Job
from aggregator.sources import workers
from aggregator.sources.fetch import FetchResult
from aggregator.sources.parse import ParsedFeed
from aggregator.sources.workers import HostQueue, ParsePool, host_key
from tests.conftest import OpenStore

RSS = (
    '<rss version="2.0"><channel><title>{name}</title><item><guid>{name}-1</guid>'
    "<title>Entry of {name}</title><description>{text}</description></item></channel></rss>"
)


def test_host_key_includes_the_default_port() -> None:
    assert host_key("https://Example.org/feed") == "example.org:443"
    assert host_key("http://example.org:8080/a") == "example.org:8080"
    assert host_key("http://example.org/") == "example.org:80"


def test_host_queue_limits_each_host_and_takes_turns() -> None:
    items = ["a1", "a2", "a3", "b1", "c1", "c2"]
    queue = HostQueue(items, key=lambda s: s[0], per_host=1)
    taken = [queue.take() for _ in range(3)]
    assert taken == [("a", "a1"), ("b", "b1"), ("c", "c1")]
    assert queue.take() is None, "every host is at its limit"
    queue.done("b")
    assert queue.take() is None, "b has nothing left"
    queue.done("a")
    assert queue.take() == ("a", "a2")
    queue.done("c")
    queue.done("a")
    assert [queue.take(), queue.take(), queue.take()] == [("c", "c2"), ("a", "a3"), None]
    assert len(queue) == 0


def test_host_queue_with_two_slots_per_host() -> None:
    queue = HostQueue(range(5), key=lambda _: "one-host", per_host=2)
    assert [queue.take(), queue.take(), queue.take()] == [
        ("one-host", 0),
        ("one-host", 1),
        None,
    ]
    queue.done("one-host")
    assert queue.take() == ("one-host", 2)
    assert len(queue) == 2


def test_parse_pool_parses_in_other_processes() -> None:
    pool = ParsePool(workers=2)
    try:
        futures = [
            pool.submit(RSS.format(name=f"f{i}", text="Text.").encode(), {}, f"http://x/{i}")
            for i in range(4)
        ]
        parsed = [pool.result(f, "http://x") for f in futures]
        assert [p.title for p in parsed] == ["f0", "f1", "f2", "f3"]
        assert pool._pool is not None
        workers = {p.pid for p in pool._pool._processes.values()}
        assert workers and os.getpid() not in workers
        with pytest.raises(ParseError, match="no entries"):
            pool.result(pool.submit(b"<rss version='2.0'></rss>", {}, "http://x/e"), "http://x/e")
    finally:
        pool.close()


def test_a_dead_parser_process_is_one_parse_error_and_the_pool_recovers() -> None:
    pool = ParsePool(workers=2)
    try:
        first = pool.submit(RSS.format(name="before", text="Text.").encode(), {}, "http://x/b")
        assert pool.result(first, "http://x/b").title == "before"
        items = "".join(f"<item><guid>{i}</guid><title>{i}</title></item>" for i in range(20000))
        dead = pool.submit(f'<rss version="2.0"><channel>{items}</channel></rss>'.encode(), {}, "x")
        # Killed at once: a pending or a running parse alike fails with the broken pool
        # (parsing 20,000 items takes about a second, far longer than getting here).
        assert pool._pool is not None and not dead.done()
        for process in list(pool._pool._processes.values()):
            process.kill()
        with pytest.raises(ParseError, match="parser process died"):
            pool.result(dead, "http://x/d")
        again = pool.submit(RSS.format(name="after", text="Text.").encode(), {}, "http://x/a")
        stale: Future[ParsedFeed] = Future()
        stale.set_exception(BrokenProcessPool("a worker of the old pool died"))
        with pytest.raises(ParseError, match="parser process died"):
            pool.result(stale, "http://x/s")
        assert pool.result(again, "http://x/a").title == "after", "the new pool is kept"
    finally:
        pool.close()


class _Recorder:
    """Counts requests in flight per server, and the most seen at once.

    The first `hold` requests wait for each other (a barrier, not a sleep), so the
    overlap is certain however slow the machine: a poller that fetched one at a time
    would break the barrier and fail its fetches."""

    def __init__(self, hold: int = 3) -> None:
        self.lock = threading.Lock()
        self.now: Counter[int] = Counter()
        self.peak: Counter[int] = Counter()
        self.peak_total = 0
        self.arrived = 0
        self.barrier = threading.Barrier(hold, timeout=30)

    def enter(self, port: int) -> None:
        with self.lock:
            self.now[port] += 1
            self.peak[port] = max(self.peak[port], self.now[port])
            self.peak_total = max(self.peak_total, sum(self.now.values()))
            self.arrived += 1
            held = self.arrived <= self.barrier.parties
        if held:
            self.barrier.wait()

    def leave(self, port: int) -> None:
        with self.lock:
            self.now[port] -= 1


def _server(recorder: _Recorder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]
            recorder.enter(port)
            try:
                time.sleep(0.05)  # the later requests overlap too (not a verdict)
                name = self.path.strip("/")
                text = f"The {name} feed of the server on port {port} says something new today."
                body = RSS.format(name=name, text=text).encode()
            finally:
                # Before the response, not after: once the client has the body it may
                # start its next request, which could arrive before this thread got
                # here and be counted as a fourth at once (it flaked so under load).
                recorder.leave(port)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[_Recorder, list[ThreadingHTTPServer]]]:
    recorder = _Recorder()
    running = [_server(recorder), _server(recorder)]
    yield recorder, running
    for server in running:
        server.shutdown()
        server.server_close()


def test_a_poll_overlaps_fetches_within_the_host_and_total_limits(
    servers: tuple[_Recorder, list[ThreadingHTTPServer]], config: Config, open_store: OpenStore
) -> None:
    recorder, running = servers
    ports = [s.server_address[1] for s in running]
    feeds_config = FeedsConfig(allow=("127.0.0.0/8",), concurrency=3, per_host=2, parse_workers=2)
    config = replace(config, feeds=feeds_config)
    store = open_store()
    for port in ports:
        for i in range(5):
            add_feed(store, f"http://127.0.0.1:{port}/p{port}f{i}", None, full_text="never")
    with Poller(store, config) as poller:
        outcomes = list(poller.poll(list_feeds(store)))
    assert sorted(o.status for o in outcomes) == ["ingested"] * 10, [o.error for o in outcomes]
    # The barrier made three fetches overlap; the limits kept it at two per host.
    assert max(recorder.peak.values()) == 2 and all(recorder.peak[p] <= 2 for p in ports), (
        recorder.peak
    )
    assert recorder.peak_total == 3
    titles = store.execute("SELECT count(DISTINCT title) FROM articles").fetchone()[0]
    store.close()
    assert titles == 10


def test_errors_with_context_survive_pickling() -> None:
    import pickle

    from aggregator.errors import ExtractError, FetchError

    for error in (ParseError("http://x", "no entries"), FetchError("http://y", "timed out")):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.reason) == (type(error), str(error), error.reason)
    extract = pickle.loads(pickle.dumps(ExtractError("a.txt", "empty")))
    assert (type(extract), extract.location) == (ExtractError, "a.txt")


def _huge_feed(items: int = 40000) -> bytes:
    body = "".join(f"<item><guid>{i}</guid><title>Item {i}</title></item>" for i in range(items))
    return f'<rss version="2.0"><channel><title>Huge</title>{body}</channel></rss>'.encode()


def test_a_runaway_parse_is_stopped_and_the_rest_of_the_poll_goes_on(
    httpserver: HTTPServer, config: Config, open_store: OpenStore
) -> None:
    httpserver.expect_request("/huge").respond_with_data(_huge_feed())
    httpserver.expect_request("/small").respond_with_data(
        RSS.format(name="small", text="A small feed parses in time.")
    )
    feeds_config = FeedsConfig(allow=(f"localhost:{httpserver.port}",), parse_workers=2)
    config = replace(config, feeds=feeds_config)
    store = open_store()
    for path in ("/huge", "/small"):
        add_feed(store, httpserver.url_for(path), path.strip("/"), full_text="never")
    with Poller(store, config) as poller:
        poller.parse_deadline = 0.5
        outcomes = {o.url.rsplit("/", 1)[1]: o for o in poller.poll(list_feeds(store))}
    assert outcomes["huge"].status == "error"
    assert outcomes["huge"].error == "parse took longer than 0 s; stopped"
    assert outcomes["small"].status == "ingested"
    store.close()


def test_parses_in_flight_when_the_pool_is_killed_are_resubmitted(
    config: Config, open_store: OpenStore
) -> None:
    store = open_store()
    late_feed = add_feed(store, "https://late.example/feed", None)
    young_feed = add_feed(store, "https://young.example/feed", None)
    poller = Poller(store, replace(config, feeds=FeedsConfig(parse_workers=2)))
    try:
        # 5,000 items: a parse of a few tenths of a second, far longer than the moment
        # between submitting it and stopping the runaway one.
        body = _huge_feed(5000)
        big = FetchResult("u", "https://x/feed", 200, {}, body, False, False, None, 0.0)
        now = time.monotonic()
        running: dict[Future[Any], _Job] = {
            poller._parse(big): _Job(late_feed, "parse", result=big, started=now - 100),
            poller._parse(big): _Job(young_feed, "parse", result=big, started=now),
        }
        failed = list(poller._stop_runaway_parses(running, datetime.now(UTC)))
        assert [(o.source_id, o.status) for o in failed] == [(late_feed.id, "error")]
        [(future, job)] = running.items()
        assert job.feed == young_feed
        assert len(poller.parsers.result(future, "u").entries) == 5000
    finally:
        poller.close()
        store.close()


def test_the_pool_is_replaced_after_its_share_of_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "TASKS_PER_WORKER", 5)
    pool = ParsePool(workers=2)
    try:
        seen = set()
        futures = []
        for i in range(60):
            futures.append(pool.submit(RSS.format(name=f"n{i}", text="T.").encode(), {}, "u"))
            seen.add(id(pool._pool))
        assert [pool.result(f, "u").title for f in futures] == [f"n{i}" for i in range(60)]
        assert len(seen) == 6, "a new pool every 10 documents"
    finally:
        pool.close()
