"""Issue 12, entry fields: titles as plain text, the JSON Feed versions publishers
write, and distinct entries that share a GUID and link kept apart."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

import aggregator.ingest.entries
from aggregator.config import Config
from aggregator.errors import ParseError
from aggregator.ingest.entries import entry_documents
from aggregator.model import RawDocument
from aggregator.sources.parse import FeedEntry, parse_feed
from tests.conftest import OpenStore, ingest_docs

FEED = "https://pod.example/feed.xml"
FETCHED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _rss_titles(*titles: str) -> bytes:
    """An RSS 2.0 document with one item per title, each written into <title> as is."""
    items = "".join(
        f"<item><guid>t{i}</guid><title>{t}</title><description>Text {i}.</description></item>"
        for i, t in enumerate(titles)
    )
    return f'<rss version="2.0"><channel><title>W</title>{items}</channel></rss>'.encode()


def _atom_title(kind: str, title: str) -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><id>urn:e1</id>'
        f'<title type="{kind}">{title}</title><content type="text">Body.</content></entry></feed>'
    ).encode()


@pytest.mark.parametrize(
    ("document", "plain"),
    [
        # RSS: escaped markup, a numeric entity escaped twice (WordPress), HTML in CDATA.
        (_rss_titles("That&amp;#8217;s &lt;b&gt;Slack&lt;/b&gt;"), "That’s Slack"),
        (
            _rss_titles("<![CDATA[Price <span class='webrupee'>Rs.</span> 4,300]]>"),
            "Price Rs. 4,300",
        ),
        (
            _atom_title("html", "That&amp;#8217;s &amp;#x0024;4300 ...&lt;sup&gt;2&lt;/sup&gt;"),
            "That’s $4300 ...2",
        ),
        (
            _atom_title(
                "xhtml",
                '<div xmlns="http://www.w3.org/1999/xhtml">That&#8217;s <b>Slack</b>'
                "<br/>&amp; more</div>",
            ),
            "That’s Slack & more",
        ),
    ],
    ids=["rss-escaped", "rss-cdata", "atom-html", "atom-xhtml"],
)
def test_html_titles_become_plain_text(document: bytes, plain: str) -> None:
    assert parse_feed(document, {}, FEED).entries[0].title == plain


def test_a_text_title_keeps_its_angle_brackets_beside_an_html_one() -> None:
    """Atom type="text" is text: `<b>` is what the headline says. Whitespace
    runs become one space either way."""
    document = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        b'<entry><id>urn:t</id><title type="text">Use &lt;b&gt;\n   for bold &amp;amp;</title>'
        b'<content type="text">x</content></entry>'
        b'<entry><id>urn:h</id><title type="html">Use &lt;b&gt;bold&lt;/b&gt;\n  &amp;amp;</title>'
        b'<content type="text">y</content></entry></feed>'
    )
    assert [e.title for e in parse_feed(document, {}, FEED).entries] == [
        "Use <b> for bold &amp;",
        "Use bold &",
    ]


def test_stored_titles_are_plain_text(config: Config, open_store: OpenStore) -> None:
    """Through entry_documents and the pipeline: what the digest shows."""
    document = _rss_titles("&lt;b&gt;Slack&lt;/b&gt; raises &amp;#x0024;4300", "1 &lt; 2")
    entries = parse_feed(document, {}, FEED).entries
    outcomes = ingest_docs(config, entry_documents(entries, FEED, "w", FETCHED))
    assert [o.status for o in outcomes] == ["new", "new"]
    store = open_store()
    titles = [row[0] for row in store.execute("SELECT title FROM articles ORDER BY id")]
    assert titles == ["Slack raises $4300", "1 < 2"]


def test_a_hostile_title_is_capped_before_it_is_parsed() -> None:
    """Megabytes of nested or unclosed markup in a title: read in linear time,
    at most 10,000 characters kept."""
    nested = "&lt;b&gt;" * 200_000 + "x"
    unclosed = "&lt;!--&lt;a title='" * 100_000 + "&lt;/b&gt;"
    started = time.process_time()
    entries = parse_feed(_rss_titles(nested, unclosed), {}, FEED).entries
    assert time.process_time() - started < 5.0
    assert [len(e.title) <= 10_000 for e in entries] == [True, True]


def _json_feed(version: str | None) -> bytes:
    """A JSON Feed of one item, with `version` (none if None)."""
    document: dict[str, object] = {
        "title": "Micro",
        "items": [
            {
                "id": "m1",
                "url": "https://micro.example/1",
                "title": "One",
                "content_text": "Hello.",
                "date_published": "2026-11-23T10:00:00Z",
            }
        ],
    }
    if version is not None:
        document["version"] = version
    return json.dumps(document).encode()


def test_json_feed_versions_as_publishers_write_them() -> None:
    """http or https, www. or not, a trailing slash, any case, 1, 1.0 or 1.1."""
    spellings = [
        "http://jsonfeed.org/version/1",
        "https://jsonfeed.org/version/1.1",
        "https://jsonfeed.org/version/1/",
        "http://www.jsonfeed.org/version/1.1/",
        " HTTPS://JSONFEED.ORG/VERSION/1.0 ",
    ]
    for version in spellings:
        feed = parse_feed(_json_feed(version), {"content-type": "application/json"}, FEED)
        assert [(e.guid, e.title, e.content) for e in feed.entries] == [("m1", "One", "Hello.")], (
            version
        )
        assert feed.warning is None, version


def test_a_json_feed_without_a_version_is_read_with_a_warning() -> None:
    """Read by its shape: a title, and items with an id and a url or content.
    Other JSON with a title and an items list (records of an API) is not."""
    feed = parse_feed(_json_feed(None), {"content-type": "application/feed+json"}, FEED)
    assert [e.guid for e in feed.entries] == ["m1"]
    assert feed.warning == "JSON Feed without a version, read as 1.1"
    records = b'{"title": "Search", "items": [{"id": 1, "name": "a"}, {"name": "b"}]}'
    with pytest.raises(ParseError, match=r"not a JSON Feed \(no jsonfeed.org version\)$"):
        parse_feed(records, {"content-type": "application/json"}, FEED)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'[{"id": "m1", "url": "https://a.example/1"}]', "(the document is an array)"),
        (b'"feed"', "(the document is a string)"),
        (
            b'{"error": "rate limit exceeded\\ntry again later", "status": 429}',
            "(an error response? error: 'rate limit exceeded try again later')",
        ),
        (_json_feed("https://example.com/feed/version/1"), "(version 'https://example.com/feed"),
        (_json_feed("https://jsonfeed.org/version/1evil"), "(version 'https://jsonfeed.org/ver"),
        (_json_feed("https://jsonfeed.org/version/10"), "unsupported JSON Feed version"),
        (_json_feed("https://jsonfeed.org/version/2"), "unsupported JSON Feed version"),
    ],
    ids=["array", "string", "error", "other-url", "suffix", "version-10", "version-2"],
)
def test_json_that_is_not_a_json_feed_is_a_one_line_error(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse_feed(body, {"content-type": "application/json"}, FEED)
    message = str(raised.value)
    assert reason in message
    assert len(message.splitlines()) == 1


def _entry(title: str, published: datetime | None, content: str, **fields: str) -> FeedEntry:
    """An entry with the GUID and link every episode of the feed shares."""
    values: dict[str, object] = {
        "guid": "https://pod.example/episode",
        "link": "https://pod.example/episode",
        "title": title,
        "summary": "",
        "content": content,
        "published": published.strftime("%a, %d %b %Y %H:%M:%S GMT") if published else "",
        "updated": "",
        "published_at": published,
    }
    values.update(fields)
    return FeedEntry(**values)  # type: ignore[arg-type]


MONDAY = FETCHED - timedelta(days=7)
TUESDAY = FETCHED - timedelta(days=6)
WEDNESDAY = FETCHED - timedelta(days=5)
EPISODE_1 = "<p>The first episode is about rivers, deltas and the people who farm them.</p>"
EPISODE_2 = "<p>The second episode visits a glassworks and follows a vase from sand to shelf.</p>"
EPISODE_3 = "<p>In the third episode a retired pilot explains how night landings feel.</p>"


def _docs(entries: list[FeedEntry], warnings: list[str] | None = None) -> list[RawDocument]:
    return list(entry_documents(entries, FEED, "pod", FETCHED, warnings=warnings))


def _statuses(config: Config, docs: list[RawDocument]) -> list[str]:
    """Outcomes of ingesting `docs`, sorted: a batch answers unchanged ones first."""
    return sorted(o.status for o in ingest_docs(config, docs))


def _articles(open_store: OpenStore) -> list[tuple[str, int]]:
    store = open_store()
    rows = store.execute("SELECT title, version FROM articles ORDER BY id").fetchall()
    store.close()
    return [(title, version) for title, version in rows]


def test_entries_sharing_guid_and_link_but_not_title_or_date_are_two_articles(
    config: Config, open_store: OpenStore
) -> None:
    warnings: list[str] = []
    docs = _docs(
        [_entry("Episode 2", TUESDAY, EPISODE_2), _entry("Episode 1", MONDAY, EPISODE_1)],
        warnings,
    )
    assert [o.status for o in ingest_docs(config, docs)] == ["new", "new"]
    assert _articles(open_store) == [("Episode 2", 1), ("Episode 1", 1)]
    assert warnings == [
        "entries sharing a GUID or link: 2 told apart by date or title "
        "(first: 'https://pod.example/episode')"
    ]


def test_the_same_item_edited_stays_one_article_with_versions(
    config: Config, open_store: OpenStore
) -> None:
    """In one document (listed twice, edited) and over polls (headline corrected,
    items added and dropped), an item keeps its article."""
    first = [_entry("Episode 2", TUESDAY, EPISODE_2), _entry("Episode 1", MONDAY, EPISODE_1)]
    assert [o.status for o in ingest_docs(config, _docs(first))] == ["new", "new"]
    assert [o.status for o in ingest_docs(config, _docs(first))] == ["unchanged", "unchanged"]
    # Next poll: a third episode, the second one's headline corrected (same date).
    warnings: list[str] = []
    second = [
        _entry("Episode 3", WEDNESDAY, EPISODE_3),
        _entry("Episode 2: the glassworks", TUESDAY, EPISODE_2),
        _entry("Episode 1", MONDAY, EPISODE_1),
    ]
    assert _statuses(config, _docs(second, warnings)) == ["new", "unchanged", "updated"]
    assert "3 told apart by date or title" in warnings[0]
    # Then the first episode drops off, and the third is listed twice, once with
    # its text edited: both listings are the same article.
    warnings.clear()
    third = [
        _entry(
            "Episode 3", WEDNESDAY, EPISODE_3 + "<p>Corrected: the pilot flew for 30 years.</p>"
        ),
        _entry("Episode 3", WEDNESDAY, EPISODE_3),
        _entry("Episode 2: the glassworks", TUESDAY, EPISODE_2),
    ]
    assert _statuses(config, _docs(third, warnings)) == ["unchanged", "unchanged", "updated"]
    assert "1 kept as versions of another entry" in warnings[0]
    assert _articles(open_store) == [
        ("Episode 2: the glassworks", 2),
        ("Episode 1", 1),
        ("Episode 3", 2),
    ]


def test_identities_are_a_function_of_the_entry_not_of_its_neighbours() -> None:
    episodes = [
        _entry("Episode 3", WEDNESDAY, EPISODE_3),
        _entry("Episode 2", TUESDAY, EPISODE_2),
        _entry("Episode 1", MONDAY, EPISODE_1),
    ]
    all_three, _ = aggregator.ingest.entries.entry_identities(episodes, FEED)
    last_two, _ = aggregator.ingest.entries.entry_identities(episodes[1:], FEED)
    reordered, _ = aggregator.ingest.entries.entry_identities([episodes[2], episodes[0]], FEED)
    assert len(set(all_three)) == 3
    assert last_two == all_three[1:]
    assert reordered == [all_three[2], all_three[0]]
    limited = list(entry_documents(episodes, FEED, "pod", FETCHED, limit=1))
    assert [d.identity for d in limited] == all_three[:1]


def test_entries_without_dates_are_told_apart_by_title() -> None:
    entries = [_entry("Episode 2", None, EPISODE_2), _entry("Episode 1", None, EPISODE_1)]
    identities, warning = aggregator.ingest.entries.entry_identities(entries, FEED)
    assert len(set(identities)) == 2 and warning is not None


@pytest.mark.parametrize(
    ("entries", "warning"),
    [
        # The same entry listed twice: nothing to say.
        ([_entry("E", MONDAY, EPISODE_1)] * 2, None),
        (
            [
                _entry("E", MONDAY, EPISODE_1, link="https://pod.example/1"),
                _entry("E", MONDAY, EPISODE_1, link="https://pod.example/2"),
            ],
            "entries sharing a GUID or link: 2 told apart by link "
            "(first: 'https://pod.example/episode')",
        ),
        (
            [_entry("E", MONDAY, EPISODE_1), _entry("E", TUESDAY, EPISODE_2)],
            "entries sharing a GUID or link: 1 kept as versions of another entry "
            "(first: 'https://pod.example/episode')",
        ),
    ],
    ids=["listed-twice", "by-link", "versions"],
)
def test_no_collision_is_silent(entries: list[FeedEntry], warning: str | None) -> None:
    warnings: list[str] = []
    _docs(entries, warnings)
    assert warnings == ([warning] if warning else [])
