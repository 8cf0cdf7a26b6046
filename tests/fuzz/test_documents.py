"""Fuzz the documents `extract` reads: HTML pages (`extract_html`), HTML fragments
(`fragment_paragraphs`), and text, Markdown and HTML files of every media type."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.errors import ExtractError
from aggregator.sources.extract import FRAGMENT
from aggregator.sources.htmltext import extract_html, fragment_paragraphs

from .checks import check_document, check_storable
from .harness import call, fuzz
from .strategies import prose
from .strategies_documents import PAGE_LOCATIONS, html_nodes, html_pages, raw_document, text_files


@fuzz(100)
@given(html_pages(), PAGE_LOCATIONS)
def test_html_pages(content: bytes, location: str) -> None:
    result = call(extract_html, content, location, allowed=(ExtractError,))
    if result is None:
        return
    title, published, paragraphs, outlet = result
    assert isinstance(title, str) and "\n" not in title
    assert outlet is None or (outlet.strip() == outlet and outlet and "\n" not in outlet)
    assert paragraphs and all(p.strip() and "\n" not in p for p in paragraphs)
    if published is not None:
        check_storable(published)


@fuzz(200)
@given(st.one_of(html_nodes.map(str.encode), st.binary(max_size=500), text_files()))
@example(b"<div>\x01")
@example(b"<html>")
def test_html_fragments(content: bytes) -> None:
    paragraphs = call(fragment_paragraphs, content, allowed=(ExtractError,))
    if paragraphs is not None:
        assert isinstance(paragraphs, list)
        assert all(isinstance(p, str) and p.strip() and "\n" not in p for p in paragraphs)


@fuzz(200)
@given(
    st.sampled_from(["text/plain", "text/markdown", "text/html", FRAGMENT]),
    st.one_of(text_files(), html_pages()),
    st.one_of(st.none(), prose),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
@example("text/markdown", b"---\ndate: 0999-01-01\n---\nText.\n", None, None)
def test_text_files(
    media_type: str, content: bytes, title: str | None, published_at: datetime | None
) -> None:
    check_document(raw_document(media_type, content, title, published_at))
