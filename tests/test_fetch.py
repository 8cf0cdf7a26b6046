"""The fetcher against a real HTTP server on loopback: limits, redirects, SSRF policy."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime

import brotli
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.errors import FetchError
from aggregator.sources.fetch import FetchPolicy, address_allowed, fetch, parse_retry_after


@pytest.fixture
def policy(httpserver: HTTPServer) -> FetchPolicy:
    return FetchPolicy(allow=(f"localhost:{httpserver.port}",), deadline=5.0)


def test_get_returns_body_and_names_the_project(
    httpserver: HTTPServer, policy: FetchPolicy
) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"<rss/>", headers={"ETag": '"v1"'})
    result = fetch(httpserver.url_for("/feed"), policy)
    assert (result.status, result.content, result.headers["etag"]) == (200, b"<rss/>", '"v1"')
    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"].startswith("aggregator/")
    assert request.headers["Host"] == f"localhost:{httpserver.port}"


def test_conditional_get_sends_validators_and_reports_304(
    httpserver: HTTPServer, policy: FetchPolicy
) -> None:
    httpserver.expect_request(
        "/feed",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Sun, 01 Nov 2026 00:00:00 GMT"},
    ).respond_with_data(b"", status=304)
    result = fetch(
        httpserver.url_for("/feed"),
        policy,
        etag='"v1"',
        last_modified="Sun, 01 Nov 2026 00:00:00 GMT",
    )
    assert result.not_modified and result.content == b""


def test_validators_that_are_not_ascii_are_not_sent_back(
    httpserver: HTTPServer, policy: FetchPolicy
) -> None:
    """Werkzeug sends these as Latin-1 bytes; httpx reads them back the same way."""
    validators = {"ETag": '"caf\u00e9"', "Last-Modified": "Mon, 01 \u00e9t\u00e9 2026"}
    httpserver.expect_request("/feed").respond_with_data(b"<rss/>", headers=validators)
    first = fetch(httpserver.url_for("/feed"), policy)
    assert first.headers["etag"] == '"caf\u00e9"'
    again = fetch(
        httpserver.url_for("/feed"),
        policy,
        etag=first.headers["etag"],
        last_modified=first.headers["last-modified"],
    )
    assert again.status == 200
    request, _ = httpserver.log[-1]
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_bodies_are_decoded(
    httpserver: HTTPServer, policy: FetchPolicy, encoding: str
) -> None:
    body = b"<rss>" + b"news " * 10_000 + b"</rss>"
    packed = gzip.compress(body) if encoding == "gzip" else brotli.compress(body)
    httpserver.expect_request("/z").respond_with_data(
        packed, headers={"Content-Encoding": encoding}
    )
    assert fetch(httpserver.url_for("/z"), policy).content == body


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_stops_at_the_cap_quickly(httpserver: HTTPServer, encoding: str) -> None:
    zeros = b"\0" * (200 * 1024 * 1024)
    bomb = gzip.compress(zeros, 9) if encoding == "gzip" else brotli.compress(zeros, quality=5)
    del zeros
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": encoding}
    )
    small = FetchPolicy(allow=(f"localhost:{httpserver.port}",), max_bytes=1024 * 1024)
    # Judged by memory, not by the clock: a fetcher that inflated the bomb before
    # checking its size would hold 200 MiB at its peak, one that stops holds about 1 MiB.
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="over the 1048576 byte cap"):
            fetch(httpserver.url_for("/bomb"), small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak >> 20} MiB held while fetching a 1 MiB capped bomb"


def test_endless_body_stops_at_the_cap(httpserver: HTTPServer) -> None:
    def endless(_: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            while True:
                yield b"x" * 65536

        return Response(chunks())

    httpserver.expect_request("/endless").respond_with_handler(endless)
    small = FetchPolicy(allow=(f"localhost:{httpserver.port}",), max_bytes=2 * 1024 * 1024)
    with pytest.raises(FetchError, match="byte cap"):
        fetch(httpserver.url_for("/endless"), small)


def test_slow_drip_hits_the_whole_fetch_deadline(httpserver: HTTPServer) -> None:
    def drip(_: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(50):
                yield b"<"
                time.sleep(0.2)

        return Response(chunks())

    httpserver.expect_request("/drip").respond_with_handler(drip)
    quick = FetchPolicy(allow=(f"localhost:{httpserver.port}",), deadline=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"deadline|timed out"):
        fetch(httpserver.url_for("/drip"), quick)
    # The drip lasts 10 s and each read comes within 0.2 s: only the whole-fetch deadline
    # stops it early. 5 s leaves a loaded machine room and still tells the two apart.
    assert time.monotonic() - started < 5.0


def test_permanent_redirect_is_reported(httpserver: HTTPServer, policy: FetchPolicy) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data(b"moved")
    result = fetch(httpserver.url_for("/old"), policy)
    assert result.content == b"moved"
    assert result.permanent_redirect
    assert result.final_url == httpserver.url_for("/new")


def test_temporary_redirect_is_not_permanent(httpserver: HTTPServer, policy: FetchPolicy) -> None:
    httpserver.expect_request("/tmp").respond_with_data("", status=302, headers={"Location": "/x"})
    httpserver.expect_request("/x").respond_with_data(b"ok")
    assert not fetch(httpserver.url_for("/tmp"), policy).permanent_redirect


def test_redirect_loop_is_a_clear_error(httpserver: HTTPServer, policy: FetchPolicy) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="redirect loop"):
        fetch(httpserver.url_for("/a"), policy)


def test_more_than_five_redirects_is_an_error(httpserver: HTTPServer, policy: FetchPolicy) -> None:
    for i in range(7):
        httpserver.expect_request(f"/r{i}").respond_with_data(
            "", status=302, headers={"Location": f"/r{i + 1}"}
        )
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(httpserver.url_for("/r0"), policy)


def test_429_reports_retry_after(httpserver: HTTPServer, policy: FetchPolicy) -> None:
    httpserver.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    result = fetch(httpserver.url_for("/busy"), policy)
    assert (result.status, result.retry_after) == (429, 120.0)


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 23 Nov 2026 12:05:00 GMT", now) == 300.0
    assert parse_retry_after("soon", now) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://[::1]/",
        "http://192.168.1.1/",
    ],
)
def test_non_public_addresses_are_refused_without_a_connection(url: str) -> None:
    with pytest.raises(FetchError, match=r"refused: .* non-public address"):
        fetch(url, FetchPolicy())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "gopher://x/"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="refused: scheme"):
        fetch(url, FetchPolicy())


def test_loopback_server_is_refused_when_not_allow_listed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"secret")
    with pytest.raises(FetchError, match="refused"):
        fetch(httpserver.url_for("/feed"), FetchPolicy())
    assert httpserver.log == []


def test_redirect_to_a_non_allowed_address_is_refused(
    httpserver: HTTPServer, policy: FetchPolicy
) -> None:
    target = f"http://127.0.0.1:{httpserver.port}/internal"
    httpserver.expect_request("/hop").respond_with_data(
        "", status=302, headers={"Location": target}
    )
    httpserver.expect_request("/internal").respond_with_data(b"secret")
    with pytest.raises(FetchError, match="refused"):
        fetch(httpserver.url_for("/hop"), policy)
    assert [r.path for r, _ in httpserver.log] == ["/hop"]


def test_cidr_allow_list_opens_loopback(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"ok")
    url = f"http://127.0.0.1:{httpserver.port}/feed"
    assert fetch(url, FetchPolicy(allow=("127.0.0.0/8",))).content == b"ok"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("100.64.0.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("224.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("0.0.0.0", False),
    ],
)
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), FetchPolicy()) is allowed


def test_bad_allow_entry_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a CIDR network or host:port"):
        FetchPolicy(allow=("not a network",))


RAW_ANSWERS = {
    "more than 100 headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(300))
    + b"Content-Length: 2\r\n\r\nok",
    "a 100 KB header line": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
    "no status code": b"HTTP/1.1 abc OK\r\n\r\n",
    "not HTTP": b"\x00\x01\x02 not http\r\n\r\n",
    "a body cut short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok",
    "a bad chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
    "nothing": b"",
}


@pytest.mark.parametrize("answer", list(RAW_ANSWERS), ids=list(RAW_ANSWERS))
def test_a_broken_answer_is_a_one_line_fetch_error(answer: str) -> None:
    """Raw bytes from a socket server: each is a FetchError of one line, never another
    exception (the poller would count it as an internal error)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            with contextlib.suppress(OSError):
                conn.sendall(RAW_ANSWERS[answer])

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        quick = FetchPolicy(allow=("127.0.0.0/8",), deadline=5.0)
        with pytest.raises(FetchError) as caught:
            fetch(f"http://127.0.0.1:{port}/feed", quick)
        assert "\n" not in str(caught.value)
    finally:
        thread.join(timeout=5)
        listener.close()
