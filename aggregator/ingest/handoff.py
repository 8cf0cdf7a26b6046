"""Handoff: prepared articles as bytes, from a fetch node to the dedup writer.

A fetch node (`aggregator run --role fetch`) does everything to a feed's
entries that needs no index: extraction, segmentation, MinHash signatures and
the story layer's reading. What it hands the one dedup writer through the
database (`staged` rows, storage/nodes.py) is that work's result, so the
writer only indexes, verifies, clusters and stores. What the format decides:

* **Data, never code.** A JSON header (the documents' fields, the articles,
  the readings) and the NumPy arrays as raw little-endian bytes, with their
  dtypes and shapes in the header: reading a payload runs nothing it holds,
  unlike pickle, so a row written by a node of another version, or by anyone
  who can write to the table, can at worst be refused.
* **What the writer needs, no more.** A document's raw bytes are not sent: the
  writer decides "unchanged" by the content hash computed on the fetch node,
  and stores the extracted article, never the bytes.
* **Versioned.** The first bytes name the format; a payload of an unknown one
  (or a damaged one) is a `HandoffError`, which the writer reports and sets
  aside (the row stays, and `status` counts it, for a person to look at),
  never a crash.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from aggregator.dedup.signature import Signatures
from aggregator.errors import AggregatorError
from aggregator.ingest.record import ReadyArticle
from aggregator.model import Article, RawDocument
from aggregator.stories.layer import Reading
from aggregator.stories.terms import Terms

MAGIC = b"AGH1"
_LENGTH = struct.Struct("<I")
_ARRAYS = ("spans", "minhash", "band_keys", "shingle_counts")


class HandoffError(AggregatorError):
    """A staged payload that cannot be read (another format, or damaged)."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _doc(doc: RawDocument) -> dict[str, Any]:
    return {
        "source_kind": doc.source_kind,
        "source_location": doc.source_location,
        "source_name": doc.source_name,
        "identity": doc.identity,
        "location": doc.location,
        "media_type": doc.media_type,
        "modified_at": _time(doc.modified_at),
        "title": doc.title,
        "published_at": _time(doc.published_at),
        "published_raw": doc.published_raw,
    }


def _reading(reading: Reading | None) -> dict[str, Any] | None:
    if reading is None:
        return None
    terms = reading.terms
    return {
        "weights": [[k, w] for k, w in terms.weights.items()],
        "names": [[k, n] for k, n in terms.names.items()],
        "kinds": [[k, n] for k, n in terms.kinds.items()],
        "day": reading.day,
        "when": reading.when,
    }


def encode(items: list[ReadyArticle], signatures: Signatures) -> bytes:
    """One batch of prepared articles and their units' signatures, as bytes."""
    arrays: dict[str, npt.NDArray[Any]] = {
        "spans": np.concatenate([i.spans for i in items]) if items else np.zeros((0, 5), np.int64),
        "minhash": signatures.minhash,
        "band_keys": signatures.band_keys,
        "shingle_counts": signatures.shingle_counts,
    }
    header = {
        "articles": [
            {
                "doc": _doc(i.doc),
                "content_hash": i.content_hash,
                "title": i.article.title,
                "published_at": _time(i.article.published_at),
                "paragraphs": list(i.article.paragraphs),
                "outlet": i.article.outlet,
                "dated": i.article.dated,
                "warning": i.warning,
                "units": len(i.spans),
                "reading": _reading(i.reading),
            }
            for i in items
        ],
        "arrays": {
            name: {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape)}
            for name, a in arrays.items()
        },
    }
    head = orjson.dumps(header)
    body = b"".join(
        np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes() for a in arrays.values()
    )
    return MAGIC + _LENGTH.pack(len(head)) + head + body


def decode(payload: bytes) -> tuple[list[ReadyArticle], Signatures]:
    """What `encode` made; a `HandoffError` for anything else."""
    if payload[:4] != MAGIC:
        raise HandoffError(f"not a handoff payload of this version ({payload[:4]!r})")
    try:
        (length,) = _LENGTH.unpack_from(payload, 4)
        header = orjson.loads(payload[8 : 8 + length])
        arrays, at = {}, 8 + length
        for name in _ARRAYS:
            spec = header["arrays"][name]
            dtype = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"]))
            data = np.frombuffer(payload, dtype, count, at).reshape(spec["shape"])
            arrays[name] = data.astype(dtype.newbyteorder("="))
            at += count * dtype.itemsize
        if at != len(payload):
            raise ValueError(f"{len(payload) - at} bytes left over")
        dimensions = {"spans": 2, "minhash": 2, "band_keys": 2, "shingle_counts": 1}
        for name, ndim in dimensions.items():
            if arrays[name].ndim != ndim:
                raise ValueError(f"{name} has {arrays[name].ndim} dimensions, not {ndim}")
        if arrays["spans"].shape[1] != 5:
            raise ValueError("spans are not rows of 5")
        items, row = [], 0
        for entry in header["articles"]:
            units = int(entry["units"])
            items.append(_item(entry, arrays["spans"][row : row + units]))
            row += units
        if row != len(arrays["spans"]) or row != len(arrays["minhash"]):
            raise ValueError("unit counts do not add up")
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        OverflowError,  # a number too large for its place (1e999 is read as infinity)
        struct.error,
        UnicodeDecodeError,
    ) as e:
        raise HandoffError(f"damaged handoff payload: {e}") from e
    signatures = Signatures(arrays["minhash"], arrays["band_keys"], arrays["shingle_counts"])
    return items, signatures


def _item(entry: dict[str, Any], spans: npt.NDArray[np.int64]) -> ReadyArticle:
    d = entry["doc"]
    modified = _parse_time(d["modified_at"])
    published = _parse_time(entry["published_at"])
    if modified is None or published is None:
        raise ValueError("a document without its times")
    doc = RawDocument(
        source_kind=d["source_kind"],
        source_location=d["source_location"],
        source_name=d["source_name"],
        identity=d["identity"],
        location=d["location"],
        media_type=d["media_type"],
        content=b"",
        modified_at=modified,
        title=d["title"],
        published_at=_parse_time(d["published_at"]),
        published_raw=d["published_raw"],
    )
    article = Article(
        entry["title"], published, tuple(entry["paragraphs"]), entry["outlet"], entry["dated"]
    )
    reading = None
    if (r := entry["reading"]) is not None:
        terms = Terms(
            {int(k): float(w) for k, w in r["weights"]},
            {int(k): str(n) for k, n in r["names"]},
            {int(k): str(n) for k, n in r["kinds"]},
        )
        reading = Reading(terms, None if r["day"] is None else int(r["day"]), float(r["when"]))
    return ReadyArticle(doc, entry["content_hash"], article, spans, entry["warning"], reading)
