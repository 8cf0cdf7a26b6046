"""HTML limits: a linear scan of raw HTML bytes before lxml sees them.

libxml2's HTML parser (under lxml, and so under trafilatura) is fast on
ordinary pages but has shapes it handles badly, and one hostile entry or page
must not cost minutes of CPU or lose text without a word:

* **Attributes per element.** Each new attribute of an element is compared
  with all earlier ones: 100,000 attributes on one `<p>` cost 15 s in
  `fragment_paragraphs` and 80,000 on a page 37 s in trafilatura (quadratic;
  the byte caps allow millions). Elements with more than `MAX_ATTRIBUTES`
  keep their first `MAX_ATTRIBUTES`; the rest are cut out of the tag. No real
  page comes near (a busy element has 20 or 30); attributes carry no text.
  And a document keeps at most `MAX_TOTAL_ATTRIBUTES` (200,000) in all, the
  elements after that none: each costs libxml2 about 250 bytes and
  trafilatura copies the tree, so 5 MiB of attributes (2 million) took a page
  worker to 1 GB. A long article page has 10,000-80,000.
* **Tags.** The number of start, end and other tags is capped at `MAX_TAGS`
  (a long article page has 5,000-50,000); the document is cut before the one
  past the cap. This bounds the scan's own per-tag work, and lxml's. Not
  always trafilatura's: it is superlinear in some shapes (50,000 `<span>`s
  inside 20 nested `<div>`s take 16 s, 25,000 take 5.5 s), and that is what
  the workers' deadline is for (a page past it keeps the entry's summary).
* **Size.** Past `MAX_BYTES` the document is cut (the fetch and file caps
  usually stop it first: 5 MiB for a page, 15 MiB for a feed, 10 MiB for a
  file).
* **One text, comment or tag** longer than 10,000,000 bytes makes libxml2
  give up on the whole document (nothing at all is read). A stretch of text
  (or raw text, or a comment) over `MAX_RUN` (4 MiB: half of the limit, as
  Latin-1 text doubles in UTF-8) is cut to `MAX_RUN` bytes, a longer tag
  loses its attributes (an inline image of 11 MB).
* **Nesting depth.** libxml2 stops building the tree at depth 256 and drops
  everything after that point, silently for us (a page of 100,000 nested
  `<div>`s lost two of its three paragraphs). The scan measures an upper
  bound of the depth libxml2 will reach (`Limited.depth`); when libxml2 is
  found to stop (htmltext.py asks it), the document is scanned again with
  `flatten=True`: start tags deeper than `MAX_DEPTH` are left out with their
  end tags (a block element's becomes one `<br>` between two runs of text, so
  its text still starts a new line). The text is kept, the structure below
  that depth flattened.

Whatever is cut is named in one warning line for the caller to record (the
feed's `last_warning`, the log for a file). A document within every limit is
passed on as the very same bytes, so ordinary pages read exactly as before.

**How the scan reads tags.** One regular expression finds each tag as the
HTML tokenizer does (libxml2 2.14 follows HTML5 here): a start tag's
attributes, with quoted values that may hold `>`; comments (`<!-->`,
`--!>`); `<!...>`, `<?...>` and `</` not followed by a letter up to the first
`>`; the text of `script`, `style`, `title`, `textarea`, `xmp`, `iframe`,
`noembed` and `noframes` up to its end tag, and of `plaintext` to the end.
Possessive quantifiers keep every match linear and every `<` is looked at
once, so the scan is linear in the input (about 2 microseconds a tag).

**The depth bound.** The scan keeps a stack of open elements that holds
every element libxml2 has open (in the same order), and perhaps more: it
pushes every start tag that nests (not void elements, `<x/>` nor raw text;
`html` and `body` too: libxml2 may open another after `</body>`), and
libxml2 may add an `html`, a `body` and a `<p>` around text that the source
did not have: 3 levels that the bound adds; a start tag pops the element on top if
it has the same name and is one libxml2 closes so (`p`, `li`, `a`, `option`,
`tr`, `td`, `th`, `form`, `tbody`, `colgroup`); an end tag pops only the
element on top, and only if it has the end tag's name. Whatever libxml2
closes besides (a block start closing a `<p>`, an end tag closing the
elements above its match) stays open in the scan's stack: the bound errs
deep, never shallow. tests/test_html_limits.py checks that on random tag
soup against libxml2 itself. So a scan that flattens below `MAX_DEPTH` (200)
keeps libxml2 under 203 levels, well within its 256.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

MAX_BYTES = 16 * 1024 * 1024
MAX_TAGS = 250_000
MAX_ATTRIBUTES = 100
MAX_TOTAL_ATTRIBUTES = 200_000
MAX_DEPTH = 200
MAX_RUN = 4 * 1024 * 1024  # one text, comment or tag: libxml2 stops at 10 MB (UTF-8: 2x Latin-1)
LIBXML2_MAX_DEPTH = 256  # where libxml2 stops building the tree (without XML_PARSE_HUGE)
IMPLIED_LEVELS = 3  # html, body and a <p> libxml2 may add around text: not in the scan's stack

_S = rb"\t\n\f\r "  # HTML's white space (not \v: libxml2 reads that as part of a name)
_VALUE = rb"(?:\"[^\"]*+\"?|'[^']*+'?|[^" + _S + rb">]*+)"
_ATTRIBUTE_PATTERN = (
    rb"[^" + _S + rb"/>][^" + _S + rb"/>=]*+(?:[" + _S + rb"]*+=[" + _S + rb"]*+" + _VALUE + rb")?"
)
_TAG = re.compile(
    rb"<!--(?:-?>|.*?(?:--!?>|\Z))"  # a comment
    rb"|<(?:[!?]|/(?![A-Za-z]))[^>]*+(?:>|\Z)"  # <!DOCTYPE>, <?pi?>, a bogus comment
    rb"|</([A-Za-z][^" + _S + rb"/>]*+)[^>]*+(?:>|\Z)"  # 1: an end tag's name
    rb"|<([A-Za-z][^" + _S + rb"/>]*+)"  # 2: a start tag's name
    rb"((?:[" + _S + rb"/]*+" + _ATTRIBUTE_PATTERN + rb")*+)"  # 3: its attributes
    rb"([" + _S + rb"/]*+)(?:>|\Z)",  # 4: what ends it (`/` there makes `<x/>` empty)
    re.DOTALL,
)
_ATTRIBUTE = re.compile(_ATTRIBUTE_PATTERN)
_VOID = frozenset(b"area base basefont br col frame hr img input isindex link meta param".split())
_RAW_TEXT = frozenset(b"script style title textarea xmp iframe noembed noframes".split())
_CLOSES_ITSELF = frozenset(b"p li a option tr td th form tbody colgroup".split())
_BLOCKS = frozenset(
    b"p div li blockquote h1 h2 h3 h4 h5 h6 pre td th dd dt figcaption section article "
    b"ul ol dl table tr header footer main aside nav address center form fieldset".split()
)


@dataclass(frozen=True, slots=True)
class Limited:
    """A document made safe for lxml: `content` (the input itself when nothing was
    cut), `warning` (one line naming what was cut, or None) and `depth` (an upper
    bound of the nesting libxml2 reaches in the input, `IMPLIED_LEVELS` not counted;
    before any flattening)."""

    content: bytes
    warning: str | None
    depth: int


def limit_html(content: bytes, *, flatten: bool = False) -> Limited:
    """`content` within the limits, flattened below `MAX_DEPTH` if asked to; see the
    module docstring."""
    problems: list[str] = []
    if len(content) > MAX_BYTES:
        problems.append(f"{len(content):,} bytes: cut at {MAX_BYTES:,}")
        content = content[:MAX_BYTES]
    scan = _Scan(content, flatten)
    scan.run()
    if scan.cut_at is not None:
        problems.append(f"more than {MAX_TAGS:,} tags: cut before byte {scan.cut_at:,}")
    if scan.trimmed:
        problems.append(
            f"{scan.trimmed:,} element(s) with more than {MAX_ATTRIBUTES} attributes "
            f"(up to {scan.most_attributes:,}): kept the first {MAX_ATTRIBUTES}"
        )
    if scan.over_total:
        problems.append(
            f"more than {MAX_TOTAL_ATTRIBUTES:,} attributes in all: {scan.over_total:,} "
            "element(s) after those kept none"
        )
    if scan.long_runs:
        problems.append(
            f"{scan.long_runs:,} text(s), comment(s) or tag(s) over {MAX_RUN:,} bytes "
            f"(libxml2 reads nothing of a document with one past 10 MB): cut to "
            f"{MAX_RUN:,} bytes (a tag: to its name)"
        )
    if scan.flattened:
        problems.append(
            f"nested deeper than libxml2's {LIBXML2_MAX_DEPTH} levels: the tags of "
            f"{scan.flattened:,} element(s) below depth {MAX_DEPTH} left out, their text kept"
        )
    if scan.pieces or scan.cut_at is not None:
        scan.pieces.append(content[scan.copied : scan.cut_at])
        content = b"".join(scan.pieces)
    return Limited(content, _joined(problems), scan.depth)


def _joined(problems: list[str]) -> str | None:
    return "; ".join(problems) or None


class _Scan:
    """One pass over the tags of a document; `pieces` collects a rewritten copy, from
    the first change on (`copied`: how far the input has been copied into it)."""

    def __init__(self, content: bytes, flatten: bool) -> None:
        self.content = content
        self.flatten = flatten
        self.lowered: bytes | None = None  # made when a raw-text element needs its end
        self.pieces: list[bytes] = []
        self.copied = 0
        self.stack: list[bytes] = []
        self.left_out: Counter[bytes] = Counter()  # flattened start tags not yet ended
        self.left_open = 0  # their total: how much deeper the document nests
        self.text_seen = True  # text since the last line break put in for them
        self.depth = 0
        self.flattened = 0
        self.trimmed = 0
        self.most_attributes = 0
        self.attributes_left = MAX_TOTAL_ATTRIBUTES
        self.over_total = 0  # elements that lost attributes to MAX_TOTAL_ATTRIBUTES
        self.long_runs = 0
        self.cut_at: int | None = None

    def run(self) -> None:
        content, search = self.content, _TAG.search
        tags = 0
        position = 0
        text_from = 0  # where the text (or raw text) before the next tag starts
        while match := search(content, position):
            start = match.start()
            if start - text_from > MAX_RUN:
                self._cut_run(text_from, start)
            if self.left_open and not self.text_seen:  # each stretch of text looked at once
                self.text_seen = bool(content[position:start].strip())
            position = text_from = match.end()
            tags += 1
            if tags > MAX_TAGS:
                self.cut_at = start
                return
            end, name = match.group(1), match.group(2)
            if position - start > MAX_RUN:  # libxml2 would give up inside it
                self.long_runs += 1
                kept = b"" if name is None and end is None else b"<" + (name or b"/" + end) + b">"
                self._replace(match, kept)
            if end is not None:
                self._end_tag(end.lower(), match)
            elif name is not None:
                position = self._start_tag(name.lower(), match)
        if len(content) - text_from > MAX_RUN:
            self._cut_run(text_from, len(content))

    def _cut_run(self, start: int, end: int) -> None:
        """Cut a stretch of text between two tags to MAX_RUN bytes."""
        self.long_runs += 1
        self.pieces.append(self.content[self.copied : start + MAX_RUN])
        self.copied = end

    def _replace(self, match: re.Match[bytes], replacement: bytes) -> None:
        self.pieces.append(self.content[self.copied : match.start()])
        self.pieces.append(replacement)
        self.copied = match.end()

    def _start_tag(self, name: bytes, match: re.Match[bytes]) -> int:
        """Take one start tag into the model; where the scan goes on."""
        empty = match.group(4).endswith(b"/")  # `<x/>`: libxml2 ends it there, raw text too
        raw = not empty and (name in _RAW_TEXT or name == b"plaintext")
        nests = not (empty or raw or name in _VOID)
        stack = self.stack
        if nests and stack and stack[-1] == name and name in _CLOSES_ITSELF:
            stack.pop()
        if nests and self.flatten and len(stack) >= MAX_DEPTH:
            self.left_out[name] += 1
            self.left_open += 1
            self.flattened += 1
            self.depth = max(self.depth, len(stack) + self.left_open)
            self._leave_out(name, match)
            return match.end()
        if match.end(3) > match.start(3) and self.copied <= match.start():
            self._count_attributes(match)  # (unless the tag was replaced whole already)
        if nests:
            stack.append(name)
            self.depth = max(self.depth, len(stack))
        elif raw and name == b"plaintext":
            return len(self.content)
        elif raw:  # its text up to `</name` is not markup
            if self.lowered is None:
                self.lowered = self.content.lower()
            closing = self.lowered.find(b"</" + name, match.end())
            return len(self.content) if closing == -1 else closing
        return match.end()

    def _end_tag(self, name: bytes, match: re.Match[bytes]) -> None:
        if self.left_out[name]:  # the end of a flattened element goes with it
            self.left_out[name] -= 1
            self.left_open -= 1
            self._leave_out(name, match)
        elif self.stack and self.stack[-1] == name:
            self.stack.pop()

    def _leave_out(self, name: bytes, match: re.Match[bytes]) -> None:
        """Drop a flattened tag; a block element's becomes a line break, so its text
        stays a paragraph of its own, but only one between two runs of text (100,000
        nested `<div>`s would otherwise be 100,000 `<br>`s, which trafilatura takes
        tens of seconds over)."""
        if name in _BLOCKS and self.text_seen:
            self._replace(match, b"<br>")
            self.text_seen = False
        else:
            self._replace(match, b"")

    def _count_attributes(self, match: re.Match[bytes]) -> None:
        """Keep at most MAX_ATTRIBUTES attributes of a start tag, and none past the
        document's MAX_TOTAL_ATTRIBUTES."""
        start, end = match.start(3), match.end(3)
        count = len(_ATTRIBUTE.findall(self.content, start, end))
        keep = min(count, MAX_ATTRIBUTES, self.attributes_left)
        self.attributes_left -= keep
        if keep == count:
            return
        if count > MAX_ATTRIBUTES:
            self.trimmed += 1
            self.most_attributes = max(self.most_attributes, count)
        if keep < min(count, MAX_ATTRIBUTES):
            self.over_total += 1
        cut = start
        if keep:
            for kept, attribute in enumerate(_ATTRIBUTE.finditer(self.content, start, end), 1):
                if kept == keep:
                    cut = attribute.end()
                    break
        head = self.content[match.start() : cut]
        self._replace(match, head + self.content[match.start(4) : match.end()])
