"""Documents that `extract` reads: HTML pages and fragments, text and Markdown files
(front matter included), and `raw_document` to wrap them as the folder source would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

from aggregator.model import RawDocument

from .strategies import (
    DATES,
    DECLARED,
    ENCODINGS,
    encode,
    fuzz_text,
    maybe_mutated,
    sentences,
    xml_text,
)

# ---------------------------------------------------------------------------------------
# HTML pages and fragments.

HTML_TAGS = [
    "div",
    "p",
    "span",
    "article",
    "section",
    "main",
    "nav",
    "header",
    "footer",
    "aside",
    "ul",
    "li",
    "table",
    "tr",
    "td",
    "blockquote",
    "pre",
    "code",
    "h1",
    "h2",
    "figure",
    "figcaption",
    "a",
    "b",
    "em",
    "noscript",
    "template",
    "iframe",
    "svg",
    "math",
    "form",
    "textarea",
    "select",
    "time",
    "font",
    "center",
]
HTML_ATTRIBUTES = [
    "",
    ' class="content"',
    ' id="main"',
    ' href="https://example.org/x"',
    ' datetime="2026-11-23T10:00:00Z"',
    ' style="display:none"',
    ' hidden class="comments"',
    ' lang="ar" dir="rtl"',
    " onclick=alert(1)",
    " data-x='<p>'",
]


HTML_LEAVES = st.one_of(
    sentences.map(escape),
    xml_text(),
    st.sampled_from(["<br>", "<hr/>", "<img src=x alt='y'>", "&nbsp;", "<!-- c -->", "<p>"]),
)


def _element(tag: str, attributes: str, inner: list[str], close: bool) -> str:
    return f"<{tag}{attributes}>{''.join(inner)}" + (f"</{tag}>" if close else "")


def _elements(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # A function, not a lambda: Hypothesis reads its source to check that it recurses.
    return st.builds(
        _element,
        st.sampled_from(HTML_TAGS),
        st.sampled_from(HTML_ATTRIBUTES),
        st.lists(children, max_size=4),
        st.integers(0, 5).map(bool),
    )


html_nodes = st.recursive(HTML_LEAVES, _elements, max_leaves=12)
html_dates = st.sampled_from(DATES)
HTML_HEAD = st.one_of(
    xml_text().map(lambda t: f"<title>{t}</title>"),
    st.sampled_from(DECLARED).map(lambda c: f'<meta charset="{c}">'),
    st.sampled_from(DECLARED).map(
        lambda c: f'<meta http-equiv="Content-Type" content="text/html; charset={c}">'
    ),
    html_dates.map(lambda d: f'<meta name="date" content="{d}">'),
    html_dates.map(lambda d: f'<meta property="article:published_time" content="{d}">'),
    fuzz_text.map(lambda t: f'<meta property="og:title" content={quoteattr(t)}>'),
    fuzz_text.map(lambda t: f'<link rel="canonical" href={quoteattr(t)}>'),
    st.tuples(html_dates, fuzz_text).map(
        lambda v: (
            '<script type="application/ld+json">'
            + json.dumps({"@type": "NewsArticle", "datePublished": v[0], "headline": v[1]})
            + "</script>"
        )
    ),
    st.sampled_from(["<style>body{}</style>", "<base href='https://base.example/'>"]),
)


@st.composite
def html_pages(draw: st.DrawFn) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    head = "".join(draw(st.lists(HTML_HEAD, max_size=5)))
    body = "".join(draw(st.lists(html_nodes, max_size=6)))
    prefix = draw(
        st.sampled_from(
            ["", "<!DOCTYPE html>", '<?xml version="1.0"?>', "\ufeff", '<?xml version="1.0"?><rss>']
        )
    )
    page = f"{prefix}<html><head>{head}</head><body>{body}</body></html>"
    if draw(st.integers(0, 5)) == 0:
        page = draw(st.sampled_from(["", " ", "x", "<", "<html>", "<html><body>"])) + body
    return draw(maybe_mutated(encode(page, encoding)))


PAGE_LOCATIONS = st.sampled_from(
    ["https://news.example/story/1", "http://[::1", "folder/page.html", "", "file:///x.html"]
)

# ---------------------------------------------------------------------------------------
# Text and Markdown files.

MARKDOWN_LINES = [
    "# Heading",
    "## Sub heading ##",
    "#",
    "#no space",
    "======",
    "------",
    "- item",
    "* item",
    "+ item",
    "1. item",
    "1) item",
    "> quoted",
    ">>> nested quote",
    "```python",
    "```",
    "~~~",
    "    indented code",
    "![alt](https://example.org/i.png)",
    "[text](https://example.org/x)",
    "[text][ref]",
    "[ref]: https://example.org/x",
    "**bold** and *em* and `code` and __b__ and _i_",
    "<!-- comment -->",
    "<!--",
    "-->",
    "<div>raw html</div>",
    "| a | b |",
    "|---|---|",
    "\\# not a heading",
    "***",
    "",
    "",
]


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    lines = draw(
        st.lists(
            st.one_of(
                fuzz_text.map(lambda t: f"title: {t}"),
                st.sampled_from(DATES).map(lambda d: f"date: {d}"),
                fuzz_text.map(lambda t: f"date: {t}"),
                st.sampled_from(["title:", "date:", "title: 'quoted'", 'title: "q"', "tags: [a]"]),
            ),
            max_size=4,
        )
    )
    return "---\n" + "\n".join(lines) + "\n---\n"


@st.composite
def text_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["lines", "lines", "binary", "text"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "text":
        text = draw(st.text(max_size=300))
    else:
        lines = draw(
            st.lists(st.one_of(st.sampled_from(MARKDOWN_LINES), sentences, fuzz_text), max_size=12)
        )
        separator = draw(st.sampled_from(["\n", "\n\n", "\r\n", "\r", "\n \t\n", "\x0c"]))
        text = separator.join(lines)
        if draw(st.integers(0, 3)) == 0:
            text = draw(front_matter()) + text
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return draw(maybe_mutated(encode(text, encoding)))


def raw_document(
    media_type: str,
    content: bytes,
    title: str | None = None,
    published_at: datetime | None = None,
) -> RawDocument:
    """A document as the folder source would read it (see tests/conftest.py text_doc)."""
    location = "fuzz/doc" + {"text/markdown": ".md", "text/html": ".html"}.get(media_type, ".txt")
    return RawDocument(
        source_kind="folder",
        source_location="fuzz",
        source_name="fuzz",
        identity=location,
        location=location,
        media_type=media_type,
        content=content,
        modified_at=datetime(2026, 11, 1, tzinfo=UTC),
        title=title,
        published_at=published_at,
    )
