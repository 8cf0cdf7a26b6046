"""Kept-alive connections per host name (sources/fetch.py `Clients`), against a real
HTTP/1.1 server on loopback that records which connection carried each request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aggregator.sources.fetch import Clients, FetchPolicy, fetch


@dataclass
class Seen:
    requests: list[tuple[int, str, str]] = field(default_factory=list)  # (port, Host, path)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connections(self) -> set[int]:
        return {port for port, _, _ in self.requests}

    def hosts_per_connection(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for port, host, _ in self.requests:
            out.setdefault(port, set()).add(host.rsplit(":", 1)[0])
        return out


@pytest.fixture
def server() -> Iterator[tuple[str, int, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection unless told otherwise

        def do_GET(self) -> None:
            with seen.lock:
                seen.requests.append(
                    (self.client_address[1], self.headers.get("Host", ""), self.path)
                )
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = f"<rss>{self.path}</rss>".encode()
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            if self.path == "/twice":  # a header sent twice
                self.send_header("ETag", '"v2"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


POLICY = FetchPolicy(allow=("127.0.0.0/8",), deadline=5.0)


def test_a_hosts_feeds_share_its_connections_across_threads(
    server: tuple[str, int, Seen],
) -> None:
    """60 fetches (first 200s, then 304s) from 4 threads reuse at most 4 connections
    and each gets its own answer; without `clients`, each fetch opens one."""
    host, port, seen = server
    urls = [f"http://{host}:{port}/feed/{n}" for n in range(30)]
    clients = Clients()
    try:
        with ThreadPoolExecutor(4) as threads:
            first = list(threads.map(lambda u: fetch(u, POLICY, clients=clients), urls))
            second = list(
                threads.map(lambda u: fetch(u, POLICY, etag='"v1"', clients=clients), urls)
            )
    finally:
        clients.close()
    assert [r.content for r in first] == [f"<rss>/feed/{n}</rss>".encode() for n in range(30)]
    assert all(r.not_modified and r.content == b"" for r in second)
    assert 1 <= len(seen.connections()) <= 4
    seen.requests.clear()
    for url in urls[:5]:
        fetch(url, POLICY, etag='"v1"')
    assert len(seen.connections()) == 5


def test_two_names_of_one_address_never_share_a_connection(
    server: tuple[str, int, Seen],
) -> None:
    """'localhost' and '127.0.0.1' reach the same address; a connection opened for one
    name (its Host header, its TLS name on https) carries only that name's requests."""
    _, port, seen = server
    clients = Clients()
    try:
        for n in range(10):
            name = "localhost" if n % 2 else "127.0.0.1"
            assert fetch(f"http://{name}:{port}/f{n}", POLICY, clients=clients).status == 200
    finally:
        clients.close()
    per_connection = seen.hosts_per_connection()
    assert len(per_connection) == 2
    assert sorted(sorted(h) for h in per_connection.values()) == [["127.0.0.1"], ["localhost"]]


@pytest.mark.parametrize(("limit", "connections"), [(1, 6), (2, 2)])
def test_idle_clients_beyond_the_limit_are_closed(
    server: tuple[str, int, Seen], limit: int, connections: int
) -> None:
    """Alternating two hosts with room for one idle client: each fetch finds the other
    host's client kept and must connect anew; with room for two, both are reused."""
    _, port, seen = server
    clients = Clients(limit=limit)
    try:
        for n in range(6):
            name = "localhost" if n % 2 else "127.0.0.1"
            fetch(f"http://{name}:{port}/f{n}", POLICY, clients=clients)
    finally:
        clients.close()
    assert len(seen.connections()) == connections


def test_a_header_sent_twice_comes_back_joined(server: tuple[str, int, Seen]) -> None:
    host, port, _ = server
    result = fetch(f"http://{host}:{port}/twice", POLICY)
    assert result.headers["etag"] == '"v1", "v2"'
