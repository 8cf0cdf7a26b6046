"""Feed farm: N loopback feeds that change over time and fail in every way a server can.

Run as its own process (`bench/soak.py` starts it, so its CPU and GIL are not
the daemon's):

    python -m bench.farm --feeds 20 --seconds 60 --faults default

It prints one JSON line (`{"urls": [...], "pid": ...}`), then serves, and takes
commands on stdin, one per line, answering each with one JSON line:
`quiet` (stop changing content and injecting faults; answers `quiet_at`),
`status` (response counts, and per feed when it was first answered completely
after `quiet`), `ledger PATH` (write the ledger as JSON) and `stop`. It stops by
itself at `--seconds` + `--grace`, after `--max-requests`, or when stdin closes.

What it decides, and why:

* **Content.** Each feed keeps a window of its newest `--window` entries. Every
  `--change-seconds` (exponentially distributed, per feed) it adds an entry or
  edits one in the window (a sentence reworded, " (updated N)" on the title).
  A share of new entries (`--syndicate`) republishes another feed's recent
  story with small edits under its own GUID, so deduplication links them. Text
  is 3-5 paragraphs of three or more 12+ word sentences, enough for the
  sentence-level MinHash, and titles carry non-ASCII letters so that decoding
  mistakes show. Formats: RSS 2.0 with `content:encoded` (most feeds; every
  third one in ISO-8859-1, declared), Atom 1.0 (every fifth) and JSON Feed
  (every seventh), each with an ETag answered by 304. The full text is in the
  feed, so the daemon never fetches article pages.
* **Faults** (`--faults`, `kind=probability,...`, drawn per request; `default`
  is `DEFAULT_MIX`): `500`; `reset` (RST before any byte); `drip` (a byte run
  every 0.4 s for `--drip-seconds`, longer than the daemon's deadline);
  `truncate` (half the body, then close, with the full Content-Length);
  `malformed` (a stray unclosed tag and a bare `&`, or a JSON body cut short);
  `encoding` (Windows-1252 bytes declared UTF-8); `oversize` (a valid document
  padded past `--max-bytes`); `bomb` (gzip that inflates to 10x `--max-bytes`);
  `redirect` (a chain of 1-3 temporary or permanent hops, or 6, one more than
  the fetcher follows; chains end at the feed's alias path, so a permanent one
  moves the daemon's URL between `/f/N` and `/a/N`); `429` with Retry-After
  1-3 s; `gone` (410 for `--gone-seconds`, then the feed comes back). So that a
  short run sees every kind, feed i's second request gets kind i of the mix
  (in `FAULT_KINDS` order) when i < number of kinds.
* **The ledger.** An entry counts as *served* when it went out in a complete,
  valid 200 response: the whole body written to the socket (after any redirect
  chain) without a fault. For each feed and GUID it records the first time
  served and every version served (number, title, hash of title and text,
  first served). Entries that went out only in a damaged response (malformed,
  wrong encoding) are recorded as *exposed*: a lenient parser may store them,
  so they are allowed in the store, but not required. A body cut short by the
  transport (truncate, drip, oversize, bomb) exposes nothing: the fetcher must
  refuse it whole. The ledger also keeps each feed's final window, whether a
  410 went out (the daemon disables such a feed, by design), and, after
  `quiet`, when each feed was first answered completely (200 or 304), so the
  soak can wait until the daemon has seen every feed's final state.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

FAULT_KINDS = (
    "500",
    "reset",
    "drip",
    "truncate",
    "malformed",
    "encoding",
    "oversize",
    "bomb",
    "redirect",
    "429",
    "gone",
)
DEFAULT_MIX: dict[str, float] = {
    "500": 0.03,
    "reset": 0.02,
    "drip": 0.01,
    "truncate": 0.02,
    "malformed": 0.02,
    "encoding": 0.02,
    "oversize": 0.01,
    "bomb": 0.01,
    "redirect": 0.04,
    "429": 0.02,
    "gone": 0.003,
}
DAMAGED = frozenset(("malformed", "encoding"))  # a 200 whose entries may be parsed anyway

WORDS = (
    "minister council harbour vote market storm court rail union price river summit grain "
    "border police energy school doctor budget strike coast airport village election tariff "
    "museum bridge factory harvest treaty senate garden hospital festival bank report farmer "
    "engineer pilot judge mayor teacher nurse miner sailor officer trader envoy clerk "
    "announced rejected approved delayed expanded reduced questioned defended confirmed "
    "northern southern eastern western local national regional quarterly annual emergency"
).split()
NAMES = ("Zoë Müller", "São Paulo", "Ærøskøbing", "Łódź", "Citroën", "Renée Dubois", "Gdańsk")


def parse_mix(text: str) -> dict[str, float]:
    """`default`, `none`, or `kind=p,...` (kinds not named get 0)."""
    if text == "default":
        return dict(DEFAULT_MIX)
    mix = dict.fromkeys(FAULT_KINDS, 0.0)
    if text in ("", "none"):
        return mix
    for part in text.split(","):
        kind, _, value = part.partition("=")
        if kind.strip() not in mix:
            raise ValueError(f"unknown fault kind {kind!r}; kinds: {', '.join(FAULT_KINDS)}")
        mix[kind.strip()] = float(value)
    if sum(mix.values()) > 1:
        raise ValueError("fault probabilities add up to more than 1")
    return mix


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(12, 20))]
    return " ".join(words).capitalize() + "."


def _paragraphs(rng: random.Random) -> list[str]:
    return [
        " ".join(_sentence(rng) for _ in range(rng.randint(3, 4))) for _ in range(rng.randint(3, 5))
    ]


def _edit(paragraphs: list[str], rng: random.Random) -> list[str]:
    """A small edit: one word replaced in one sentence, the last paragraph sometimes dropped."""
    edited = list(paragraphs)
    if len(edited) > 3 and rng.random() < 0.3:
        edited.pop()
    at = rng.randrange(len(edited))
    words = edited[at].split(" ")
    spot = rng.randrange(1, len(words) - 1)
    words[spot] = rng.choice(WORDS)
    edited[at] = " ".join(words)
    return edited


@dataclass(slots=True)
class Entry:
    guid: str
    number: int
    title: str
    paragraphs: list[str]
    published: datetime
    version: int = 1

    def digest(self) -> str:
        text = self.title + "\n" + "\n\n".join(self.paragraphs)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(slots=True)
class Feed:
    index: int
    kind: str  # "rss", "rss-latin1", "atom", "json"
    entries: list[Entry] = field(default_factory=list)  # newest first
    next_number: int = 0
    next_change: float = 0.0
    gone_until: float = 0.0
    requests: int = 0
    revision: int = 0
    rendered: tuple[int, bytes, str] | None = None  # (revision, body, etag)
    gone_sent: float | None = None
    final_answered: float | None = None


@dataclass(slots=True)
class Ledger:
    # (feed, guid) -> {"first_served": t, "versions": {version: [title, digest, t]}}
    served: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    exposed: set[tuple[int, str]] = field(default_factory=set)

    def record(self, feed: int, entries: list[Entry], now: float) -> None:
        for e in entries:
            row = self.served.setdefault((feed, e.guid), {"first_served": now, "versions": {}})
            row["versions"].setdefault(e.version, [e.title, e.digest(), now])
            self.exposed.add((feed, e.guid))


class Farm:
    """The feeds, their changes, the faults and the ledger; shared by the handler threads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.mix = parse_mix(args.faults)
        self.lock = threading.Lock()
        self.ledger = Ledger()
        self.counts: Counter[str] = Counter()
        self.quiet_at: float | None = None
        self.requests = 0
        self.stopped = threading.Event()
        self.base = ""
        now = time.time()
        self.feeds = [Feed(i, self._format(i)) for i in range(args.feeds)]
        for feed in self.feeds:
            for _ in range(args.initial):
                self._add(feed, now)
            feed.next_change = now + self.rng.expovariate(1 / args.change_seconds)
        # Built once: a padded valid document's padding, and a gzip bomb.
        self.padding = b"<!-- " + b"x" * (args.max_bytes + args.max_bytes // 2) + b" -->"
        self.bomb = gzip.compress(b" " * (10 * args.max_bytes), compresslevel=9)

    @staticmethod
    def _format(i: int) -> str:
        if i % 7 == 6:
            return "json"
        if i % 5 == 4:
            return "atom"
        return "rss-latin1" if i % 3 == 1 else "rss"

    # -- content -----------------------------------------------------------------------

    def _add(self, feed: Feed, now: float) -> None:
        rng = self.rng
        n = feed.next_number
        feed.next_number += 1
        others = [f for f in self.feeds if f is not feed and f.entries]
        place = rng.choice(NAMES)
        if others and rng.random() < self.args.syndicate:
            source = rng.choice(rng.choice(others).entries[:5])
            title = f"{source.title.split(' (updated')[0]} via feed {feed.index}"
            paragraphs = _edit(source.paragraphs, rng)
        else:
            title = f"Feed {feed.index} story {n}: {rng.choice(WORDS)} in {place}"
            paragraphs = _paragraphs(rng)
        guid = f"urn:farm:f{feed.index:05d}:e{n:06d}"
        feed.entries.insert(0, Entry(guid, n, title, paragraphs, datetime.now(UTC)))
        del feed.entries[self.args.window :]
        feed.revision += 1

    def _change(self, feed: Feed, now: float) -> None:
        if feed.entries and self.rng.random() < self.args.edit:
            entry = self.rng.choice(feed.entries)
            entry.version += 1
            entry.title = f"{entry.title.split(' (updated')[0]} (updated {entry.version})"
            entry.paragraphs = _edit(entry.paragraphs, self.rng)
            feed.revision += 1
        else:
            self._add(feed, now)

    def tick(self) -> None:
        """Apply the changes that are due (until `quiet`)."""
        with self.lock:
            if self.quiet_at is not None:
                return
            now = time.time()
            for feed in self.feeds:
                while feed.next_change <= now:
                    self._change(feed, now)
                    feed.next_change += self.rng.expovariate(1 / self.args.change_seconds)

    def document(self, feed: Feed) -> tuple[bytes, str, list[Entry]]:
        """The feed's current document, its ETag and the entries in it (under the lock)."""
        if feed.rendered is None or feed.rendered[0] != feed.revision:
            body = render(feed, self.base)
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            feed.rendered = (feed.revision, body, etag)
        return feed.rendered[1], feed.rendered[2], list(feed.entries)

    def draw(self, feed: Feed) -> str | None:
        """The fault for this request, or None."""
        if self.quiet_at is not None:
            return None
        kinds = [k for k in FAULT_KINDS if self.mix.get(k, 0) > 0]
        if feed.requests == 2 and feed.index < len(kinds):
            return kinds[feed.index]
        roll = self.rng.random()
        for kind in FAULT_KINDS:
            roll -= self.mix.get(kind, 0.0)
            if roll < 0:
                return kind
        return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "counts": dict(self.counts),
                "requests": self.requests,
                "quiet_at": self.quiet_at,
                "final_answered": {
                    f.index: f.final_answered for f in self.feeds if f.final_answered
                },
                "gone_sent": {f.index: f.gone_sent for f in self.feeds if f.gone_sent},
            }

    def ledger_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "quiet_at": self.quiet_at,
                "urls": self.urls(),
                "served": [
                    {"feed": f, "guid": g, **row} for (f, g), row in self.ledger.served.items()
                ],
                "exposed": sorted([f, g] for f, g in self.ledger.exposed),
                "final": {
                    f.index: {e.guid: [e.version, e.title] for e in f.entries} for f in self.feeds
                },
                "gone_sent": {f.index: f.gone_sent for f in self.feeds if f.gone_sent},
                "counts": dict(self.counts),
                "requests": self.requests,
            }

    def urls(self) -> list[str]:
        return [f"{self.base}/f/{f.index:05d}" for f in self.feeds]


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _html(entry: Entry) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in entry.paragraphs)


def render(feed: Feed, base: str) -> bytes:
    """The feed's document in its format (valid, declared encoding)."""
    link = f"{base}/site/{feed.index:05d}"
    if feed.kind == "json":
        objects = [
            {
                "id": e.guid,
                "url": f"{link}/{e.number}",
                "title": e.title,
                "content_html": _html(e),
                "date_published": e.published.isoformat(),
            }
            for e in feed.entries
        ]
        document = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": f"Farm feed {feed.index}",
            "home_page_url": link,
            "items": objects,
        }
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    if feed.kind == "atom":
        entries = "".join(
            f"<entry><id>{escape(e.guid)}</id><title>{escape(e.title)}</title>"
            f'<link href="{link}/{e.number}"/>'
            f"<updated>{e.published.isoformat()}</updated>"
            f'<content type="html">{escape(_html(e))}</content></entry>'
            for e in feed.entries
        )
        text = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Farm feed {feed.index}</title>'
            f"<id>{link}</id><updated>{datetime.now(UTC).isoformat()}</updated>"
            f'<link href="{link}"/>{entries}</feed>'
        )
        return text.encode("utf-8")
    items = "".join(
        f'<item><guid isPermaLink="false">{e.guid}</guid><title>{escape(e.title)}</title>'
        f"<link>{link}/{e.number}</link><pubDate>{_rfc822(e.published)}</pubDate>"
        f"<description>{escape(e.paragraphs[0].split('.')[0])}.</description>"
        f"<content:encoded><![CDATA[{_html(e)}]]></content:encoded></item>"
        for e in feed.entries
    )
    encoding = "iso-8859-1" if feed.kind == "rss-latin1" else "utf-8"
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Farm feed {feed.index}</title><link>{link}</link>"
        f"<description>Feed {feed.index} of the farm</description>{items}</channel></rss>"
    )
    return text.encode(encoding, errors="xmlcharrefreplace")


def damage(body: bytes, kind: str, fmt: str) -> bytes:
    """A damaged copy of a valid document: malformed markup, or bytes in the wrong encoding."""
    if kind == "encoding":
        if fmt == "rss-latin1":
            return body.replace(b'encoding="iso-8859-1"', b'encoding="utf-8"', 1)
        return body.decode("utf-8").encode("cp1252", errors="xmlcharrefreplace")
    if fmt == "json":
        return body[: len(body) - 2]
    for tag in (b"<channel>", b"<feed xmlns"):
        at = body.find(tag)
        if at >= 0:
            end = body.index(b">", at) + 1
            return body[:end] + b"<b>unclosed & stray <i>markup</b>" + body[end:]
    return body + b"<unclosed"


class FarmServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], farm: Farm) -> None:
        super().__init__(address, FarmHandler)
        self.farm = farm


class FarmHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "feed-farm/1"
    disable_nagle_algorithm = True
    server: FarmServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        farm = self.server.farm
        parts = self.path.strip("/").split("/")
        with farm.lock:
            farm.requests += 1
            if farm.requests > farm.args.max_requests:
                farm.stopped.set()
        if len(parts) >= 2 and parts[0] in ("f", "a", "r") and parts[1].isdigit():
            index = int(parts[1])
            if index < len(farm.feeds):
                try:
                    if parts[0] == "r":
                        self._hop(index, parts[2:])
                    else:
                        self._feed(farm.feeds[index], parts[0])
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    with farm.lock:
                        farm.counts["client-hung-up"] += 1
                    self.close_connection = True
                return
        self._plain(404, b"not found\n")

    def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _hop(self, index: int, rest: list[str]) -> None:
        """/r/N/step/length/code/target: one hop of a redirect chain."""
        step, length, code, target = int(rest[0]), int(rest[1]), int(rest[2]), rest[3]
        nxt = (
            f"/r/{index:05d}/{step + 1}/{length}/{code}/{target}"
            if step < length
            else f"/{target}/{index:05d}"
        )
        self._plain(code, b"moved\n", {"Location": nxt})

    def _feed(self, feed: Feed, path_kind: str) -> None:
        farm = self.server.farm
        now = time.time()
        with farm.lock:
            feed.requests += 1
            gone = feed.gone_until > now and farm.quiet_at is None
            fault = "gone" if gone else farm.draw(feed)
            if fault == "gone" and not gone:
                feed.gone_until = now + farm.args.gone_seconds
            body, etag, entries = farm.document(feed)
            farm.counts[fault or "ok"] += 1
            rng_value = farm.rng.random()
        if fault is None:
            self._serve(feed, body, etag, entries)
        elif fault == "gone":
            with farm.lock:
                feed.gone_sent = feed.gone_sent or now
            self._plain(410, b"gone\n")
        elif fault == "500":
            self._plain(500, b"internal error\n")
        elif fault == "429":
            self._plain(429, b"slow down\n", {"Retry-After": str(1 + int(rng_value * 3))})
        elif fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif fault == "redirect":
            self._redirect(feed, path_kind, rng_value)
        elif fault in DAMAGED:
            bad = damage(body, fault, feed.kind)
            bad_etag = '"' + hashlib.sha256(bad).hexdigest()[:20] + '"'
            self._send_body(bad, bad_etag, feed)
            with farm.lock:
                farm.ledger.exposed.update((feed.index, e.guid) for e in entries)
        else:
            self._broken(fault, body, feed)

    def _redirect(self, feed: Feed, path_kind: str, roll: float) -> None:
        length = 6 if roll < 0.1 else 1 + int(roll * 3) % 3
        code = 301 if roll > 0.75 else (302 if roll > 0.4 else 307)
        target = "f" if path_kind == "a" else "a"
        if length == 1:
            self._plain(code, b"moved\n", {"Location": f"/{target}/{feed.index:05d}"})
        else:
            location = f"/r/{feed.index:05d}/2/{length}/{code}/{target}"
            self._plain(code, b"moved\n", {"Location": location})

    def _content_type(self, feed: Feed) -> str:
        if feed.kind == "json":
            return "application/feed+json"
        if feed.kind == "atom":
            return "application/atom+xml"
        return "application/rss+xml"

    def _send_body(self, body: bytes, etag: str, feed: Feed, gz: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self._content_type(feed))
        self.send_header("ETag", etag)
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _serve(self, feed: Feed, body: bytes, etag: str, entries: list[Entry]) -> None:
        farm = self.server.farm
        if etag in (self.headers.get("If-None-Match") or ""):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with farm.lock:
                farm.counts["304"] += 1
                if farm.quiet_at is not None and feed.final_answered is None:
                    feed.final_answered = time.time()
            return
        gz = "gzip" in self.headers.get("Accept-Encoding", "") and feed.index % 2 == 0
        self._send_body(gzip.compress(body, 6) if gz else body, etag, feed, gz)
        now = time.time()
        with farm.lock:
            farm.counts["200"] += 1
            farm.ledger.record(feed.index, entries, now)
            if farm.quiet_at is not None and feed.final_answered is None:
                feed.final_answered = now

    def _broken(self, fault: str, body: bytes, feed: Feed) -> None:
        farm = self.server.farm
        if fault == "oversize":
            at = body.find(b"<channel>")
            padded = body[:at] + farm.padding + body[at:] if at >= 0 else farm.padding + body
            self._send_body(padded, '"padded"', feed)
            return
        if fault == "bomb":
            self._send_body(farm.bomb, '"bomb"', feed, gz=True)
            return
        self.send_response(200)
        self.send_header("Content-Type", self._content_type(feed))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if fault == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        # drip: a few bytes every 0.4 s, for longer than the client's deadline, then close.
        stop = time.monotonic() + farm.args.drip_seconds
        at = 0
        while time.monotonic() < stop and at < len(body) - 1 and not farm.stopped.is_set():
            self.wfile.write(body[at : at + 16])
            at += 16
            time.sleep(0.4)
        self.connection.shutdown(socket.SHUT_RDWR)


def _commands(farm: Farm, server: FarmServer) -> None:
    """stdin: one command a line, one JSON line back; EOF stops the farm."""
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        reply: dict[str, Any]
        if command == "quiet":
            farm.tick()
            with farm.lock:
                farm.quiet_at = farm.quiet_at or time.time()
                reply = {"quiet_at": farm.quiet_at}
        elif command == "status":
            reply = farm.snapshot()
        elif command == "ledger":
            with Path(arg).open("w", encoding="utf-8") as out:
                json.dump(farm.ledger_json(), out)
            reply = {"path": arg}
        elif command == "stop":
            break
        else:
            reply = {"error": f"unknown command {command!r}"}
        print(json.dumps(reply), flush=True)
    farm.stopped.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="changes stop after this")
    parser.add_argument("--grace", type=float, default=300, help="serving stops this much later")
    parser.add_argument("--max-requests", type=int, default=5_000_000)
    parser.add_argument("--faults", default="default")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--window", type=int, default=15, help="entries in each document")
    parser.add_argument("--initial", type=int, default=3, help="entries at start")
    parser.add_argument("--change-seconds", type=float, default=6.0, help="mean per feed")
    parser.add_argument("--edit", type=float, default=0.25, help="share of changes that edit")
    parser.add_argument("--syndicate", type=float, default=0.25)
    parser.add_argument("--max-bytes", type=int, default=1 << 20, help="the daemon's cap")
    parser.add_argument("--drip-seconds", type=float, default=4.0)
    parser.add_argument("--gone-seconds", type=float, default=8.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    farm = Farm(args)
    server = FarmServer(("127.0.0.1", args.port), farm)
    farm.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=_commands, args=(farm, server), daemon=True).start()
    print(json.dumps({"urls": farm.urls(), "pid": __import__("os").getpid()}), flush=True)
    ends = time.monotonic() + args.seconds + args.grace
    changes_end = time.time() + args.seconds
    while not farm.stopped.wait(0.25) and time.monotonic() < ends:
        if time.time() < changes_end:
            farm.tick()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
