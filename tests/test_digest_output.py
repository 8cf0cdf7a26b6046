"""Digest output under attack: hostile feed text in HTML, Atom and mail; real SMTP; Chromium."""

from __future__ import annotations

import email
import html
import socket
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from aiosmtpd.controller import Controller

from aggregator.config import Config, DigestConfig
from aggregator.digest.publish import mail_message, send_mail, since_period
from aggregator.digest.render import to_atom, to_html
from aggregator.digest.select import Digest, build_digest
from aggregator.ingest.entries import entry_documents
from aggregator.sources.parse import parse_feed
from aggregator.storage.store import Store
from tests.chromium import ARTIFACTS, needs_chromium, render
from tests.conftest import SEEDS, ingest_docs

pytestmark = pytest.mark.both_stores

SHARED = next(SEEDS.glob("001_*.txt")).read_text(encoding="utf-8").splitlines()[6]
EVIL_TITLE = "Evil <script>document.title='EXECUTED'</script> ]]> title\r\nBcc: victim@example.com"
EVIL_BODY = (
    "<p>Hello <script>document.title='EXECUTED'</script>"
    '<a href="javascript:alert(1)">x</a><img src="javascript:alert(2)" onerror="alert(3)">'
    '<svg><a xlink:href="javascript:alert(4)">y</a></svg><a href="&#106;avascript:alert(5)">z</a>'
    "</p><p>" + SHARED + "</p>"
)


def _hostile_feed(name: str) -> bytes:
    item = (
        f"<item><guid>{name}-1</guid><title>{html.escape(EVIL_TITLE)}</title>"
        f"<link>javascript:alert(6)</link><description>{html.escape(EVIL_BODY)}</description>"
        "</item>"
    )
    return f'<rss version="2.0"><channel><title>{name}</title>{item}</channel></rss>'.encode()


@pytest.fixture
def hostile(config: Config) -> Digest:
    now = datetime.now(UTC).replace(microsecond=0)
    for name in ("evil-one", "evil-two"):
        url = f"https://{name}.example/feed"
        entries = parse_feed(_hostile_feed(name), {}, url).entries
        ingest_docs(config, entry_documents(entries, url, name, now - timedelta(hours=1)))
    with Store(config.database, config.dedup.minhash) as store:
        return build_digest(store, *since_period("1d", now + timedelta(minutes=1)))


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(k, v or "") for k, v in attrs]


def test_hostile_feed_text_leaves_no_script_or_javascript_url(hostile: Digest) -> None:
    [story] = hostile.stories
    assert story.sources == 2, "the two hostile copies still form one story"
    page = to_html(hostile)
    elements = _Elements()
    elements.feed(page)
    assert (
        "script" not in elements.tags and "svg" not in elements.tags and "img" not in elements.tags
    )
    assert not [k for k, _ in elements.attributes if k.startswith("on")]
    urls = [v for k, v in elements.attributes if k in ("href", "src", "xlink:href", "action")]
    assert not [u for u in urls if not u.lower().strip().startswith(("http://", "https://"))]
    assert "Evil &lt;script&gt;" in page, "the title is shown, escaped"


def test_hostile_atom_is_strict_xml_and_feedparser_reads_it_without_bozo(hostile: Digest) -> None:
    document = to_atom(hostile, "urn:uuid:5")
    ET.fromstring(document)  # a strict XML parser
    parsed: Any = feedparser.parse(document.encode())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.entries[0].title.startswith("Evil <script>")
    assert "]]>" in parsed.entries[0].title and "<![CDATA[" not in document


def _mail_config(port: int) -> Config:
    digest = DigestConfig(
        mail_to=("reader@example.com",),
        mail_from="digest@example.org",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
    )
    return replace(Config(), digest=digest)


def test_mail_headers_carry_no_feed_text(hostile: Digest) -> None:
    message = mail_message(hostile, _mail_config(25))
    head = message.as_bytes().split(b"\n\n", 1)[0].decode()
    names = [line.split(":", 1)[0] for line in head.splitlines() if not line.startswith(" ")]
    assert sorted(names) == sorted(
        ["Subject", "From", "To", "Date", "Message-ID", "MIME-Version", "Content-Type"]
    )
    assert "victim" not in head and "Evil" not in head


class _Sink:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_digest_is_delivered_to_a_real_smtp_server(hostile: Digest) -> None:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        send_mail(hostile, _mail_config(port))
    finally:
        controller.stop()
    [(recipients, raw)] = sink.received
    assert recipients == ["reader@example.com"]
    message: Message = email.message_from_bytes(raw, policy=default)
    assert message["Subject"] == "News digest " + hostile.start[:10] + (
        f" to {hostile.end[:10]}: 1 story"
    )
    parts = [part.get_content_type() for part in message.walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]


@needs_chromium
def test_the_html_digest_renders_in_headless_chromium(hostile: Digest, tmp_path: Path) -> None:
    page = tmp_path / "digest.html"
    page.write_text(to_html(hostile), encoding="utf-8")
    screenshot = ARTIFACTS / "digest.png"
    dom = render(page.as_uri(), screenshot, (412, 1200), tmp_path)
    assert "<title>News digest" in dom, "no script replaced the title"
    assert "EXECUTED</title>" not in dom
    assert "Evil &lt;script&gt;" in dom, "the story's title is rendered as text"
    assert screenshot.stat().st_size > 1000


def test_the_mail_is_dated_by_the_clock_it_is_given(hostile: Digest) -> None:
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    message = mail_message(hostile, _mail_config(25), now=moment)
    assert message["Date"] == "Fri, 20 Nov 2026 09:30:00 -0000"
