"""Strategies shared by every input kind: prose, dates, odd text, bytes and their
mutations, encodings; and the XML pieces (element text, document type declarations)
that feeds, HTML pages and OPML all use."""

from __future__ import annotations

import functools
import random
from xml.sax.saxutils import escape

from hypothesis import strategies as st

WORDS = (
    "the minister said on tuesday that talks would resume after a week of strikes in the "
    "capital while officials in brussels declined to comment on reports of a new deal"
).split()


def _prose(seed: int, words: int) -> str:
    pick = random.Random(seed).choice
    return " ".join(pick(WORDS) for _ in range(words))


def _sentences(seed: int, count: int) -> str:
    return " ".join(_prose(seed + i, 4 + (seed + i) % 20).capitalize() + "." for i in range(count))


# Built from a seed rather than word by word: the words are not what is being fuzzed,
# and drawing them one at a time made generation cost far more than the calls tested.
prose = st.builds(_prose, st.integers(0, 2**16), st.integers(1, 40))
sentences = st.builds(_sentences, st.integers(0, 2**16), st.integers(1, 4))
DATES = [
    "Mon, 23 Nov 2026 10:00:00 GMT",
    "Mon, 23 Nov 2026 10:00:00 +2400",
    "Sun, 31 Dec 9999 23:59:59 -1200",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "Sat, 01 Jan 0999 00:00:00 GMT",
    "31 Feb 2026 25:61:61",
    "2026-11-23T10:00:00Z",
    "2026-11-23T10:00:00.123456+05:30",
    "2026-11-23",
    "2026-W48-1",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0999-12-31T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2038-01-19T03:14:08Z",
    "20261123T100000Z",
    "yesterday",
    "-1",
    "99999999999999999999",
]
ODD_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "60",
    "\u00b2",
    "\u0661\u0662",
    "\u00b9\u2070",
    "9" * 5000,
    "1e999",
    "NaN",
    "&amp;",
    "&lt;p&gt;escaped &lt;b&gt;markup&lt;/b&gt;&lt;/p&gt;",
    "&nbsp;&copy;&hellip;",
    "&#0;",
    "&#xD800;",
    "&#x10FFFF;",
    "&#99999999;",
    "&bogus;",
    "&a;",
    "&",
    "<",
    "]]>",
    "<![CDATA[<p>in cdata</p>]]>",
    "<p>one</p><p>two</p>",
    "<script>alert(1)</script><style>p{}</style>",
    "<br/><br>",
    "<!-- comment -->",
    "<div><div><div><p>deep</p></div></div></div>",
    "http://[::1",
    "javascript:alert(1)",
    "//cdn.example/x",
    "/relative/path?utm_source=x#frag",
    "https://example.org/a?utm_source=x&id=1#f",
    "\x00",
    "\x0b\x0c",
    "\ufeff",
    "\u2028\u2029\x85",
    "\r\n\r",
    "\t",
    "\U0001f600",
    "\u202e",
    *DATES,
]
odd_text = st.sampled_from(ODD_TEXT)
fuzz_text = st.one_of(odd_text, st.text(max_size=40), prose, sentences)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Up to three of: truncation, spliced random bytes, a deleted or duplicated slice."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["truncate", "splice", "delete", "duplicate", "flip"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "splice":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + draw(st.integers(1, 256))] + data[at:]
        elif data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


def maybe_mutated(data: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(data), mutated(data))


ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "latin-1",
    "cp1252",
    "koi8-r",
    "shift_jis",
    "gb18030",
    "iso-2022-jp",
    "ascii",
    "cp037",
]
DECLARED = [*ENCODINGS, "x-bogus", "", "UTF8", "unicode-1-1-utf-7", "ISO-8859-99"]


def encode(text: str, encoding: str) -> bytes:
    # Surrogates become invalid UTF-8 bytes; elsewhere what the codec cannot encode
    # becomes a character reference or "?".
    if encoding in ("utf-8", "utf-8-sig"):
        return text.encode(encoding, "surrogatepass")
    try:
        return text.encode(encoding, "xmlcharrefreplace")
    except UnicodeEncodeError:
        return text.encode(encoding, "replace")


# ---------------------------------------------------------------------------------------
# XML pieces: element text, and document type declarations (entities included).


@functools.cache
@st.composite
def xml_text(draw: st.DrawFn) -> str:
    """Element text: escaped, raw (possibly breaking the document), or in CDATA."""
    text = draw(fuzz_text)
    how = draw(st.sampled_from(["escaped", "escaped", "raw", "cdata", "entity"]))
    if how == "escaped":
        return escape(text)
    if how == "cdata":
        return f"<![CDATA[{text}]]>"
    if how == "entity":
        return escape(text) + draw(st.sampled_from(["&a;", "&b;", "&undefined;", "&#x41;"]))
    return text


DOCTYPES = [
    "",
    "",
    "",
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    '"http://my.netscape.com/publish/formats/rss-0.91.dtd">',
    '<!DOCTYPE rss [<!ENTITY a "entity text">]>',
    '<!DOCTYPE rss [<!ENTITY a "one"><!ENTITY b "two &amp; three">]>',
    "<!DOCTYPE rss [<!ENTITY a 'single'>]>",
    '<!DOCTYPE rss [<!ENTITY a "x"><!ENTITY b "&a;&a;">]>',
    '<!DOCTYPE rss [<!ENTITY % p "x"> %p;]>',
    '<!DOCTYPE rss [<!ENTITY a SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE rss [<!ENTITY a PUBLIC "-//x//y" "http://evil.example/x">]>',
    '<!DOCTYPE rss [<!ENTITY a "small"> ]>',
    '<!DOCTYPE rss [<!ENTITY\ta\n"tabs and newlines">]>',
    '<!DOCTYPE rss [<!ENTITY a "]>">]>',
    '<!DOCTYPE rss [<!ENTITY a "unterminated',
    '<!DOCTYPE rss [<!ELEMENT rss ANY><!ATTLIST rss version CDATA "2.0">]>',
    "<!DOCTYPE html>",
    "<!doctype rss [<!entity a 'lower case'>]>",
    '<!DOCTYPE rss [<!ENTITY a "x"><!ENTITY a "redefined">]>',
]
