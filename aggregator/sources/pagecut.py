"""Page cut: an HTML file cut after twice what the caps can keep, before trafilatura.

trafilatura needs a page's whole tree to find its main text, and a tree, with
the copies trafilatura makes of it and its fallback extractors, costs far more
than the page: a 10 MB file of 86,000 short paragraphs took 16 s and 495 MB to
extract, of which the caps then kept 2,000 paragraphs (issue 13, item 5;
docs/benchmarks.md, "Large files"). Its cost grows with the elements and text
it is given, so it is given less.

What this stage decides: a linear scan of the bytes (one regular expression
over tags) counts the paragraphs that start (`<p>`, `<li>`, `<h1>`-`<h6>`,
`<blockquote>`, `<pre>`, `<dt>`, `<dd>`) and the characters of text outside
tags, comments, scripts and styles. At the first start tag of a block element
(those, and `<div>`, `<section>`, `<table>`... : never inside a paragraph)
by which the page has shown twice `max_paragraphs` paragraphs or twice
`max_text_chars` characters, the page is cut, and trafilatura reads the part
before the cut. Twice: the caps keep at most that much of what trafilatura
finds, and the factor leaves as much again for what precedes the article
(menus, sidebars: tens to a few hundred paragraphs on real pages). A page
that never gets there, every ordinary page, is passed on as the same bytes.

The trade-offs: trafilatura judges the main text and searches for the date on
the part it reads; a story that only starts after 2,000 paragraphs or 1 MiB of
other text would be lost (no real page is laid out so). The counts err
towards cutting later: a paragraph split by `<br>`s counts once, text in
`<div>`s counts only as text, an entity counts as its characters. The caps'
warning then says the page was not read to its end ("read the first 484,826
of 10,485,748 bytes"), since its other figures count the part read.
"""

from __future__ import annotations

import re

from aggregator.config import IngestConfig

_MARKUP = re.compile(
    rb"<!--.*?(?:-->|\Z)"  # a comment
    rb"|<(?P<raw>script|style|title|textarea|xmp|iframe|noembed|noframes|template)(?=[\s/>])"
    rb"|<(?P<name>[a-z][a-z0-9]*+)(?=[\s/>])[^>]*+>?"  # a start tag
    rb"|<[!?/][^>]*+>?",  # an end tag, <!DOCTYPE>, <?...>
    re.DOTALL | re.IGNORECASE,
)
_PARAGRAPHS = frozenset(b"p h1 h2 h3 h4 h5 h6 li blockquote pre dt dd".split())
_BLOCKS = _PARAGRAPHS | frozenset(
    b"div section article main header footer aside nav figure figcaption address "
    b"ul ol dl table tbody thead tfoot tr td th form fieldset center hr".split()
)
# Not counted as characters: HTML's white space and UTF-8 continuation bytes.
_NOT_CHARACTERS = b"\t\n\f\r " + bytes(range(0x80, 0xC0))


def cut_page(content: bytes, caps: IngestConfig) -> tuple[bytes, tuple[int, int, str] | None]:
    """`content`, or its part before the cut, and (bytes kept, bytes in all, "bytes")
    when it was cut (see the module docstring)."""
    most, limit = 2 * caps.max_paragraphs, 2 * caps.max_text_chars
    paragraphs = characters = 0
    position = 0
    while match := _MARKUP.search(content, position):
        characters += len(content[position : match.start()].translate(None, _NOT_CHARACTERS))
        position = match.end()
        raw, name = match.group("raw"), match.group("name")
        if raw is not None:
            end = re.compile(rb"</" + raw + rb"(?=[\s/>])", re.IGNORECASE).search(content, position)
            position = len(content) if end is None else end.start()
        elif name is not None and name.lower() in _BLOCKS:
            if paragraphs >= most or characters >= limit:
                cut = match.start()
                return content[:cut], (cut, len(content), "bytes")
            paragraphs += name.lower() in _PARAGRAPHS
    return content, None
