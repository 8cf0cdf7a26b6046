"""URL normalisation: one spelling per article link, so a link is a stable identity.

Applied to entry links before they identify an article: scheme and host are
lower-cased, default ports and fragments dropped (BBC's `#0` and the like
point at the same page), tracking parameters removed (`utm_*`, `fbclid`,
`gclid`, `mc_cid`, `mc_eid`, `igshid`, `ref_src`), the remaining query kept in
its original order (some servers care), and an empty path becomes `/`.
Relative links are resolved against the feed's URL first; an unparseable link
is returned as given. Normalising twice changes nothing (a property test holds
us to it).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_TRACKING_PREFIXES = ("utm_",)
_TRACKING = frozenset(("fbclid", "gclid", "dclid", "mc_cid", "mc_eid", "igshid", "ref_src"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4096)
def normalise_url(url: str, base: str | None = None) -> str:
    """The canonical spelling of `url` (resolved against `base` when relative).

    Memoised: a poll normalises each entry's link twice (its identity, then its
    document), at about 30 µs a call.
    """
    # The fragment goes first, as text: "/a #top" is "/a", and a link that is only
    # "#top" resolves to the page itself. Nothing before a '#' can contain one.
    url = url.partition("#")[0].strip()
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return url  # unparseable (e.g. "http://[::1"); left as given, still a stable identity
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        # Only the scheme is lower-cased: rebuilding such a URL from its parts is not
        # stable ("a:////" comes back as "a://", which comes back as "a:").
        head = url[: len(scheme)]
        return scheme + url[len(scheme) :] if head.lower() == scheme else url
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(_TRACKING_PREFIXES) and k.lower() not in _TRACKING
    ]
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/", urlencode(query, doseq=True), ""))
    return rebuilt.rstrip()  # "/ ?" or "/ ?utm_source=x": the dropped query left a space


def parse_allow(
    entries: tuple[str, ...],
) -> tuple[tuple[IPNetwork, ...], frozenset[tuple[str, int]]]:
    """`feeds.allow` read: CIDR networks ("127.0.0.0/8") and exact `host:port` pairs
    (host lower-cased); ValueError naming the first entry that is neither. Here, not
    in fetch.py, so that the configuration can check the key without the fetcher."""
    networks: list[IPNetwork] = []
    pairs: set[tuple[str, int]] = set()
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        if sep and port.isdigit() and "/" not in entry and not entry.count(":") > 1:
            pairs.add((host.lower(), int(port)))
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as e:
            raise ValueError(f"allow entry {entry!r}: not a CIDR network or host:port") from e
    return tuple(networks), frozenset(pairs)
