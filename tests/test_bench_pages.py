"""The nodes benchmark's summary-only feeds (`bench.feeds.build_feeds(pages=...)`): every
entry is a teaser whose link is an article page the server holds, and the page's main
text is the story. Read with feedparser and trafilatura, not with our own readers."""

from __future__ import annotations

from urllib.parse import urlsplit

import feedparser
import trafilatura

from aggregator.sources.fulltext import SUMMARY_WORDS

BASES = ("http://127.0.0.1:8001", "http://127.0.0.2:8002", "http://127.0.0.3:8003")


def test_summary_only_feeds_link_every_entry_to_a_served_article_page() -> None:
    from bench.feeds import build_feeds

    plain = build_feeds(6, 5)
    teasers = build_feeds(6, 5, pages=BASES)
    assert plain.pages == {}
    hosts = set()
    for full_doc, doc in zip(plain.docs, teasers.docs, strict=True):
        full = feedparser.parse(full_doc.body).entries
        entries = feedparser.parse(doc.body).entries
        assert [e.id for e in entries] == [e.id for e in full]
        for entry, with_text in zip(entries, full, strict=True):
            assert "content" not in entry
            assert len(entry.summary.split()) < SUMMARY_WORDS  # a teaser: fetched in full
            link = urlsplit(entry.link)
            hosts.add(link.netloc)
            page = teasers.pages[link.path].decode("utf-8")
            text = trafilatura.extract(page) or ""
            paragraphs = [
                p for p in trafilatura.extract(with_text.content[0].value).split("\n") if p
            ]
            assert all(p in text for p in paragraphs)
            assert "All rights reserved" not in text  # the furniture is not the article
    assert hosts == {urlsplit(b).netloc for b in BASES}
