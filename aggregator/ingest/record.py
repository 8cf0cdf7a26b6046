"""Record: one prepared article stored in the writer's transaction.

What it decides: the article (or its new version), its paragraphs, units and
signatures are written first, so that the passages found next can point at
stored ids; candidates are the batch's look-up hits plus the units another
process stored meanwhile (`lookup_pending`); the matcher decides, records and
clusters the passages (dedup/decide.py); a new article then joins its event
story (stories/layer.py; a new version keeps the story it has). Nothing here commits: the pipeline's
group commit does (pipeline.py), and the index takes the new units only after
it. An article found unchanged when its turn comes (stored meanwhile by an
earlier batch of the same run) is reported unchanged and written no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aggregator.dedup.decide import Matcher
from aggregator.dedup.index import BandIndex
from aggregator.dedup.pairs import concat_pairs
from aggregator.dedup.passages import Host, outlet_key
from aggregator.dedup.signature import Signatures
from aggregator.ingest.prepare import END, PARAGRAPH, POSITION, START
from aggregator.model import Article, RawDocument, format_time
from aggregator.storage.articles import ArticleRecord, StoredArticle, UnitRecord
from aggregator.storage.protocol import Store
from aggregator.stories.layer import Reading, StoryLayer

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one input."""

    location: str
    status: str  # "new", "updated", "unchanged" or "failed"
    article_id: int | None = None
    cluster_id: int | None = None
    passages: int = 0  # passage matches recorded (pairs: this article and an earlier copy)
    linked: int = 0  # of which link two stories
    error: str | None = None
    warning: str | None = None  # what of the article was cut to the caps (stored cut)
    refused: bool = False  # failed because the database refused this article's values


@dataclass(frozen=True, slots=True)
class ReadyArticle:
    """A prepared document, checked and ready to store."""

    doc: RawDocument
    content_hash: str
    article: Article
    spans: I64  # prepare.py: one row per unit
    warning: str | None
    reading: Reading | None = None  # the story layer's reading (prepare.py)


class Recorder:
    """Stores prepared articles and decides their passages."""

    def __init__(
        self, store: Store, index: BandIndex, matcher: Matcher, stories: StoryLayer | None
    ) -> None:
        self.store = store
        self.index = index
        self.matcher = matcher
        self.stories = stories  # None: `stories.enabled = false`
        # What the transaction's first look found of its articles (`look_up`), each
        # taken once: a second entry of the same identity looks again, and sees the first.
        self._found: dict[tuple[str, str], StoredArticle | None] = {}

    def look_up(self, items: Sequence[ReadyArticle]) -> None:
        """Find the stored versions of a transaction's articles in one go (call it
        inside the transaction): a statement per feed, not one per entry."""
        keys = [(item.doc.source_location, item.doc.identity) for item in items]
        found = self.store.articles.find_articles(keys)
        self._found = {key: found.get(key) for key in keys}
        # The ids the changed articles' rows will take, drawn in one go (storage/ids.py).
        need = {"articles": 0, "article_versions": 0, "paragraphs": 0, "units": 0}
        for key, item in zip(keys, items, strict=True):
            stored = self._found[key]
            if stored is not None and stored.content_hash == item.content_hash:
                continue
            need["articles"] += stored is None
            need["article_versions"] += 1
            need["paragraphs"] += len(item.article.paragraphs)
            need["units"] += len(item.spans)
        self.store.ids.expect({table: count for table, count in need.items() if count})

    def record(
        self, item: ReadyArticle, sig: Signatures, hits: tuple[I64, I64]
    ) -> tuple[Outcome, list[int]]:
        """Store one article in the caller's transaction; (outcome, its new unit ids)."""
        doc, article, spans = item.doc, item.article, item.spans
        published = format_time(article.published_at)
        key = (doc.source_location, doc.identity)
        if key in self._found:
            existing = self._found.pop(key)
        else:
            existing = self.store.articles.find_article(*key)
        if existing is not None and existing.content_hash == item.content_hash:
            if self.stories is not None and item.reading is not None:
                self.stories.skip(item.reading)  # another process stored it meanwhile
            return Outcome(doc.location, "unchanged", article_id=existing.id), []
        source_id = self.store.articles.ensure_source(
            doc.source_kind, doc.source_location, doc.source_name
        )
        record = ArticleRecord(
            source_id=source_id,
            identity=doc.identity,
            location=doc.location,
            title=article.title,
            paragraphs=tuple(article.paragraphs),
            published_at=published,
            content_hash=item.content_hash,
            published_raw=doc.published_raw,
            outlet=article.outlet,
        )
        saved = self.store.articles.save_article(record, existing)
        article_id, paragraph_ids = saved.id, saved.paragraph_ids
        unit_ids = self.store.articles.save_units(
            article_id,
            [
                UnitRecord(paragraph_ids[paragraph], position, start, end, words, int(c))
                for (paragraph, position, start, end, words), c in zip(
                    spans.tolist(), sig.shingle_counts, strict=True
                )
            ],
            sig.minhash,
            sig.band_keys,
        )
        host = Host(
            article_id,
            outlet_key(article.outlet, source_id),
            published,
            paragraph_ids,
            spans[:, PARAGRAPH].tolist(),
            spans[:, START].tolist(),
            spans[:, END].tolist(),
            unit_ids,
        )
        passages, linked, cluster_id = self._match(host, spans, sig, hits)
        if self.stories is not None and item.reading is not None:
            if existing is None:
                self.stories.place(article_id, item.reading, doc.location, cluster_id is not None)
            else:
                self.stories.skip(item.reading)  # a new version keeps its story
        # Writers are serialised, so every unit id below ours is already known;
        # ours enter the index when the batch ends.
        if unit_ids:
            self.index.max_unit_id = max(self.index.max_unit_id, unit_ids[-1])
        status = "new" if existing is None else "updated"
        outcome = Outcome(
            doc.location, status, article_id, cluster_id, passages, linked, warning=item.warning
        )
        return outcome, unit_ids

    def _match(
        self, host: Host, spans: I64, sig: Signatures, hits: tuple[I64, I64]
    ) -> tuple[int, int, int | None]:
        """Find, record and cluster the passages this article shares.

        Returns (passage matches, of which linked, cluster id).
        """
        if not len(spans):
            return 0, 0, self.matcher.clusterer.cluster_of(host.article_id)
        query_rows, candidate_ids = concat_pairs(hits, self.index.lookup_pending(sig.band_keys))
        return self.matcher.decide(
            host,
            spans[:, PARAGRAPH],
            spans[:, POSITION],
            sig,
            query_rows,
            candidate_ids,
        )
