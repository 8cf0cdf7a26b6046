"""Full-text pages (issue 12, item 8): reader comments, ad columns and a repeated
headline are not the story. Each fixture in tests/data/pages/ is a layout that
trafilatura alone reads wrongly; its .expected.json holds the story's paragraphs,
written by hand from the page."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from pytest_httpserver import HTTPServer

from aggregator.ingest.feeds import add_feed, list_feeds
from aggregator.ingest.poll import Poller
from aggregator.sources.htmltext import read_page
from aggregator.sources.pageclean import (
    AD_BOX_MAX_WORDS,
    MAX_LABELS,
    TITLE_REPEAT_SPAN,
    drop_title_repeats,
    prune_page,
)

PAGES = Path(__file__).parent / "data" / "pages"
FIXTURES = sorted(p.stem for p in PAGES.glob("*.html"))
STORY = [
    "The county council voted on Tuesday evening to fund a flood barrier along the lower"
    " river, ending a debate that has run for almost six years.",
    "Engineers say the barrier will protect about four thousand homes from the kind of"
    " surge that flooded the old town in the winter of 2019.",
    "Work is due to begin next spring and should take two years, the council said, with"
    " most of the cost met by a national resilience grant.",
]
COMMENT = (
    "I have lived on this river for forty years and never once seen the council do"
    " anything about the flooding until now."
)


def _expected(name: str) -> list[str]:
    document = json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))
    paragraphs: list[str] = document["paragraphs"]
    return paragraphs


def _story(extra: str = "", before: str = "", tag: str = "article") -> bytes:
    """A page whose story is STORY, with `before` ahead of it inside the <article>
    and `extra` after it."""
    body = "".join(f"<p>{p}</p>" for p in STORY)
    return (
        "<html><head><title>Flood barrier</title></head><body>"
        f"<{tag}><h1>Flood barrier</h1>{before}<div class='copy'>{body}</div>{extra}</{tag}>"
        "</body></html>"
    ).encode()


def _pruned(page: bytes) -> tuple[str, list[str]]:
    """The text left under <body> after `prune_page`, and what it removed."""
    root = lxml.html.document_fromstring(page)
    removed = prune_page(root)
    return " ".join(root.find("body").text_content().split()), removed


def test_there_is_a_fixture_of_each_layout() -> None:
    assert FIXTURES == ["comments-in-article", "table-layout-ad", "title-repeated"]


@pytest.mark.parametrize("name", FIXTURES)
def test_a_page_gives_its_story_and_nothing_else(name: str) -> None:
    page = read_page((PAGES / f"{name}.html").read_bytes(), f"https://news.example/{name}")
    assert list(page.paragraphs) == _expected(name)


def test_full_text_through_a_feed_stores_each_story_alone(
    httpserver: HTTPServer, poller: Poller
) -> None:
    """The three layouts as the pages of a teaser feed, fetched over HTTP."""
    titles = {
        "comments-in-article": "Harbour authority delays ferry terminal decision",
        "table-layout-ad": "Mill reopens as community bakery",
        "title-repeated": "Rail operator adds late trains after festival crowds",
    }
    date = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    items = ""
    for name in FIXTURES:
        httpserver.expect_request(f"/{name}").respond_with_data(
            (PAGES / f"{name}.html").read_bytes(), content_type="text/html"
        )
        items += (
            f"<item><guid>{name}</guid><title>{html.escape(titles[name])}</title>"
            f"<link>{httpserver.url_for('/' + name)}</link><pubDate>{date}</pubDate>"
            "<description>A short teaser.</description></item>"
        )
    httpserver.expect_request("/feed").respond_with_data(
        f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>',
        content_type="application/rss+xml",
    )
    poller.full_text.host_interval = 0.0
    add_feed(poller.store, httpserver.url_for("/feed"), "Teasers", full_text="auto")

    (outcome,) = poller.poll(list_feeds(poller.store))

    assert (outcome.status, outcome.new, outcome.error) == ("ingested", 3, None)
    rows = poller.store.execute("SELECT title, body FROM articles ORDER BY id").fetchall()
    stored = dict(rows)
    assert stored == {titles[n]: "\n\n".join(_expected(n)) for n in FIXTURES}


@pytest.mark.parametrize(
    "comments",
    [
        f'<div class="dsq-comment"><div class="dsq-comment-message"><p>{COMMENT}</p></div></div>',
        f'<section class="discussion"><p>{COMMENT}</p></section>',
        f'<div class="userComment"><p>{COMMENT}</p></div>',
        f'<div itemprop="comment" itemscope><p>{COMMENT}</p></div>',
        f'<li itemtype="https://schema.org/Comment" itemscope><p>{COMMENT}</p></li>',
    ],
)
def test_comment_threads_are_removed_whatever_their_place(comments: str) -> None:
    for page in (_story(before=comments), _story(extra=comments)):
        text, removed = _pruned(page)
        assert COMMENT not in text and STORY[0] in text and STORY[-1] in text
        assert [r.split(":")[0] for r in removed] == ["comments"]


@pytest.mark.parametrize(
    "names", ['class="story comments-open"', 'class="post has-comments"', 'id="commentary"']
)
def test_a_flag_or_commentary_is_not_a_thread(names: str) -> None:
    page = f"<html><body><div {names}>{''.join(f'<p>{p}</p>' for p in STORY)}</div></body></html>"
    text, removed = _pruned(page.encode())
    assert removed == [] and all(p in text for p in STORY)


def test_what_holds_the_headline_is_never_removed() -> None:
    text, removed = _pruned(_story(tag='article class="comment-host"'))
    assert removed == [] and all(p in text for p in STORY)


def test_the_story_is_read_as_it_is_when_pruning_left_no_text() -> None:
    """No <h1>, and the story's own box named like a thread: pruning empties the
    page, so it is read again without pruning rather than lost."""
    paragraphs = "".join(f"<p>{p}</p>" for p in STORY)
    page = f"<html><body><div class='story user-comment'>{paragraphs}</div></body></html>"
    assert list(read_page(page.encode(), "https://news.example/x").paragraphs) == STORY


AD = (
    "Save 40 percent on your first box of fresh organic vegetables delivered to your"
    " door every single week this winter."
)


@pytest.mark.parametrize(
    "ad",
    [
        f"<td width='160'><small>ADVERTISEMENT</small><p>{AD}</p></td>",
        f"<td><div><font size='1'>- Advertisement -</font></div><p>{AD}</p></td>",
        f"<td><b>Anzeige</b> {AD}</td>",
        f"<td><div class='ad-slot'><p>{AD}</p></div></td>",
        f"<td id='adSense'><p>{AD}</p></td>",
    ],
)
def test_a_side_column_of_ads_is_removed_from_a_table_layout(ad: str) -> None:
    story = "".join(f"<p>{p}</p>" for p in STORY)
    for cells in (f"<td>{story}</td>{ad}", f"{ad}<td>{story}</td>"):
        text, removed = _pruned(f"<html><body><table><tr>{cells}</tr></table></body></html>")
        assert AD not in text and all(p in text for p in STORY), cells
        assert len(removed) == 1


def test_an_ad_label_inside_the_story_takes_only_itself() -> None:
    """The story's box does not begin with the label, so only the label goes."""
    story = f"<p>{STORY[0]}</p><span>Advertisement</span><p>{STORY[1]}</p><p>{STORY[2]}</p>"
    text, removed = _pruned(f"<html><body><div>{story}</div></body></html>".encode())
    assert all(p in text for p in STORY) and "Advertisement" not in text
    assert removed == ["ad label: <span>"]


def test_a_long_box_named_like_an_ad_is_kept() -> None:
    """A story in a box whose class has an ad word, past `AD_BOX_MAX_WORDS`."""
    long_story = " ".join(STORY * (AD_BOX_MAX_WORDS // 40 + 1))
    assert len(long_story.split()) > AD_BOX_MAX_WORDS
    text, removed = _pruned(
        f"<html><body><div class='sponsor-feature'><p>{long_story}</p></div></body></html>".encode()
    )
    assert removed == [] and long_story in text


def test_labels_past_the_cap_are_left() -> None:
    cells = "".join(f"<tr><td>Advertisement</td><td>{STORY[0]}</td></tr>" for _ in range(500))
    _, removed = _pruned(f"<html><body><table>{cells}</table></body></html>".encode())
    assert len(removed) == MAX_LABELS


@pytest.mark.parametrize(
    "title",
    [
        "Flood barrier approved",
        "FLOOD BARRIER APPROVED!",
        "Flood barrier approved | Riverside Gazette",
        "Flood barrier approved – Riverside Gazette",
    ],
)
def test_the_headline_repeated_near_the_top_is_dropped(title: str) -> None:
    for position in range(TITLE_REPEAT_SPAN):
        paragraphs = [*STORY[:position], "Flood barrier approved.", *STORY[position:]]
        assert drop_title_repeats(paragraphs, [title]) == tuple(STORY)


def test_the_headline_further_down_or_inside_a_paragraph_stays() -> None:
    late = [*STORY, "Flood barrier approved"]
    assert drop_title_repeats(late, ["Flood barrier approved"]) == tuple(late)
    inside = ["Flood barrier approved, the council said on Tuesday.", *STORY]
    assert drop_title_repeats(inside, ["Flood barrier approved"]) == tuple(inside)
    assert drop_title_repeats(STORY, ["", "  "]) == tuple(STORY)
