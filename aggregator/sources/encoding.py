"""Encoding: how a feed document's bytes are read, decided once, before any parser.

What it decides, and why:

* **One reading, ours.** A feed document is decoded here, once, and everything
  after reads that text: the entity check (`aggregator.sources.parse`) scans it, and
  feedparser is handed it as UTF-8, with an XML declaration and a Content-Type
  charset that both say utf-8 (`utf8_document`, `utf8_content_type`), so it has
  nothing left to guess. Left to choose, feedparser decodes by its own rules,
  and a check that read the bytes otherwise (as UTF-8, while feedparser read
  UTF-16 without a byte-order mark, UTF-32 or EBCDIC) did not see the entity
  declarations feedparser then expanded: 78 KB of UTF-16 became a
  100,000,000-character title (issue 12).
* **The order.** The first step that applies decides:

  1. A byte-order mark (UTF-32, UTF-8, UTF-16; `FF FE 00 00` is UTF-32LE).
  2. The first four bytes, as in the XML specification's appendix F: a
     document starts with `<` or white space, so NUL bytes there can only be
     UTF-32 (`00 00 00 xx`, `xx 00 00 00`) or UTF-16 (`00 xx 00 ..`,
     `xx 00 yy 00`), and `<?xm`, `<!` or `<` and a letter in EBCDIC
     (`4C 6F A7 94`...) is EBCDIC: cp037, or cp500 where `!` shows it
     (`4C 4F`). feedparser looks for `<?xm` only; a UTF-16 document without
     a declaration is as dangerous.
  3. The XML declaration's `encoding`.
  4. The HTTP Content-Type charset.
  5. UTF-8 (XML's default), then Windows-1252 as browsers read it (what
     undeclared 8-bit text usually is; feedparser falls back to it too).

  Steps 1 and 2 are facts about the bytes: a declaration or charset that
  contradicts them is ignored, with a warning (a document that says utf-8 but
  is UTF-16, or iso-8859-1 behind a UTF-16 byte-order mark, is read as
  UTF-16). Within a family they may refine: an EBCDIC document names its code
  page (cp500, cp1140...; cp037 otherwise). A UTF-8 byte-order mark only puts
  UTF-8 first: the bytes after it may still be 8-bit text. Steps 3 to 5 are
  candidates tried in turn, strictly; the first that decodes the whole
  document wins, and any but the first tried is a warning ("not valid utf-8;
  read as cp1252").

  The declaration before the charset, unlike RFC 7303, browsers and
  feedparser (which put the header first for XML media types): the
  declaration is written with the bytes, while a charset is often a server's
  default for every file (Apache's `AddDefaultCharset ISO-8859-1`), and a
  single-byte charset decodes anything, so a wrong one would never give way.
  A wrong multi-byte declaration does give way to the charset or UTF-8, since
  it fails to decode. The same goes for RFC 3023's "text/xml without a
  charset is US-ASCII", which RFC 7303 withdrew: ignored.
* **Which names count.** Outside steps 1 and 2 an encoding name must be one
  of Python's text codecs that reads the ASCII of markup as ASCII, since the
  declaration naming it was itself read as ASCII: UTF-16 named in a document
  of single bytes is a lie. UTF-7 and the escape codecs are not charsets and
  are ignored (UTF-7 spells `<` as `+ADw-`). `gb2312` and `gbk` are read as
  `gb18030`, their superset, as feedparser does.
* **Undecodable is an error where the bytes show the encoding.** Decoding is
  strict, never with U+FFFD. UTF-16 or UTF-32 that is not valid (a lone
  surrogate, an odd length) is a `ParseError` naming the encoding, why it was
  chosen and the first bad byte: any other reading would be a guess, and a
  guess is what let entity declarations through before. 8-bit text always
  reads, since Windows-1252 comes last and reads every byte (the five it
  leaves undefined as the C1 controls, as browsers do): feedparser reads
  such documents (its own last resort is ISO-8859-2), and refusing them
  would lose feeds that merely have a stray byte.
* **The belt.** `spelled_in` finds a word (`<!ENTITY`) spelled in UTF-8,
  UTF-16, UTF-32 or EBCDIC anywhere in the raw bytes, so that a document
  whose reading went wrong still cannot hide a declaration in another
  encoding. It is a few substring searches.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

from aggregator.errors import ParseError

UTF8_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
# What `spelled_in` searches: UTF-8 stands for every ASCII-based encoding, and
# cp037 and cp500 for the EBCDIC code pages (the others spell "<!ENTITY" as one
# of the two).
PLAUSIBLE = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037", "cp500")

_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16LE: it starts with FF FE too
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_EBCDIC_XML = "<?xml".encode("cp037")
_EBCDIC_AFTER_LT = frozenset(b"\x5a" + "abcdefghijklmnopqrstuvwxyz".encode("cp037"))  # ! a-z
_CP500_BANG = "!".encode("cp500")  # cp037's "|": "<|" starts nothing
_WIDE_ALIASES = {  # names Python does not know, and feedparser accepts
    "utf-16": ("ucs-2", "iso-10646-ucs-2", "csunicode"),
    "utf-32": ("ucs-4", "iso-10646-ucs-4", "csucs4"),
}
_NOT_CHARSETS = frozenset(("utf-7", "unicode-escape", "raw-unicode-escape", "punycode", "idna"))
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030"}
# What a declaration and markup are made of; cp864, for one, reads "%" otherwise.
_MARKUP = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<>?!&;#\"'=/-_.:[] \t\r\n"
_WINDOWS_1252 = "windows-1252"  # cp1252 as the WHATWG Encoding Standard has it: total
# Where an encoding is named: the XML declaration, read after optional white space
# (a stray line before it is common, and feedparser's own test is looser still).
_DECLARATION = re.compile(r"[ \t\r\n]*<\?xml(?=[ \t\r\n?])[^>]{0,1000}>")
_ENCODING = re.compile(r"""[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*["']([^"'<>?\s]{1,100})["']""")
_PREFIX_CHARS = 1100  # enough for a declaration: _DECLARATION stops at 1000


@dataclass(frozen=True, slots=True)
class Decoded:
    """A document as text: its byte-order mark removed, its XML declaration as written."""

    text: str
    encoding: str  # Python's name of the codec that read it
    warning: str | None  # one line: a declaration ignored, a fallback taken


def charset_of(content_type: str) -> str:
    """The charset parameter of a Content-Type header value ("" when none)."""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'")
    return ""


def utf8_content_type(content_type: str) -> str:
    """The same media type, with charset=utf-8 (and no other parameters)."""
    return content_type.split(";")[0].strip() + "; charset=utf-8"


def utf8_document(text: str) -> bytes:
    """The document as UTF-8 bytes that say so: any XML declaration replaced by ours.

    The line break after it matters: feedparser looks for `encoding=` anywhere
    on the first line (the last one there wins), and the rest of the first line
    is the document's.
    """
    declaration = _DECLARATION.match(text)
    rest = text[declaration.end() :] if declaration else text
    return (UTF8_DECLARATION + rest).encode("utf-8")


def spelled_in(content: bytes, word: str) -> list[str]:
    """Those of the PLAUSIBLE encodings in which `word`, in any case, is in `content`."""
    return [encoding for encoding in PLAUSIBLE if _spelling(word, encoding).search(content)]


@functools.lru_cache(maxsize=32)
def _spelling(word: str, encoding: str) -> re.Pattern[bytes]:
    """`word` in `encoding`, ignoring ASCII case: a literal start keeps the search fast."""
    return re.compile(
        b"".join(
            re.escape(c.encode(encoding))
            if c.upper() == c.lower()
            else b"(?:"
            + re.escape(c.upper().encode(encoding))
            + b"|"
            + re.escape(c.lower().encode(encoding))
            + b")"
            for c in word
        )
    )


def decode_document(content: bytes, http_charset: str, url: str) -> Decoded:
    """The document's text, read in the order the module docstring gives.

    ParseError (one line) when it cannot be read: it names what was tried and
    the first byte that failed.
    """
    skipped, encoding = next(((len(b), e) for b, e in _BOMS if content.startswith(b)), (0, ""))
    basis = "byte-order mark" if skipped else "first bytes"
    encoding = encoding or _sniff(content[:4]) or ""
    body = content[skipped:]
    if encoding and encoding != "utf-8":
        return _decode_fixed(body, skipped, encoding, basis, http_charset, url)
    notes: list[str] = []
    candidates = ["utf-8"] if encoding else []  # a UTF-8 byte-order mark
    declared = _declared(body[:_PREFIX_CHARS].decode("latin-1"))
    for claim, name in (("declared encoding", declared), ("HTTP charset", http_charset)):
        if name:
            usable = _usable(name)
            if usable is None or not _reads_ascii(usable):
                notes.append(f"{claim} {name!r} ignored (unknown, or not ASCII-based)")
            else:
                candidates.append(usable)
    tried: list[str] = []
    for candidate in dict.fromkeys([*candidates, "utf-8"]):
        try:
            text = body.decode(candidate)
        except UnicodeError:
            tried.append(candidate)
            continue
        if tried:
            notes.append(f"not valid {tried[0]}; read as {candidate}")
        return Decoded(_without_bom(text), candidate, "; ".join(notes) or None)
    notes.append(f"not valid {tried[0]}; read as {_WINDOWS_1252}")
    text = body.decode("cp1252", errors=_C1)
    return Decoded(_without_bom(text), _WINDOWS_1252, "; ".join(notes))


def _c1_control(error: UnicodeError) -> tuple[str, int]:
    """The five bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) as the C1
    controls of the same number, as browsers read them: windows-1252 reads any byte."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return chr(error.object[error.start]), error.start + 1


_C1 = "aggregator.sources.encoding.c1"
codecs.register_error(_C1, _c1_control)


def _sniff(head: bytes) -> str | None:
    """The encoding the first four bytes of an XML document show, without a byte-order mark."""
    if len(head) < 4:
        return None
    b0, b1, b2, b3 = head
    if b0 == b1 == b2 == 0 and b3:
        return "utf-32-be"
    if b0 and b1 == b2 == b3 == 0:
        return "utf-32-le"
    if b0 == 0 and b1 and b2 == 0:
        return "utf-16-be"
    if b0 and b1 == 0 and b2 and b3 == 0:
        return "utf-16-le"
    if head == _EBCDIC_XML[:4] or (b0 == _EBCDIC_XML[0] and b1 in _EBCDIC_AFTER_LT):
        return "cp037"
    if b0 == _EBCDIC_XML[0] and head[1:2] == _CP500_BANG:
        return "cp500"
    return None


def _decode_fixed(
    body: bytes, skipped: int, sniffed: str, basis: str, http_charset: str, url: str
) -> Decoded:
    """A document whose family the bytes show (UTF-16, UTF-32, EBCDIC): strictly in it.

    A declaration or charset in the same family may choose the member (an
    EBCDIC code page); one outside it is ignored with a warning.
    """
    unit = 4 if sniffed.startswith("utf-32") else 2 if sniffed.startswith("utf-16") else 1
    prefix = body[: _PREFIX_CHARS * unit].decode(sniffed, errors="replace")
    encoding, notes = sniffed, []
    for claim, name in (("declared encoding", _declared(prefix)), ("HTTP charset", http_charset)):
        if not name:
            continue
        member = _member(name, sniffed)
        if member is None:
            notes.append(f"{claim} {name!r} ignored: read as {sniffed} ({basis})")
        elif encoding == sniffed:
            encoding = member
    try:
        text = body.decode(encoding)
    except UnicodeError as e:
        where = _where(e, skipped)
        raise ParseError(url, f"undecodable: not valid {encoding} ({basis}){where}") from e
    return Decoded(_without_bom(text), encoding, "; ".join(notes) or None)


def _member(name: str, sniffed: str) -> str | None:
    """The codec `name` means if it belongs to the family of `sniffed`, else None."""
    family = sniffed[:6]  # "utf-16", "utf-32", or the EBCDIC "cp037" or "cp500"
    if family in _WIDE_ALIASES:
        if name.strip().lower() in _WIDE_ALIASES[family]:
            return sniffed
        usable = _usable(name)
        return sniffed if usable is not None and usable.startswith(family) else None
    usable = _usable(name)
    if usable is None or usable.startswith("utf-"):
        return None
    try:  # another EBCDIC code page spells "<?xml" the same way
        return usable if "<?xml".encode(usable) == _EBCDIC_XML else None
    except UnicodeError:
        return None


def _declared(prefix: str) -> str:
    """The encoding named by the XML declaration at the start of `prefix` ("" when none)."""
    declaration = _DECLARATION.match(prefix)
    found = _ENCODING.search(declaration.group()) if declaration else None
    return found.group(1) if found else ""


@functools.lru_cache(maxsize=256)
def _usable(name: str) -> str | None:
    """Python's name for the text codec called `name`, or None (unknown, or not a charset)."""
    lowered = name.strip().lower()
    try:
        info = codecs.lookup(_SUPERSETS.get(lowered, lowered))
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


@functools.lru_cache(maxsize=256)
def _reads_ascii(codec: str) -> bool:
    """Whether `codec` reads the ASCII of markup as the same characters."""
    try:
        return _MARKUP.decode(codec) == _MARKUP.decode("ascii")
    except UnicodeError:
        return False


def _without_bom(text: str) -> str:
    """The text without a leading U+FEFF (a second byte-order mark, or one a codec kept)."""
    return text[1:] if text.startswith("\ufeff") else text


def _where(error: UnicodeError | None, skipped: int) -> str:
    """Where decoding failed: the byte and its offset in the document (byte-order mark included)."""
    if not isinstance(error, UnicodeDecodeError) or not 0 <= error.start < len(error.object):
        return ""
    return f" (byte 0x{error.object[error.start]:02x} at offset {skipped + error.start})"
