"""Test feeds as data: `tests/data/feeds/NAME.xml` (or `.json`) beside `NAME.expected.json`.

The expected file is written by hand from reading the feed, not dumped from our
parser. Its keys:

* `content_type`: how a server labels the document (sent as Content-Type);
* `format`: feedparser's name for the format (`rss20`, `atom10`...), null for JSON Feed;
* `feed`: `title`, `link`, `ttl_minutes`;
* `entries`, in feed order: `guid`, `link`, `title`, `published` (ISO 8601 UTC),
  `date_as_written` (the entry's date text, published else updated), `summary`,
  `content` (HTML or text as the feed gives it, unescaped once) and `paragraphs`
  (the text a reader sees). null where the feed has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
_EXPECTED = ".expected.json"


def _documents() -> dict[str, Path]:
    return {
        path.name.rsplit(".", 1)[0]: path
        for path in FEEDS.iterdir()
        if path.suffix in (".xml", ".json") and not path.name.endswith(_EXPECTED)
    }


def names() -> list[str]:
    """Every feed's name, sorted; each has its document and its expected result."""
    documents = _documents()
    expected = {p.name.removesuffix(_EXPECTED) for p in FEEDS.glob("*" + _EXPECTED)}
    if documents.keys() != expected:
        raise AssertionError(
            f"{FEEDS}: feeds without an expected result: {sorted(documents.keys() - expected)};"
            f" expected results without a feed: {sorted(expected - documents.keys())}"
        )
    return sorted(documents)


def document(name: str) -> bytes:
    """The feed document's bytes, as a server would send them."""
    return _documents()[name].read_bytes()


def expected(name: str) -> dict[str, Any]:
    """The expected parse result (see the module docstring)."""
    result: dict[str, Any] = json.loads((FEEDS / (name + _EXPECTED)).read_text(encoding="utf-8"))
    return result
