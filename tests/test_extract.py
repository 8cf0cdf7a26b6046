"""Extract: plain text, Markdown and HTML bytes into an Article, and the errors on bad input."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from aggregator.errors import ExtractError
from aggregator.model import Article
from aggregator.sources.extract import extract
from aggregator.sources.htmltext import fragment_paragraphs
from tests.conftest import file_doc

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
MTIME = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)


def _text(text: str) -> Article:
    return extract(file_doc(text.encode("utf-8")))


def _md(text: str) -> Article:
    return extract(file_doc(text.encode("utf-8"), "text/markdown", "/news/a.md"))


# -- plain text: paragraphs ------------------------------------------------------------


def test_plain_one_paragraph_per_line_without_blank_lines() -> None:
    article = _text("Storm hits coast\nFirst paragraph here.\nSecond paragraph here.\n")
    assert article.paragraphs == ("First paragraph here.", "Second paragraph here.")


def test_plain_blank_line_blocks_join_hard_wrapped_lines() -> None:
    text = (
        "Storm hits coast\n\n"
        "The storm reached the coast\nearly on Monday morning.\n\n"
        "Power was cut to\n  thousands of homes.\n"
    )
    article = _text(text)
    assert article.paragraphs == (
        "The storm reached the coast early on Monday morning.",
        "Power was cut to thousands of homes.",
    )


def test_plain_whitespace_only_line_counts_as_blank() -> None:
    article = _text("Storm hits coast\n \t\nBody line one\nbody line two.")
    assert article.title == "Storm hits coast"
    assert article.paragraphs == ("Body line one body line two.",)


def test_plain_crlf_line_endings_are_normalised() -> None:
    article = extract(file_doc(b"Storm hits coast\r\n\r\nBody wrapped\r\nover two lines.\r\n"))
    assert article.title == "Storm hits coast"
    assert article.paragraphs == ("Body wrapped over two lines.",)


def test_plain_date_is_the_file_modification_time() -> None:
    assert _text("Storm hits coast\nBody.").published_at == MTIME


# -- plain text: the headline rule ---------------------------------------------------------


def test_headline_short_first_line_is_title_and_not_a_paragraph() -> None:
    article = _text("Storm hits coast\nThe storm arrived.")
    assert article.title == "Storm hits coast"
    assert article.paragraphs == ("The storm arrived.",)


def test_headline_allows_exactly_twenty_words() -> None:
    first = " ".join(f"word{i}" for i in range(20))
    article = _text(f"{first}\nBody.")
    assert article.title == first
    assert article.paragraphs == ("Body.",)


def test_headline_of_twenty_one_words_is_a_paragraph() -> None:
    first = " ".join(f"word{i}" for i in range(21))
    article = _text(f"{first}\nBody.")
    assert article.paragraphs == (first, "Body.")
    assert article.title != first


@pytest.mark.parametrize("end", [".", ",", ";", ":"])
def test_first_line_ending_in_punctuation_is_not_a_headline(end: str) -> None:
    article = _text(f"Storm hits coast{end}\nBody.")
    assert article.paragraphs == (f"Storm hits coast{end}", "Body.")


def test_single_line_is_a_paragraph_and_its_own_title() -> None:
    article = _text("Storm hits coast")
    assert article.paragraphs == ("Storm hits coast",)
    assert article.title == "Storm hits coast"


def test_multi_line_first_block_is_not_a_headline() -> None:
    article = _text("Storm hits\ncoast\n\nBody.")
    assert article.paragraphs == ("Storm hits coast", "Body.")


def test_title_falls_back_to_short_first_sentence() -> None:
    article = _text("The vote passed on Monday. Everyone went home after that.\nMore text.")
    assert article.title == "The vote passed on Monday."
    assert article.paragraphs[0] == "The vote passed on Monday. Everyone went home after that."


def test_seed_000_long_first_sentence_gives_shortened_title() -> None:
    path = next(SEEDS.glob("000_*.txt"))
    raw = path.read_bytes()
    lines = [line for line in raw.decode("utf-8").splitlines() if line.strip()]
    article = extract(file_doc(raw, location=str(path)))
    assert article.paragraphs[0] == lines[0]
    assert len(article.paragraphs) == len(lines)
    assert article.title.endswith("…")
    assert 20 < len(article.title) <= 91
    assert lines[0].startswith(article.title[:-1])
    assert article.title.startswith("Turkey's Energy Ministry")


def test_seed_with_headline_uses_first_line() -> None:
    path = next(SEEDS.glob("001_*.txt"))
    article = extract(file_doc(path.read_bytes(), location=str(path)))
    assert article.title == "Russian Federation continues Syrian air strikes"
    assert article.title not in article.paragraphs


# -- plain text: encodings and errors -------------------------------------------------------


def test_utf8_bom_is_accepted_and_dropped() -> None:
    article = extract(file_doc("\ufeffCafé reopens\nThe café reopened.".encode()))
    assert article.title == "Café reopens"
    assert article.paragraphs == ("The café reopened.",)


def test_undecodable_bytes_name_location_byte_and_offset() -> None:
    with pytest.raises(ExtractError) as info:
        extract(file_doc(b"Headline\nabc\xff\xfe rest", location="/news/bad.txt"))
    assert info.value.location == "/news/bad.txt"
    assert "not UTF-8" in info.value.reason
    assert "0xff" in info.value.reason
    assert "offset 12" in info.value.reason
    assert str(info.value).startswith("/news/bad.txt: ")


def test_nul_byte_is_a_binary_file_error() -> None:
    with pytest.raises(ExtractError, match="binary") as info:
        extract(file_doc(b"Headline\nbody\x00more", location="/news/bin.txt"))
    assert info.value.location == "/news/bin.txt"


def test_nul_byte_in_markdown_is_a_binary_file_error() -> None:
    with pytest.raises(ExtractError, match="binary"):
        extract(file_doc(b"# Title\n\x00", "text/markdown"))


@pytest.mark.parametrize("content", [b"   \n\t\n  \n", "\ufeff \n".encode(), b"\n\n"])
def test_whitespace_only_is_no_text_error(content: bytes) -> None:
    with pytest.raises(ExtractError, match="no text") as info:
        extract(file_doc(content, location="/news/blank.txt"))
    assert info.value.location == "/news/blank.txt"


# -- Markdown -------------------------------------------------------------------------------


def test_markdown_front_matter_title_and_date() -> None:
    article = _md('---\ntitle: "Storm hits coast"\ndate: 2024-03-05T10:30:00+01:00\n---\n\nBody.')
    assert article.title == "Storm hits coast"
    assert article.published_at == datetime.fromisoformat("2024-03-05T10:30:00+01:00")
    assert article.paragraphs == ("Body.",)


def test_markdown_front_matter_date_without_zone_is_utc() -> None:
    article = _md("---\ntitle: T\ndate: 2024-03-05\n---\nBody.")
    assert article.published_at == datetime(2024, 3, 5, tzinfo=UTC)


def test_markdown_bad_front_matter_date_falls_back_to_mtime() -> None:
    assert _md("---\ntitle: T\ndate: soon\n---\nBody.").published_at == MTIME


def test_markdown_leading_heading_is_title() -> None:
    article = _md("# Storm hits coast\n\nThe storm arrived.\n\n## Damage\n\nRoofs were lost.")
    assert article.title == "Storm hits coast"
    assert article.paragraphs == ("The storm arrived.", "Damage", "Roofs were lost.")


def test_markdown_front_matter_title_wins_over_heading() -> None:
    article = _md("---\ntitle: From front matter\n---\n# From heading\n\nBody.")
    assert article.title == "From front matter"
    assert article.paragraphs == ("From heading", "Body.")


def test_markdown_list_items_are_paragraphs() -> None:
    article = _md("# T\n\nIntro.\n\n- first item\n- second item\n* third item\n1. fourth item\n")
    assert article.paragraphs == (
        "Intro.",
        "first item",
        "second item",
        "third item",
        "fourth item",
    )


def test_markdown_links_keep_their_text() -> None:
    article = _md("# T\n\nRead [the full report](https://example.com/r) today.")
    assert article.paragraphs == ("Read the full report today.",)


def test_markdown_reference_links_keep_their_text() -> None:
    article = _md("# T\n\nRead [the full report][1] today.\n\n[1]: https://example.com/r\n")
    assert article.paragraphs == ("Read the full report today.",)


def test_markdown_images_are_dropped() -> None:
    article = _md("# T\n\nBefore ![a chart](chart.png) after.\n\n![only image](x.png)\n")
    assert article.paragraphs == ("Before after.",)


def test_markdown_fenced_code_is_dropped() -> None:
    article = _md("# T\n\nBefore.\n\n```python\nsecret = 1\n```\n\n~~~\nmore code\n~~~\n\nAfter.")
    assert article.paragraphs == ("Before.", "After.")


def test_markdown_emphasis_markers_are_removed() -> None:
    assert _md("# T\n\nA **bold** and *soft* word.").paragraphs == ("A bold and soft word.",)


def test_markdown_intraword_underscores_are_kept() -> None:
    text = "The snake_case_name field."
    assert _md(f"# T\n\n{text}").paragraphs == (text,)


def test_markdown_indented_text_is_prose_not_code() -> None:
    article = _md("# T\n\n    An indented first paragraph.\n\n    And a second one.\n")
    assert article.paragraphs == ("An indented first paragraph.", "And a second one.")


def test_markdown_entities_and_escapes_are_decoded() -> None:
    assert _md("# T\n\nAT&amp;T sold 3 \\*million\\* units.").paragraphs == (
        "AT&T sold 3 *million* units.",
    )


def test_markdown_html_blocks_keep_their_text_and_comments_are_dropped() -> None:
    text = (
        "# T\n\nBefore.\n\n<!-- draft note -->\n\n"
        "<div class=note>\n<p>Boxed <b>text</b>.</p>\n</div>\n"
    )
    assert _md(text).paragraphs == ("Before.", "Boxed text.")


def test_markdown_inline_tags_are_dropped_and_their_text_kept() -> None:
    assert _md("# T\n\nA <span class=x>quiet</span> word.").paragraphs == ("A quiet word.",)


def test_markdown_setext_heading_is_title() -> None:
    article = _md("Storm hits coast\n================\n\nThe storm arrived.")
    assert article.title == "Storm hits coast"
    assert article.paragraphs == ("The storm arrived.",)


def test_markdown_with_only_a_heading_is_no_text_error() -> None:
    with pytest.raises(ExtractError, match="no text"):
        _md("# Only a heading\n")


# -- HTML -------------------------------------------------------------------------------------

PROSE = (
    "The harbour council voted on Tuesday evening to approve a new flood barrier along the "
    "eastern quay, ending nearly three years of argument between fishermen, shop owners and "
    "the regional environment agency about how best to protect the old town from storms.",
    "Engineers told the meeting that the barrier would be built from steel panels that can be "
    "raised within twenty minutes when the tide gauge predicts a surge, and lowered again once "
    "the water has fallen, so that boats can still reach the fish market in ordinary weather.",
    "Several residents who attended the meeting said they welcomed the decision but worried "
    "about the noise of construction during the summer season, when the town depends on "
    "visitors who come for the beaches, the seafood restaurants and the sailing regatta.",
    "The council expects the first panels to be installed next spring, and it has promised to "
    "publish a detailed timetable of the work, together with the final cost, on its website "
    "before the end of the month so that local businesses can plan ahead.",
)

ARTICLE_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Harbour council approves new flood barrier | The Coastal Gazette</title>
<meta property="og:title" content="Harbour council approves new flood barrier">
<meta property="article:published_time" content="2024-03-05T08:30:00+00:00">
</head>
<body>
<header><nav><ul>
<li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/contact">Contact us</a></li>
</ul></nav></header>
<main><article>
<h1>Harbour council approves new flood barrier</h1>
{"".join(f"<p>{p}</p>" for p in PROSE)}
</article></main>
<footer><p>Copyright 2024 The Coastal Gazette. All rights reserved.</p>
<a href="/privacy">Privacy policy</a> <a href="/terms">Terms of use</a></footer>
</body>
</html>
""".encode()


def _html(content: bytes, location: str = "/news/page.html") -> Article:
    return extract(file_doc(content, "text/html", location))


def test_html_article_gives_title_paragraphs_and_date() -> None:
    article = _html(ARTICLE_PAGE)
    assert article.title == "Harbour council approves new flood barrier"
    assert article.published_at.date() == date(2024, 3, 5)
    assert article.published_at.tzinfo is not None
    prose = [p for p in article.paragraphs if p in PROSE]
    assert prose == list(PROSE)


def test_html_navigation_and_footer_are_not_paragraphs() -> None:
    body = " ".join(_html(ARTICLE_PAGE).paragraphs)
    for boilerplate in ("Contact us", "Copyright", "Privacy policy", "Terms of use"):
        assert boilerplate not in body


def test_html_extraction_emits_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        article = _html(ARTICLE_PAGE)
    assert article.title == "Harbour council approves new flood barrier"


def test_html_page_without_body_text_is_an_error() -> None:
    page = b"<html><head><title>Only a title</title></head><body></body></html>"
    with pytest.raises(ExtractError, match="no article text") as info:
        _html(page, "/news/empty.html")
    assert info.value.location == "/news/empty.html"


def test_html_page_with_only_navigation_is_an_error() -> None:
    page = (
        b"<html><head><title>Menu</title></head><body><header><nav><ul>"
        b'<li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav></header>'
        b"<footer><p>Copyright 2024 The Coastal Gazette.</p></footer></body></html>"
    )
    with pytest.raises(ExtractError, match="no article text") as info:
        _html(page, "/news/menu.html")
    assert info.value.location == "/news/menu.html"


# -- feed entry fragments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "paragraphs"),
    [
        (b"<p>One.</p><p>Two <b>bold</b> words.</p>", ["One.", "Two bold words."]),
        (b"Line one<br>line two", ["Line one", "line two"]),
        (b"<ul><li>first</li><li>second</li></ul>after", ["first", "second", "after"]),
        (b"<p>a<!-- note -->b<script>alert(1)</script>c<style>p{}</style>d</p>", ["abcd"]),
        (b"plain text\nsecond line", ["plain text", "second line"]),
        (b"<html><head><title>T</title></head><body><p>Body.</p></body></html>", ["Body."]),
        (b"<html>", []),
        (b"<div>a\x01b</div><p>c&#1;d</p>", ["ab", "cd"]),  # lxml refuses them as text
        (b"<!-- only a comment -->", []),
        (b" <!DOCTYPE ", ["<!DOCTYPE"]),  # text that looks like markup (feedparser's corpus)
    ],
)
def test_fragment_paragraphs(fragment: bytes, paragraphs: list[str]) -> None:
    assert fragment_paragraphs(fragment) == paragraphs


# -- outlet: who published a saved article ---------------------------------------------


@pytest.mark.parametrize(
    ("front", "outlet"),
    [
        ("source: Reuters\npublisher: Ignored", "Reuters"),
        ("outlet: The  Guardian", "The Guardian"),
        ("site_name: BBC News", "BBC News"),
        ("url: https://www.example-news.com/world/1", "example-news.com"),
        ("canonical_url: https://wire.example.org/a", "wire.example.org"),
        ("title: No outlet here", None),
    ],
)
def test_markdown_front_matter_names_the_outlet(front: str, outlet: str | None) -> None:
    article = _md(f"---\n{front}\n---\n\n# Headline\n\nThe first paragraph of the story.\n")
    assert article.outlet == outlet


def test_html_outlet_is_its_site_name_else_its_canonical_host() -> None:
    head = (
        '<meta property="og:site_name" content="The Harbour Times">'
        '<link rel="canonical" href="https://www.harbour-times.example/news/1">'
    )
    page = ARTICLE_PAGE.replace(b"<head>", b"<head>" + head.encode(), 1)
    assert b"og:site_name" in page
    assert _html(page).outlet == "The Harbour Times"
    hostname_only = page.replace(b'<meta property="og:site_name" content="The Harbour Times">', b"")
    assert _html(hostname_only).outlet == "harbour-times.example"


def test_plain_text_and_feed_entries_name_no_outlet() -> None:
    assert _text("Storm hits coast\nFirst paragraph here.\n").outlet is None
    page = ARTICLE_PAGE.replace(
        b"<head>", b'<head><meta property="og:site_name" content="Elsewhere">', 1
    )
    entry = replace(file_doc(page, "text/html", "https://feed.example/a"), source_kind="feed")
    assert extract(entry).outlet is None  # a feed's own source is who published it
