"""Fuzz how feed bytes are read (issue 12, item 1): encodings x documents through
`parse_feed`.

Documents are RSS feeds with fuzzed titles, sometimes a DOCTYPE, sometimes an entity
declaration (in the DOCTYPE, after the root element, in CDATA or in a comment), sent
in one of fifteen encodings with or without a byte-order mark, with an XML declaration
and an HTTP charset that are honest, absent, unusable or lying. Two properties:

* a document whose text contains `<!ENTITY` (any case) is refused, however it is sent;
* a document without one, sent so that it can be read (see `readable`), gives the
  feed title and entry titles feedparser gives for its UTF-8 version, and the entries
  `parse_feed` gives for that version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import feedparser
from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.sources.parse import ParsedFeed, parse_feed
from tests.test_encodings import BOMS, URL

from .harness import call, fuzz

WIDE = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
EBCDIC = ("cp037", "cp500")
ASCII_BASED = (
    "utf-8",
    "gb18030",
    "shift_jis",
    "big5",
    "euc-kr",
    "koi8-r",
    "iso-8859-1",
    "cp1252",
    "iso-2022-jp",
)
CODECS = (*WIDE, *EBCDIC, *ASCII_BASED)
# Names a declaration or charset may give besides the honest one: ones a document of
# single bytes cannot be in (ignored there), and usable lies (which only the bytes of
# UTF-16/32 and EBCDIC override).
UNUSABLE = ("utf-16", "utf-16le", "cp037", "x-bogus", "utf-7", "")
LIES = ("utf-8", "iso-8859-1", "koi8-r", "shift_jis")
ENTITY_DECLARATIONS = (
    '<!ENTITY a "x">',
    '<!ENTITY a "' + "y" * 2000 + '">',
    '<!ENTITY b "&a;&a;">',
    "<!ENTITY a 'single'>",
    '<!entity a "lower case">',
    '<!EnTiTy a "mixed case">',
    '<!ENTITY % p "x">',
    '<!ENTITY a SYSTEM "file:///etc/passwd">',
    '<!ENTITY\ta\n"white space">',
    '<!ENTITY a "unterminated',
)
BENIGN_DOCTYPES = (
    "",
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n',
    '<!DOCTYPE rss [<!ELEMENT rss ANY><!ATTLIST rss version CDATA "2.0">]>\n',
)
ENTITY = re.compile("<!ENTITY", re.IGNORECASE | re.ASCII)
# Title text: no markup, no control characters (which XML does not allow), no surrogates.
TITLE_CHARACTERS = st.characters(
    blacklist_categories=("Cc", "Cs", "Co", "Cn"), blacklist_characters="<>&\ufffe\uffff"
)


@dataclass(frozen=True, slots=True)
class Case:
    codec: str
    bom: bool
    lead: str  # white space before everything
    declared: str | None  # None: no XML declaration
    charset: str  # "" for no charset parameter
    text: str  # the document after the declaration, as text

    @property
    def content(self) -> bytes:
        declaration = (
            "" if self.declared is None else f'<?xml version="1.0" encoding="{self.declared}"?>'
        )
        bom = BOMS[self.codec] if self.bom else b""
        return bom + (self.lead + declaration + self.text).encode(self.codec)

    @property
    def headers(self) -> dict[str, str]:
        return (
            {"content-type": f"application/rss+xml; charset={self.charset}"} if self.charset else {}
        )


def _keeps(char: str, codec: str) -> bool:
    """Whether `codec` spells `char` and reads it back as the same character."""
    try:
        return char.encode(codec).decode(codec) == char
    except UnicodeError:
        return False


@st.composite
def cases(draw: st.DrawFn) -> Case:
    codec = draw(st.sampled_from(CODECS))
    titles = [
        "".join(c for c in draw(st.text(TITLE_CHARACTERS, max_size=12)) if _keeps(c, codec))
        + f" {i}"
        for i in range(draw(st.integers(1, 3)))
    ]
    declaration = draw(st.sampled_from([*ENTITY_DECLARATIONS, None, None, None]))
    place = draw(st.sampled_from(["doctype", "channel", "cdata", "comment"]))
    doctype = draw(st.sampled_from(BENIGN_DOCTYPES))
    if declaration is not None and place == "doctype":
        doctype = f"<!DOCTYPE rss [\n{declaration}\n]>\n"
    inside = f"<!-- {declaration} -->" if place == "comment" else declaration
    items = "".join(
        f"<item><guid>g{i}</guid><title>{title}</title></item>" for i, title in enumerate(titles)
    )
    channel = f"<title>{titles[0]}</title>{items}"
    if declaration is not None and place in ("channel", "comment"):
        channel = inside + channel
    if declaration is not None and place == "cdata":
        channel = channel.replace("</title>", f"<![CDATA[{declaration}]]></title>", 1)
    text = f'{doctype}<rss version="2.0"><channel>{channel}</channel></rss>'
    names = st.sampled_from([codec, codec, *UNUSABLE, *LIES])  # repeated: honest more often
    return Case(
        codec=codec,
        bom=codec in BOMS and draw(st.booleans()),
        lead=draw(st.sampled_from(["", "", "\n "])),
        declared=draw(st.one_of(st.none(), names)),
        charset=draw(names),
        text=text,
    )


def readable(case: Case) -> bool:
    """Whether the case says what it is, in a way the reading order must honour.

    A byte-order mark, or UTF-16/32 bytes, always; EBCDIC when it starts with "<" and
    the first code page it names is the truth, or, naming none, its "<!" shows cp500 or
    anything else cp037; an ASCII-based encoding when the first name it gives that
    Python knows is the truth, or when nothing usable is said and its text is ASCII or
    reads as Windows-1252 (and is not also UTF-8).
    """
    if case.bom or case.codec in WIDE:
        return True
    if case.codec in EBCDIC:
        pages = [n for n in (case.declared, case.charset) if n in EBCDIC]
        start = "<?" if case.declared is not None else case.text[:2]
        shown = "cp500" if start == "<!" and case.codec == "cp500" else "cp037"
        return not case.lead and (pages[0] if pages else shown) == case.codec
    said = [n for n in (case.declared, case.charset) if n and n not in UNUSABLE]
    if said:
        return said[0] == case.codec
    text = case.lead + case.text
    if text.isascii() or case.codec == "utf-8":
        return True
    if case.codec in ("cp1252", "iso-8859-1"):
        try:
            text.encode(case.codec).decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def _normal(text: str | None) -> str:
    return " ".join((text or "").split())


@fuzz(300)
@given(cases())
@example(Case("utf-16-le", False, "", "utf-8", "", '<!DOCTYPE r [\n<!ENTITY a "x">\n]>\n<r/>'))
@example(Case("utf-32-be", True, "", "iso-8859-1", "utf-8", '<!DOCTYPE r [<!ENTITY a "x">]><r/>'))
@example(Case("cp500", False, "\n ", None, "", '<!DOCTYPE r [<!ENTITY a "x">]><r/>'))
@example(Case("cp037", False, "", "utf-8", "", '<!DOCTYPE r [<!ENTITY a "x">]><r/>'))
def test_encodings(case: Case) -> None:
    """Refused when it declares an entity, read as its UTF-8 version when it does not."""
    feed = call(parse_feed, case.content, case.headers, URL, allowed=(ParseError,))
    if ENTITY.search(case.text):
        assert feed is None, f"not refused: {case!r}"
        try:
            parse_feed(case.content, case.headers, URL)
        except ParseError as e:
            assert e.reason.startswith("refused: "), e.reason
        return
    if not readable(case):
        return
    utf8 = case.text.encode()
    oracle = feedparser.parse(utf8)
    assert feed is not None, f"{case!r} was not read"
    assert isinstance(feed, ParsedFeed)
    assert _normal(feed.title) == _normal(oracle.feed.get("title"))
    assert [_normal(e.title) for e in feed.entries] == [
        _normal(e.get("title")) for e in oracle.entries
    ]
    as_utf8 = parse_feed(utf8, {}, URL)
    assert (feed.title, feed.entries) == (as_utf8.title, as_utf8.entries)
