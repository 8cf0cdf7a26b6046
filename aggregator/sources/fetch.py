"""Fetch: our own HTTP GET, the only module that touches the network.

What it decides, and why:

* **Only http and https**, and only to addresses that are global unicast,
  checked on the address we actually connect to. We resolve the host
  ourselves, refuse the request if any resolved address is loopback, private,
  link-local (the cloud metadata address 169.254.169.254), multicast or
  otherwise not global (IPv4-mapped IPv6 is unwrapped first; odd spellings
  such as 0x7f000001 or 2130706433 resolve to 127.0.0.1 and are refused like
  it), then connect to that checked address with the original Host header and
  TLS server name. Connecting to what we checked closes the DNS-rebinding gap
  between a check and a second look-up. Every redirect hop is checked again.
  `allow` opens exceptions: CIDR networks ("127.0.0.0/8") or exact
  "host:port" pairs; the tests use it for their loopback server.
* **Bounded work.** One deadline for the whole fetch (connect, redirects,
  headers and body), not only per read, so a server that drips a byte a second
  cannot hold a worker; a separate connect timeout. The body is read raw and
  decompressed by us (gzip, deflate, br) with an output limit per step, so a
  compression bomb stops as soon as the decoded size passes `max_bytes`.
* **Redirects** are followed by hand, at most `max_redirects`; a loop is an
  error. Whether every hop was permanent (301/308) is reported, so the caller
  can update a stored URL.
* **Conditional GET**: the caller passes the stored ETag and Last-Modified; a
  304 comes back as `not_modified` with no body.
* **Connections are reused per host name** (`Clients`): a poll's fetches of
  one host share its kept-alive connection, saving a TCP and TLS handshake
  (and their round trips) per feed after the first. Never per address alone:
  a pool is opened for one name at one checked address (its Host header, TLS
  server name and certificate check), so a request for another name that
  resolves to the same address never rides on it. A pool serves one fetch at
  a time.
* **urllib3 underneath**, not a higher-level client: the request is ours to
  shape (address, Host, SNI, no redirects, no retries, raw body), and a
  conditional GET costs about half the CPU it did through httpx
  (docs/benchmarks.md). httpx's URL type still parses and joins URLs.

Errors are `FetchError` with the URL and a one-line reason; HTTP error
statuses are not errors here (the caller decides what 410 or 429 mean) and come
back with `status` and `retry_after`.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import brotli
import httpx
import urllib3
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from aggregator import __version__
from aggregator.errors import FetchError
from aggregator.model import as_utc
from aggregator.urls import IPNetwork, parse_allow

USER_AGENT = f"aggregator/{__version__} (deduplicating news aggregator)"
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_PERMANENT = frozenset((301, 308))
_STEP = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits and exceptions for every fetch."""

    max_bytes: int = 15 * 1024 * 1024
    deadline: float = 30.0
    connect_timeout: float = 10.0
    max_redirects: int = 5
    allow: tuple[str, ...] = ()
    user_agent: str = USER_AGENT
    networks: tuple[IPNetwork, ...] = field(init=False, default=())
    host_ports: frozenset[tuple[str, int]] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        networks, pairs = parse_allow(self.allow)
        object.__setattr__(self, "networks", networks)
        object.__setattr__(self, "host_ports", pairs)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What came back from one fetch."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    content: bytes
    not_modified: bool
    permanent_redirect: bool
    retry_after: float | None
    elapsed: float


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for every fetch.

    Building one loads the CA bundle (about 35 ms); every connection pool shares
    it (the host name each verifies against is the pool's, not the context's).
    """
    return httpx.create_ssl_context()


def address_allowed(address: IPAddress, policy: FetchPolicy) -> bool:
    """Is connecting to this address allowed: global unicast, or allow-listed?"""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in policy.networks):
        return True
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int, policy: FetchPolicy, url: str) -> str:
    """The checked address to connect to for host:port, or FetchError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise FetchError(url, f"cannot resolve {host}: {e}") from e
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if (host.lower(), port) in policy.host_ports:
        return str(addresses[0])
    refused = [a for a in addresses if not address_allowed(a, policy)]
    if refused or not addresses:
        shown = refused[0] if refused else "nothing"
        raise FetchError(url, f"refused: {host} resolves to non-public address {shown}")
    return str(addresses[0])


Pool = urllib3.HTTPConnectionPool
PoolKey = tuple[str, str, str, int]  # scheme, host name, checked address, port


def _open_pool(key: PoolKey) -> Pool:
    """One kept-alive connection to a checked address, for one host name."""
    scheme, host, address, port = key
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            retries=False,
            assert_hostname=host,
            server_hostname=host,
            ssl_context=tls_context(),
        )
    return urllib3.HTTPConnectionPool(address, port, retries=False)


class Clients:
    """Idle connection pools by host name and address, for fetches in any number of threads.

    `client(key)` lends one for a request (the most recently returned idle pool
    of that key, else a new one) and takes it back after; at most `limit` idle
    pools are kept, the longest idle closed beyond that, so a poll of
    thousands of hosts holds a bounded number of sockets.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._idle: list[tuple[PoolKey, Pool]] = []  # in the order they came back
        self._closed = False

    @contextmanager
    def client(self, key: PoolKey) -> Iterator[Pool]:
        with self._lock:
            found = [n for n, (held, _) in enumerate(self._idle) if held == key]
            pool = self._idle.pop(found[-1])[1] if found else None
        pool = pool or _open_pool(key)
        try:
            yield pool
        except BaseException:
            pool.close()  # in an unknown state
            raise
        with self._lock:
            self._idle.append((key, pool))
            cut = len(self._idle) if self._closed else max(0, len(self._idle) - self.limit)
            excess, self._idle = self._idle[:cut], self._idle[cut:]
        for _, old in excess:
            old.close()

    def close(self) -> None:
        """Close the idle pools now, and each lent one as it comes back."""
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for _, pool in idle:
            pool.close()


def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    clients: Clients | None = None,
) -> FetchResult:
    """GET `url` under `policy`, following redirects by hand; see the module docstring.

    With `clients`, each request borrows a pool for its host from it (and its
    kept-alive connection); without, the fetch opens and closes its own.
    """
    started = time.monotonic()
    deadline = started + policy.deadline
    if clients is not None:
        return _fetch(url, policy, etag, last_modified, clients.client, started, deadline)
    own = Clients(limit=0)
    try:
        return _fetch(url, policy, etag, last_modified, own.client, started, deadline)
    finally:
        own.close()


def _fetch(
    url: str,
    policy: FetchPolicy,
    etag: str | None,
    last_modified: str | None,
    borrow: Callable[[PoolKey], AbstractContextManager[Pool]],
    started: float,
    deadline: float,
) -> FetchResult:
    current = url
    seen = {url}
    permanent = True
    for _ in range(policy.max_redirects + 1):
        target = _checked_url(current, policy)
        headers = {
            "User-Agent": policy.user_agent,
            "Accept-Encoding": "gzip, deflate, br",
            "Host": target.netloc.decode("ascii"),
        }
        if etag and _sendable(etag):
            headers["If-None-Match"] = etag
        if last_modified and _sendable(last_modified):
            headers["If-Modified-Since"] = last_modified
        remaining = _remaining(deadline, current)
        timeout = urllib3.Timeout(connect=min(policy.connect_timeout, remaining), read=remaining)
        port = target.port or _default_port(target)
        address = resolve(target.host, port, policy, current)
        try:
            with borrow((target.scheme, target.host, address, port)) as pool:
                response = pool.urlopen(
                    "GET",
                    target.raw_path.decode("ascii"),
                    headers=headers,
                    redirect=False,
                    retries=False,
                    timeout=timeout,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                )
                finished = False  # the answer read to its end: the connection can be kept
                try:
                    status = int(response.status)
                    location = response.headers.get("location")
                    if status in _REDIRECTS and location is not None:
                        permanent = permanent and status in _PERMANENT
                        current = str(target.join(location))
                        if current in seen:
                            raise FetchError(url, f"redirect loop at {current}")
                        seen.add(current)
                        continue
                    content = b""
                    if status != 304:  # a 304 has no body
                        content = _read_body(response, policy, deadline, current)
                    # A repeated header comes back joined with ", ", as before.
                    fields = {k.lower(): v for k, v in response.headers.itermerged()}
                    finished = True
                finally:
                    if not finished:  # a redirect's unread body, or an error: not kept
                        response.close()
                    response.release_conn()
                return FetchResult(
                    url=url,
                    final_url=current,
                    status=status,
                    headers=fields,
                    content=content,
                    not_modified=status == 304,
                    permanent_redirect=permanent and current != url,
                    retry_after=parse_retry_after(fields.get("retry-after")),
                    elapsed=time.monotonic() - started,
                )
        except NewConnectionError as e:  # urllib3 makes it a kind of timeout; it is not
            raise FetchError(url, f"cannot connect: {e}") from e
        except TransportTimeout as e:
            raise FetchError(url, f"timed out after {time.monotonic() - started:.1f} s") from e
        except (TransportError, OSError) as e:
            raise FetchError(url, f"{type(e).__name__}: {e}") from e
    raise FetchError(url, f"more than {policy.max_redirects} redirects")


def _checked_url(url: str, policy: FetchPolicy) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise FetchError(url, f"invalid URL: {e}") from e
    if parsed.scheme not in ("http", "https"):
        raise FetchError(url, f"refused: scheme {parsed.scheme or '(none)'!r} is not http(s)")
    if not parsed.host:
        raise FetchError(url, "invalid URL: no host")
    return parsed


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _remaining(deadline: float, url: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError(url, "deadline passed")
    return remaining


def _read_body(
    response: urllib3.BaseHTTPResponse, policy: FetchPolicy, deadline: float, url: str
) -> bytes:
    decoder = _decoder(response.headers.get("content-encoding", ""), url)
    size = 0
    parts: list[bytes] = []
    # read1: whatever has arrived (up to a step), so a body dripped a byte at a
    # time still meets the deadline check between reads.
    for raw in iter(lambda: response.read1(_STEP, decode_content=False), b""):
        for piece in decoder(raw):
            size += len(piece)
            if size > policy.max_bytes:
                raise FetchError(url, f"body over the {policy.max_bytes} byte cap")
            parts.append(piece)
        if time.monotonic() > deadline:
            raise FetchError(url, f"deadline of {policy.deadline:.0f} s passed while reading")
    return b"".join(parts)


def _decoder(encoding: str, url: str) -> Any:
    """A function from raw chunks to bounded decoded pieces, for one content encoding."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return lambda raw: [raw]
    if name in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(47 if name != "deflate" else 15)

        def inflate(raw: bytes) -> Iterator[bytes]:
            data = raw
            try:
                while data or inflater.unconsumed_tail:
                    piece = inflater.decompress(data or inflater.unconsumed_tail, _STEP)
                    data = b""
                    if not piece:
                        break
                    yield piece
            except zlib.error as e:
                raise FetchError(url, f"bad {name} body: {e}") from e

        return inflate
    if name == "br":
        unbrotli = brotli.Decompressor()

        def debrotli(raw: bytes) -> Iterator[bytes]:
            try:
                piece = unbrotli.process(raw, output_buffer_limit=_STEP)
                yield piece
                while not unbrotli.is_finished() and not unbrotli.can_accept_more_data():
                    yield unbrotli.process(b"", output_buffer_limit=_STEP)
            except brotli.error as e:
                raise FetchError(url, f"bad br body: {e}") from e

        return debrotli
    raise FetchError(url, f"unsupported content encoding {encoding!r}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _sendable(validator: str) -> bool:
    """Whether a stored ETag or Last-Modified can go back as a header: printable ASCII.

    A server may send bytes beyond ASCII in them (read as Latin-1); sent back,
    they would fail every later fetch of the feed. Without the validator the
    fetch is an unconditional GET, which is merely slower.
    """
    return validator.isascii() and validator.isprintable()
