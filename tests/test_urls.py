"""URL normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from aggregator.urls import normalise_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.bbc.co.uk/news/world-123#0", "https://www.bbc.co.uk/news/world-123"),
        (
            "HTTPS://Example.ORG:443/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x",
            "https://example.org/a?id=7",
        ),
        ("http://example.org", "http://example.org/"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("http://[::1]:80/p", "http://[::1]/p"),
        ("https://example.org/p?b=2&a=1", "https://example.org/p?b=2&a=1"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


def test_relative_links_resolve_against_the_feed() -> None:
    assert normalise_url("/story/1?utm_campaign=x", "https://news.example/feed.xml") == (
        "https://news.example/story/1"
    )


@given(urls())
def test_normalising_is_idempotent(url: str) -> None:
    once = normalise_url(url)
    assert normalise_url(once) == once


@given(st.text(max_size=60))
def test_never_raises_on_junk(text: str) -> None:
    normalise_url(text)


def test_unparseable_link_is_kept_as_given() -> None:
    assert normalise_url(" http://[::1 ") == "http://[::1"
