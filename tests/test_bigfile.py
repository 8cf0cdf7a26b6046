"""Issue 13, item 5: a file up to `max_file_bytes` is read only as far as the caps
need, keeps what reading all of it would keep, and its warning says truthfully
what was cut, from how much to how much.

Memory and time are measured by bench/bigfile.py (docs/benchmarks.md, "Large
files"), never here: these tests pin the behaviour.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import Config, IngestConfig
from aggregator.dedup.signature import MAX_SHINGLES, Signer
from aggregator.sources import extract as extract_module
from aggregator.sources import plaintext
from aggregator.sources.extract import extract, extract_within
from aggregator.sources.pagecut import cut_page
from aggregator.storage.store import Store
from tests.conftest import file_doc, ingest

CAPS = IngestConfig()  # 2,000 paragraphs, 1 MiB of text
WORDS = "storm coast harbour council minister river bridge market school winter".split()


def _sentence(i: int, words: int = 9) -> str:
    """A distinct sentence of `words` words (numbered, so no two paragraphs match)."""
    body = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words - 1))
    return f"Item {i} {body}."


def _bodies(config: Config) -> dict[str, str]:
    with Store(config.database, config.dedup.minhash) as store:
        rows = store.execute("SELECT location, body FROM articles").fetchall()
    return {Path(location).name: body for location, body in rows}


def test_a_big_markdown_file_is_read_only_as_far_as_the_caps_need(
    config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """3 MiB of short paragraphs: the first chunk (2 MiB) holds more than the 2,000
    paragraphs kept, so the rest is never parsed; the warning counts what was read
    ("at least") and says how much of the file that was."""
    paragraphs = [_sentence(i) for i in range(60_000)]
    text = "---\ntitle: A big file\n---\n\n" + "\n\n".join(paragraphs) + "\n"
    assert len(text) > 3 * 1024 * 1024 > extract_module.MARKDOWN_CHUNK
    folder = tmp_path / "wire"
    folder.mkdir()
    (folder / "big.md").write_text(text, encoding="utf-8")
    caplog.set_level(logging.WARNING, "aggregator.ingest.pipeline")

    (outcome,) = ingest(config, folder)

    assert outcome.status == "new"
    found = re.fullmatch(
        r"paragraphs cut from at least ([\d,]+) to 2,000; "
        r"read the first ([\d,]+) of ([\d,]+) characters",
        outcome.warning or "",
    )
    assert found, outcome.warning
    counted, read, size = (int(g.replace(",", "")) for g in found.groups())
    assert size == len(text)
    assert 2_000 < counted < len(paragraphs), "counted in the part read"
    assert extract_module.MARKDOWN_CHUNK <= read <= extract_module.MARKDOWN_CHUNK + 100
    assert _bodies(config)["big.md"] == "\n\n".join(paragraphs[:2_000])
    assert f"big.md: {outcome.warning}" in caplog.text


# Blocks whose extent a chunk boundary could change: fences and HTML blocks holding
# blank lines, lists with continued items, quotes, setext headings, long paragraphs.
MARKDOWN_BLOCKS = [
    "# The title",
    "Intro paragraph with *emphasis* and a [link](https://example.com).",
    "```\ncode line\n\nmore code after a blank line\n```",
    "<div>\n<p>Boxed text.</p>\n\n<p>Second box.</p>\n</div>",
    "<!-- a comment\n\nwith a blank line -->",
    "- first item\n- second item\n\n  a continued paragraph of the second item\n- third",
    "> quoted line\n> more quote\n\n> another quote",
    "Setext heading\n==============",
    "A long paragraph " + "that goes on " * 40 + "and ends.",
    "[ref]: https://example.com/ref",
    "Uses the [earlier reference][ref] here.",
    "1. one\n2. two\n3. three",
    "~~~\nfenced with tildes\n~~~",
]


@pytest.mark.parametrize("chunk", [40, 97, 300, 1000])
def test_markdown_read_in_chunks_gives_what_one_parse_gives(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each block type on either side of every chunk boundary (chunks far smaller
    than a block, too): the paragraphs and title are those of a whole parse."""
    text = "\n\n".join(MARKDOWN_BLOCKS * 6) + "\n"
    doc = file_doc(text.encode(), "text/markdown")
    whole = extract(doc)
    monkeypatch.setattr(extract_module, "MARKDOWN_CHUNK", chunk)
    assert extract(doc) == whole
    # ...and a list or a paragraph longer than a chunk.
    for block in ("\n".join(f"- item {i}" for i in range(200)), "word " * 500):
        doc = file_doc(("# T\n\n" + block + "\n\nAfter.\n").encode(), "text/markdown")
        monkeypatch.setattr(extract_module, "MARKDOWN_CHUNK", 10**9)
        whole = extract(doc)
        monkeypatch.setattr(extract_module, "MARKDOWN_CHUNK", chunk)
        assert extract(doc) == whole


def _page(paragraphs: list[str], head: str = "", tail: str = "") -> bytes:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        "<html><head><title>A big page</title></head><body>"
        f"{head}<article><h1>A big page</h1>\n{body}</article>{tail}</body></html>"
    ).encode()


def test_a_big_html_page_is_cut_before_trafilatura_reads_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """5,000 paragraphs and a tail of 260,000 tags: the page is cut after twice the
    caps' 2,000 paragraphs, so the tail is never read (the tag limit that would cut
    it says nothing); the article keeps the same 2,000 paragraphs, and the warning
    says how much of the page was read."""
    paragraphs = [_sentence(i) for i in range(5_000)]
    content = _page(paragraphs, tail="<i></i>" * 260_000)
    caplog.set_level(logging.WARNING)

    article, warning = extract_within(file_doc(content, "text/html"), CAPS)

    assert article.paragraphs == tuple(paragraphs[:2_000])
    found = re.fullmatch(
        r"paragraphs cut from at least ([\d,]+) to 2,000; "
        r"read the first ([\d,]+) of ([\d,]+) bytes",
        warning or "",
    )
    assert found, warning
    counted, read, size = (int(g.replace(",", "")) for g in found.groups())
    assert size == len(content)
    assert counted == 3_999, "4,000 paragraph tags read, the <h1> being the title"
    assert content[read:].startswith(b"<p>" + paragraphs[3_999].encode())
    assert "more than 250,000 tags" not in caplog.text


def test_ordinary_pages_are_not_cut_and_scripts_comments_and_styles_are_not_text() -> None:
    """A page short of twice the caps is passed on as the same bytes, however large its
    scripts, styles and comments; the cut, when there is one, falls before a block."""
    bulky = (
        "<script>" + "var x = '<p>not text</p>';" * 120_000 + "</script>"
        "<style>" + "p { color: red } " * 80_000 + "</style>"
        "<!-- " + "<p>a comment</p>" * 80_000 + " -->"
    )
    content = _page([_sentence(i) for i in range(100)], head=bulky)
    assert len(content) > 2 * CAPS.max_text_chars
    assert cut_page(content, CAPS) == (content, None)
    assert cut_page(content, CAPS)[0] is content

    caps = IngestConfig(max_paragraphs=10, max_text_chars=1024)
    cut, extent = cut_page(content, caps)
    assert extent == (len(cut), len(content), "bytes")
    assert content[len(cut) :].startswith(b"<p>Item ")
    assert cut.count(b"<p>Item ") == 2 * 10 - 1, "the <h1> counts as a paragraph too"


def test_a_big_text_file_is_counted_to_its_end() -> None:
    """Plain text is counted to its end without being kept: the figures are exact,
    as they were when the whole file was split into paragraphs."""
    paragraphs = [_sentence(i, 5 + i % 30) for i in range(40_000)]
    text = "\n\n".join(paragraphs)
    article, warning = extract_within(file_doc(text.encode(), "text/plain"), CAPS)
    assert article.paragraphs == tuple(paragraphs[:2_000])
    assert warning == "paragraphs cut from 40,000 to 2,000"

    one_line = " ".join(paragraphs)  # 1.6 MB, no newline: one paragraph
    article, warning = extract_within(file_doc(one_line.encode(), "text/plain"), CAPS)
    (kept,) = article.paragraphs
    assert kept.endswith("…") and one_line.startswith(kept[:-1] + " ")
    assert warning == f"text cut from {len(one_line):,} to {len(kept):,} characters"
    assert article.title == paragraphs[0]


def test_a_huge_headline_and_its_repeat_are_read_whole() -> None:
    """The headline rule and the dropped repeat of the title hold for paragraphs past
    the text cap too: a one-line first block of 20 long words is the title, and a
    second block equal to it is dropped (the third kept), as with a whole read."""
    headline = " ".join(w * 8_000 for w in WORDS * 2)  # 20 words, 1.1 MB
    text = f"{headline}\n\n{headline}\n\nThe body."
    doc = file_doc(text.encode(), "text/plain")
    assert extract(doc).paragraphs == ("The body.",)
    article, warning = extract_within(doc, CAPS)
    assert article.paragraphs == ("The body.",)
    assert warning == f"title cut from {len(headline):,} to 1,000 characters"


_WORD = st.sampled_from(["Storm", "hits", "coast.", "Mr.", "a,", "end;", "x:", "😀", "é"])
_SPACE = st.sampled_from([" ", "  ", "\t", "\u00a0", "\u2028", "\u3000", "\x1c", "\x85", "\f"])
_LINE = st.lists(st.tuples(_WORD, _SPACE).map("".join), max_size=8).map("".join)
_BREAK = st.sampled_from(["\n", "\n", "\n\n", "\n \t\n", "\n\u00a0\n", "\n\v\n", "\n\n\n"])
_PIECES = st.sampled_from(["Storm", "coast.", "x:", " ", "\t", "\n", "\n\n", "\n \n", "\u3000"])
TEXTS = st.one_of(
    st.lists(st.tuples(_LINE, _BREAK).map("".join), max_size=15).map("".join),
    st.lists(_PIECES, max_size=60).map("".join),
)


def _reference(text: str) -> tuple[str, list[str]]:
    """Title and paragraphs by the plain-text rules, applied to the whole text at once
    (as extract.py did before issue 13, item 5)."""
    stripped = text.strip()
    if not stripped:
        return "", []
    if plaintext.BLANK_LINE.search(stripped):
        raw = plaintext.BLANK_LINE.split(stripped)
        blocks = [plaintext.clean(b) for b in raw if b.strip()]
        first = raw[0].strip()
    else:
        blocks = [plaintext.clean(line) for line in stripped.split("\n") if line.strip()]
        first = blocks[0]
    headline = (
        len(blocks) > 1
        and "\n" not in first
        and len(first.split()) <= 20
        and not first.endswith((".", ",", ";", ":"))
    )
    return (blocks[0], blocks[1:]) if headline else ("", blocks)


@given(
    TEXTS,
    st.integers(0, 6),
    st.sampled_from([0, 3, 40, 10**9]),
)
def test_plain_text_read_lazily_follows_the_rules(text: str, taken: int, room: int) -> None:
    """Title and paragraphs as the rules give them for the whole text; a paragraph
    cleaned in windows (here of 7 characters) is its first `room + 1` characters or
    more; `rest` counts what was not taken exactly."""
    title, paragraphs = _reference(text)
    window = plaintext._WINDOW
    try:
        plaintext._WINDOW = 7
        reader = plaintext.PlainReader(text)
        assert reader.title == title
        for expected in paragraphs[:taken]:
            item = reader.take(room)
            assert item is not None
            built, length = item
            assert length == len(expected)
            assert expected.startswith(built) and len(built) >= min(room + 1, length)
        left = paragraphs[taken:]
        assert reader.rest() == (len(left), sum(map(len, left)))
    finally:
        plaintext._WINDOW = window


def test_signing_in_slices_gives_the_same_rows() -> None:
    """Units past `MAX_SHINGLES` shingles in one call, one of them longer than that
    alone, are signed in slices; every row is the one the unit gets signed alone."""
    signer = Signer(Config().dedup.minhash)
    rng = np.random.default_rng(13)
    units = [tuple(f"w{t}" for t in rng.integers(0, 5_000, size=n)) for n in (700,) * 60]
    units.insert(30, tuple(f"w{t}" for t in rng.integers(0, 5_000, size=MAX_SHINGLES + 500)))
    assert sum(len(u) for u in units) > 2 * MAX_SHINGLES

    together = signer.sign(units)
    alone = [signer.sign([unit]) for unit in units]

    assert np.array_equal(together.minhash, np.vstack([a.minhash for a in alone]))
    assert np.array_equal(together.band_keys, np.vstack([a.band_keys for a in alone]))
    assert together.shingle_counts.tolist() == [int(a.shingle_counts[0]) for a in alone]
