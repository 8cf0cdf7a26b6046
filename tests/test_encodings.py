"""How a feed's bytes are read (aggregator.sources.encoding) and why it matters (issue 12, item 1):
entity bombs are refused in every encoding, the same feed reads the same in every
encoding, and the order in which a document's encoding is decided.

The bombs are quadratic (one 10 KB entity referenced 10,000 times: a 100,000,000-
character title once expanded) and nested (billion laughs), each encoded as a server
could send it: UTF-16 and UTF-32 with and without a byte-order mark and declaration,
EBCDIC, GB18030, Shift_JIS, and with declarations or charsets that lie. Before, UTF-16
and UTF-32 declared as such without a byte-order mark, UTF-32 with one, and EBCDIC got
past the check and were expanded (2.3 to 2.8 s of CPU and 318 MiB each; the rest were
refused, or not expanded only because feedparser could not read them either); refusing
one now takes well under 10 ms.
"""

from __future__ import annotations

import codecs
import time
import tracemalloc
from dataclasses import dataclass

import feedparser
import pytest

from aggregator.errors import ParseError
from aggregator.sources.encoding import decode_document, utf8_document
from aggregator.sources.parse import ParsedFeed, parse_feed, refuse_entities

URL = "https://feed.example/rss"
BOMS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


@dataclass(frozen=True)
class Sent:
    """How a document is sent: its codec, a byte-order mark, what its XML declaration
    says (None: no declaration) and the HTTP charset ("" for none); and the start of
    the warning a benign feed sent so is read with ("": none)."""

    codec: str
    bom: bool = False
    declared: str | None = None
    charset: str = ""
    warns: str = ""

    def encode(self, text: str) -> bytes:
        declaration = (
            "" if self.declared is None else f'<?xml version="1.0" encoding="{self.declared}"?>\n'
        )
        return (BOMS[self.codec] if self.bom else b"") + (declaration + text).encode(self.codec)

    def headers(self) -> dict[str, str]:
        return (
            {"content-type": f"application/rss+xml; charset={self.charset}"} if self.charset else {}
        )


SENT = {
    "utf-8": Sent("utf-8", declared="utf-8"),
    "utf-8 BOM": Sent("utf-8", bom=True),
    "utf-16le BOM": Sent("utf-16-le", bom=True, declared="utf-16"),
    "utf-16be BOM": Sent("utf-16-be", bom=True, declared="utf-16"),
    "utf-16le": Sent("utf-16-le", declared="utf-16"),
    "utf-16be": Sent("utf-16-be", declared="utf-16"),
    "utf-16le undeclared": Sent("utf-16-le"),
    "utf-16be undeclared": Sent("utf-16-be"),
    "utf-32le BOM": Sent("utf-32-le", bom=True, declared="utf-32"),
    "utf-32be BOM": Sent("utf-32-be", bom=True),
    "utf-32le": Sent("utf-32-le", declared="utf-32"),
    "utf-32be": Sent("utf-32-be", declared="ucs-4"),
    "cp037": Sent("cp037", declared="cp037"),
    "cp037 undeclared": Sent("cp037"),
    "cp500": Sent("cp500", declared="ibm500"),
    "gb18030": Sent("gb18030", declared="gb18030"),
    "gb2312 declared": Sent("gb18030", declared="gb2312"),
    "shift_jis": Sent("shift_jis", declared="Shift_JIS"),
    "shift_jis by charset": Sent("shift_jis", charset="shift_jis"),
    # Declarations and charsets that lie: the bytes win.
    "utf-16le says utf-8": Sent(
        "utf-16-le", declared="utf-8", warns="declared encoding 'utf-8' ignored: read as utf-16-le"
    ),
    "utf-16be says iso-8859-1": Sent(
        "utf-16-be", declared="iso-8859-1", warns="declared encoding 'iso-8859-1' ignored"
    ),
    "utf-16le BOM says iso-8859-1": Sent(
        "utf-16-le",
        bom=True,
        declared="iso-8859-1",
        warns="declared encoding 'iso-8859-1' ignored: read as utf-16-le (byte-order mark)",
    ),
    "utf-32be says utf-16": Sent(
        "utf-32-be", declared="utf-16", warns="declared encoding 'utf-16' ignored"
    ),
    "cp037 says utf-8": Sent(
        "cp037", declared="utf-8", warns="declared encoding 'utf-8' ignored: read as cp037"
    ),
    "utf-8 says utf-16": Sent(
        "utf-8", declared="utf-16", warns="declared encoding 'utf-16' ignored (unknown"
    ),
    "utf-8 says utf-7": Sent("utf-8", declared="utf-7", warns="declared encoding 'utf-7' ignored"),
    "utf-16be charset iso-8859-1": Sent(
        "utf-16-be", charset="iso-8859-1", warns="HTTP charset 'iso-8859-1' ignored"
    ),
    "utf-8 charset utf-16": Sent("utf-8", charset="utf-16", warns="HTTP charset 'utf-16' ignored"),
}
# Sent otherwise than SENT lists, for benign feeds only: these read correctly only when
# they say what they are (a bomb in them is refused all the same).
BENIGN_ONLY = {
    "big5": Sent("big5", declared="big5"),
    "euc-kr": Sent("euc-kr", declared="EUC-KR"),
    "koi8-r by charset": Sent("koi8-r", charset="KOI8-R"),
    "iso-8859-1": Sent("iso-8859-1", declared="ISO-8859-1"),
    "windows-1252 undeclared": Sent("cp1252", warns="not valid utf-8; read as windows-1252"),
    "iso-2022-jp": Sent("iso-2022-jp", declared="ISO-2022-JP"),
}

# ---------------------------------------------------------------------------------------
# Bombs.


def _quadratic() -> str:
    """One 10 KB entity referenced 10,000 times, each declaration on its own line as
    feedparser's fallback parser needs to expand it."""
    return (
        f'<!DOCTYPE rss [\n<!ENTITY a "{"x" * 10_000}">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        f"<title>{'&a;' * 10_000}</title></item></channel></rss>"
    )


def _nested() -> str:
    """Billion laughs: ten levels of ten references each."""
    lol = '<!ENTITY lol0 "lol">\n' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
    )
    return (
        f"<!DOCTYPE rss [\n{lol}]>\n"
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        "<title>&lol9;</title></item></channel></rss>"
    )


BOMBS = {"quadratic": _quadratic(), "nested": _nested()}


@pytest.mark.parametrize("shape", sorted(BOMBS))
@pytest.mark.parametrize("sent", sorted(SENT))
def test_bomb_is_refused_in_every_encoding(sent: str, shape: str) -> None:
    """Refused before parsing, within a second of CPU and 50 MiB (it takes milliseconds
    and well under 1 MiB; expanded, the quadratic one is 100,000,000 characters)."""
    how = SENT[sent]
    content = how.encode(BOMBS[shape])
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(ParseError, match="refused: declares") as refused:
            parse_feed(content, how.headers(), URL)
        spent = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(refused.value)
    assert spent < 1.0, f"{spent:.2f} s of CPU to refuse it"
    assert peak < 50 << 20, f"{peak >> 20} MiB to refuse it"


@pytest.mark.parametrize("sent", sorted(BENIGN_ONLY))
def test_bomb_is_refused_in_other_encodings(sent: str) -> None:
    how = BENIGN_ONLY[sent]
    with pytest.raises(ParseError, match="refused: declares"):
        parse_feed(how.encode(_quadratic()), how.headers(), URL)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        # An entity declaration spelled in UTF-16 inside a UTF-8 comment: the document
        # reads as UTF-8 (where it is no declaration), but nothing may hide one.
        (
            b"<!-- " + '<!ENTITY a "x">'.encode("utf-16-le") + b' --><rss version="2.0"/>',
            "utf-16-le",
        ),
        # EBCDIC after white space (not recognised as EBCDIC), in both spellings of "!".
        (' <!DOCTYPE rss [<!ENTITY a "x">]><rss/>'.encode("cp037"), "cp037"),
        (' <!DOCTYPE rss [<!ENTITY a "x">]><rss/>'.encode("cp500"), "cp500"),
        (b"<rss>" + "<!ENTITY".encode("utf-32-be") + b"</rss>", "utf-32-be"),
    ],
    ids=["utf-16 in utf-8", "cp037 after a space", "cp500 after a space", "utf-32 in utf-8"],
)
def test_a_declaration_spelled_in_another_encoding_is_refused(content: bytes, where: str) -> None:
    with pytest.raises(ParseError, match=f"refused: an XML entity declaration in {where}"):
        refuse_entities(content, URL)


@pytest.mark.parametrize(
    "declaration",
    [
        '<!ENTITY co "Company">',
        '<!entity co "lower case">',
        '<!ENTITY % p "x">',
        '<!ENTITY co SYSTEM "http://evil.example/x">',
        '<!ENTITY co PUBLIC "-//x//y" "http://evil.example/x">',
        '<!ENTITY\n\tco\n"odd white space">',
        '<!ENTITY co "unterminated',
    ],
)
def test_any_entity_declaration_is_refused(declaration: str) -> None:
    """Whatever it declares, anywhere: in the DOCTYPE, after the root element, in CDATA."""
    body = '<rss version="2.0"><channel><item><guid>g</guid><title>x</title></item></channel></rss>'
    for document in (
        f"<!DOCTYPE rss [{declaration}]>{body}",
        body.replace("<channel>", f"<channel>{declaration}"),
        body.replace("x</title>", f"<![CDATA[{declaration}]]></title>"),
    ):
        with pytest.raises(ParseError, match="refused: declares"):
            parse_feed(document.encode("utf-16"), {}, URL)


def test_an_external_dtd_without_declarations_still_parses() -> None:
    """Old RSS 0.91 feeds name the Netscape DTD; nothing fetches it, and `&nbsp;`
    (which it would define) is read by feedparser's fallback parser."""
    text = (
        '<?xml version="1.0" encoding="{}"?>\n'
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        '<rss version="0.91"><channel><title>Café</title><link>http://n.example/</link>'
        "<item><title>Façade&nbsp;news</title><link>http://n.example/1</link></item>"
        "</channel></rss>"
    )
    for codec, bom in (("iso-8859-1", b""), ("utf-16-le", codecs.BOM_UTF16_LE)):
        feed = parse_feed(bom + text.format(codec).encode(codec), {}, URL)
        assert feed.title == "Café"
        assert [e.link for e in feed.entries] == ["http://n.example/1"]
        assert feed.entries[0].title.replace("\xa0", " ") == "Façade news"


# ---------------------------------------------------------------------------------------
# The same feed in every encoding.

SAMPLE = "Grüße àçé Zürich € “quoted” — 東京 北京 서울 Москва αβγ"


def _sample(codec: str) -> str:
    """The characters of SAMPLE that `codec` can spell, and some ASCII."""
    kept = "".join(c for c in SAMPLE if _encodable(c, codec))
    return " ".join(kept.split()) + " 42"


def _encodable(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _feed(text: str) -> str:
    items = "".join(
        f"<item><guid>g{i}</guid><title>{text} {i}</title><description>{text}</description>"
        f"<pubDate>Mon, 23 Nov 2026 1{i}:00:00 GMT</pubDate></item>"
        for i in range(3)
    )
    return f'<rss version="2.0"><channel><title>{text}</title>{items}</channel></rss>'


def _oracle(text: str) -> tuple[str, list[str]]:
    """feedparser's own reading of the UTF-8 document: the feed title and entry titles."""
    parsed = feedparser.parse(('<?xml version="1.0" encoding="utf-8"?>' + text).encode())
    return parsed.feed["title"], [e["title"] for e in parsed.entries]


@pytest.mark.parametrize("sent", sorted(SENT) + sorted(BENIGN_ONLY))
def test_the_same_feed_reads_the_same_in_every_encoding(sent: str) -> None:
    how = SENT.get(sent) or BENIGN_ONLY[sent]
    text = _feed(_sample(how.codec))
    feed = parse_feed(how.encode(text), how.headers(), URL)
    as_utf8 = parse_feed(text.encode(), {}, URL)
    assert (feed.title, [e.title for e in feed.entries]) == _oracle(text)
    assert (feed.title, feed.link, feed.entries) == (as_utf8.title, as_utf8.link, as_utf8.entries)
    assert any(word in feed.title for word in ("Grüße", "東京", "서울", "Москва"))
    if how.warns:
        assert feed.warning is not None and feed.warning.startswith(how.warns), feed.warning
    else:
        assert feed.warning is None


def test_a_later_encoding_on_the_first_line_does_not_reach_feedparser() -> None:
    """feedparser reads `encoding=` anywhere on the first line, the last one there winning:
    before, this UTF-8 document was read as UTF-16LE, and gave nothing."""
    text = (
        '<?xml version="1.0"?><rss version="2.0"><?x encoding="utf-16-le"?><channel>'
        "<title>t</title><item><guid>g</guid><title>Hello</title></item></channel></rss>"
    )
    assert len(text) % 2 == 0  # so that it is valid UTF-16LE
    assert [e.title for e in parse_feed(text.encode(), {}, URL).entries] == ["Hello"]
    assert utf8_document(text).split(b"\n")[0] == b'<?xml version="1.0" encoding="utf-8"?>'


def test_a_stray_line_before_the_declaration_is_dropped_with_it() -> None:
    text = '\n\n<?xml version="1.0" encoding="iso-8859-1"?>\n' + _feed("Café")
    feed = parse_feed(text.encode("iso-8859-1"), {}, URL)
    assert feed.title == "Café"
    assert feed.warning is None  # well-formed once the declaration is ours


# ---------------------------------------------------------------------------------------
# The order: byte-order mark, first bytes, declaration, charset, UTF-8, Windows-1252.

DOC = '<rss a="é"/>'


@pytest.mark.parametrize(
    ("content", "charset", "encoding"),
    [
        (codecs.BOM_UTF32_LE + DOC.encode("utf-32-le"), "", "utf-32-le"),  # not UTF-16LE
        (codecs.BOM_UTF16_LE + DOC.encode("utf-16-le"), "utf-8", "utf-16-le"),
        (codecs.BOM_UTF8 + DOC.encode(), "iso-8859-1", "utf-8"),
        (DOC.encode("utf-16-be"), "", "utf-16-be"),
        (f" \n{DOC}".encode("utf-16-le"), "", "utf-16-le"),
        (DOC.encode("utf-32-be"), "", "utf-32-be"),
        (DOC.encode("cp037"), "", "cp037"),
        (DOC.encode("cp1140"), "cp1140", "cp1140"),  # the charset names the code page
        (('<?xml version="1.0" encoding="cp273"?>' + DOC).encode("cp273"), "", "cp273"),
        # The declaration before the charset, both decoding: "Ã©" or "é".
        (
            ('<?xml version="1.0" encoding="windows-1252"?>' + "Ã©").encode("cp1252"),
            "utf-8",
            "cp1252",
        ),
        (DOC.replace("é", "ж").encode("koi8-r"), "KOI8-R", "koi8-r"),
        (DOC.encode(), "", "utf-8"),
        (DOC.encode("cp1252"), "", "windows-1252"),
        (('<?xml version="1.0" encoding="x-bogus"?>' + DOC).encode(), "", "utf-8"),
        (('<?xml version="1.0" encoding="utf-8"?>' + DOC).encode("latin-1"), "", "windows-1252"),
        (b"<r>\x81\x8d\x8f\x90\x9d</r>", "", "windows-1252"),  # bytes cp1252 leaves undefined
    ],
)
def test_the_order_in_which_the_encoding_is_decided(
    content: bytes, charset: str, encoding: str
) -> None:
    assert decode_document(content, charset, URL).encoding == encoding


def test_windows_1252_reads_every_byte() -> None:
    decoded = decode_document(bytes(range(0x80, 0x100)), "", URL)
    assert decoded.text[:3] == "€\x81‚" and len(decoded.text) == 128


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (codecs.BOM_UTF16_LE + b"<\x00r\x00/", r"not valid utf-16-le \(byte-order mark\)"),
        (
            "<r>\ud800</r>".encode("utf-16-be", "surrogatepass"),
            r"not valid utf-16-be \(first bytes\) \(byte 0xd8 at offset 6\)",
        ),
        ("<r>\udfff</r>".encode("utf-32-le", "surrogatepass"), r"not valid utf-32-le"),
    ],
    ids=["odd length", "lone surrogate", "utf-32 surrogate"],
)
def test_undecodable_is_one_line_naming_the_encoding(content: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match="undecodable: " + reason) as raised:
        parse_feed(content, {}, URL)
    assert "\n" not in str(raised.value)


def test_parsed_feed_is_unchanged_for_utf8() -> None:
    """The common case: a UTF-8 feed reads as before, with no warning."""
    feed = parse_feed(_feed("Grüße").encode(), {"content-type": "text/xml"}, URL)
    assert isinstance(feed, ParsedFeed) and feed.warning is None
    assert [e.title for e in feed.entries] == ["Grüße 0", "Grüße 1", "Grüße 2"]
