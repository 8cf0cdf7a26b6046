"""HTTPS against a real TLS server on loopback: the fetcher connects to the address it
checked but verifies the certificate against the host name (and sends it as SNI), and a
kept-alive TLS connection never carries a request for another name."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from aggregator.errors import FetchError
from aggregator.sources import fetch as fetch_module
from aggregator.sources.fetch import Clients, FetchPolicy, fetch

POLICY = FetchPolicy(allow=("127.0.0.0/8",), deadline=5.0)


@dataclass
class TLSServer:
    port: int
    # Per request: (client port, the name the client asked for in SNI or None, Host).
    requests: list[tuple[int, str | None, str]] = field(default_factory=list)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _serve(ca: trustme.CA, names: list[str]) -> Iterator[TLSServer]:
    """A TLS server with one certificate per name: the first when the client sends no
    server name (as for an IP address), the others chosen by SNI."""
    contexts: dict[str, ssl.SSLContext] = {}
    for name in names:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        contexts[name] = context
    default = contexts[names[0]]
    asked: dict[int, str | None] = {}

    def choose(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        asked[id(sock)] = name
        if name in contexts:
            sock.context = contexts[name]

    default.sni_callback = choose
    server = TLSServer(0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.requests.append(
                (self.client_address[1], asked.get(id(self.connection)), self.headers["Host"])
            )
            body = b"<rss>tls</rss>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = default.wrap_socket(httpd.socket, server_side=True)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def trusting(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetcher's TLS context trusts the test CA (and verifies as it always does)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    monkeypatch.setattr(fetch_module, "tls_context", lambda: context)


@pytest.fixture
def two_names(ca: trustme.CA) -> Iterator[TLSServer]:
    yield from _serve(ca, ["127.0.0.1", "localhost"])


@pytest.fixture
def other_name(ca: trustme.CA) -> Iterator[TLSServer]:
    yield from _serve(ca, ["other.example"])


@pytest.mark.usefixtures("trusting")
def test_the_certificate_is_checked_against_the_name_not_the_address(
    two_names: TLSServer,
) -> None:
    result = fetch(f"https://localhost:{two_names.port}/feed", POLICY)
    assert (result.status, result.content) == (200, b"<rss>tls</rss>")
    assert two_names.requests == [
        (two_names.requests[0][0], "localhost", f"localhost:{two_names.port}")
    ]


def test_a_certificate_from_an_unknown_authority_is_refused(two_names: TLSServer) -> None:
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(f"https://localhost:{two_names.port}/feed", POLICY)
    assert two_names.requests == []


@pytest.mark.usefixtures("trusting")
def test_a_certificate_for_another_name_is_refused(other_name: TLSServer) -> None:
    with pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED|hostname|match"):
        fetch(f"https://localhost:{other_name.port}/feed", POLICY)
    assert other_name.requests == []


@pytest.mark.usefixtures("trusting")
def test_kept_tls_connections_serve_one_name_each(two_names: TLSServer) -> None:
    """Two names of one address, alternated through one `Clients`: every request is
    verified for its own name, and each connection carries one name only."""
    clients = Clients()
    try:
        for n in range(8):
            name = "localhost" if n % 2 else "127.0.0.1"
            result = fetch(f"https://{name}:{two_names.port}/f{n}", POLICY, clients=clients)
            assert result.status == 200
    finally:
        clients.close()
    per_connection: dict[int, set[tuple[str | None, str]]] = {}
    for port, asked, host in two_names.requests:
        per_connection.setdefault(port, set()).add((asked, host.rsplit(":", 1)[0]))
    assert sorted(per_connection.values(), key=str) == sorted(
        [{(None, "127.0.0.1")}, {("localhost", "localhost")}], key=str
    )
