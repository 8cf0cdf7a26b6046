"""Fuzz what comes from URLs and response headers: `normalise_url`, Retry-After, and
the next-check interval a feed's caching headers, TTL and error count give."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from hypothesis import example, given
from hypothesis import strategies as st

from .checks import check_intervals, check_retry_after, check_url
from .harness import fuzz
from .strategies import DATES
from .strategies_feeds import FEED_URLS

URL_PIECES = st.sampled_from(
    [
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "mailto:",
        "//",
        "/",
        "?",
        "#",
        "&",
        "=",
        ":",
        "@",
        "[",
        "]",
        "::1",
        "%",
        "%zz",
        "%ff",
        "+",
        " ",
        "\t",
        "\n",
        "example.org",
        "EXAMPLE.org",
        ":80",
        ":443",
        ":99999",
        "utm_source=x",
        "fbclid=1",
        "a=1",
        ";",
        "\\",
        "..",
        "\u0130",
        "\u00df",
        "\ufeff",
    ]
)
url_texts = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(URL_PIECES, st.text(max_size=3)), max_size=10).map("".join),
)


@fuzz(500)
@given(url_texts, st.one_of(st.none(), FEED_URLS, st.text(max_size=20)))
@example("a #b", None)
@example("A:////", None)
@example("HTTP://0/ ?", None)
def test_normalise_url(url: str, base: str | None) -> None:
    check_url(url, base)


@fuzz(500)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=40),
        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=5),
        st.sampled_from(["9" * 5000, "-1", "1.5", " 120 ", "0x10", "", *DATES]),
        st.datetimes(timezones=st.just(UTC)).map(format_datetime),
        st.datetimes().map(lambda d: format_datetime(d).replace("-0000", "+2400")),
    ),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
@example("\u00b2", None)
@example("\u2080", None)
def test_retry_after(value: str | None, now: datetime | None) -> None:
    check_retry_after(value, now)


HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["max-age=" + "9" * 5000, "max-age=\u0663", "no-store, max-age=60", *DATES]),
    st.datetimes(timezones=st.just(UTC)).map(format_datetime),
    st.datetimes().map(lambda d: format_datetime(d).replace("-0000", "+2359")),
)


@fuzz(500)
@given(
    st.dictionaries(st.sampled_from(["cache-control", "expires"]), HEADER_VALUES),
    st.one_of(st.none(), st.integers(-10, 10**6)),
    st.integers(1, 100_000),
)
@example({"expires": "Mon, 01 Jan 0001 00:00:00 +0100"}, None, 1)
@example({}, None, 1025)
def test_next_check_intervals(headers: dict[str, str], ttl: int | None, errors: int) -> None:
    """A feed's caching headers, TTL and error count give an interval within the bounds
    (server headers are input too; a dead feed counts errors for as long as it is dead)."""
    check_intervals(headers, ttl, errors)
