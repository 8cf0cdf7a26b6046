"""ingest/handoff.py: prepared articles as bytes, from a fetch node to the dedup writer.

What is tested, and why: the dedup writer stores exactly what a fetch node
prepared, so every field of a real prepared batch (the seed articles, with
their story readings and caps warnings) must come back from `decode` as it went
into `encode`, arrays with their dtypes and shapes; the raw bytes alone are
dropped on purpose. And a staged row may be damaged or written by anyone: the
writer sets a payload aside on `HandoffError` and crashes on anything else
(service/roles.py `_store_some`), so every damaged payload must be a
`HandoffError`, and none may be unpickled.
"""

from __future__ import annotations

import json
import pickle
import random
import struct
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from aggregator.config import Config
from aggregator.dedup.signature import Signatures
from aggregator.ingest.batches import _content_hash
from aggregator.ingest.handoff import MAGIC, HandoffError, decode, encode
from aggregator.ingest.prepare import Prepared, prepare_batch
from aggregator.ingest.record import ReadyArticle
from aggregator.model import RawDocument
from tests.conftest import SEEDS, read_all

Batch = tuple[list[ReadyArticle], Signatures]
MARKDOWN = (
    "---\ntitle: Missiles crash in Iran\ndate: 2015-10-08\n"
    "url: https://www.example-wire.test/missiles\n---\n\n"
    "Russian cruise missiles fired from warships in the Caspian Sea crashed in Iran "
    "on Thursday, a US official said, before reaching their Syrian targets.\n\n"
    "Moscow denied that any of its missiles had missed, and said every one of the "
    "twenty six had struck its target as the ministry announced on Wednesday.\n"
)


def _ready(docs: list[RawDocument], config: Config) -> Batch:
    """Prepared as a fetch node prepares them (batches.py `_ingest_batch`)."""
    batch = prepare_batch(docs, config)
    items = []
    for doc, item in zip(docs, batch.items, strict=True):
        assert isinstance(item, Prepared), item
        items.append(
            ReadyArticle(
                doc, _content_hash(doc), item.article, item.spans, item.warning, item.reading
            )
        )
    return items, batch.signatures


@pytest.fixture(scope="module")
def batch() -> Batch:
    """The five seeds (two cut by a paragraph cap, one with a feed's title and dates)
    and a Markdown article with a date and an outlet."""
    config = Config()
    config = replace(config, ingest=replace(config.ingest, max_paragraphs=15))
    assert config.stories.enabled
    docs = [d for d in read_all([SEEDS], config) if isinstance(d, RawDocument)]
    assert len(docs) == 5
    docs[1] = replace(
        docs[1],
        title="Strikes go on — «Syria»",
        published_at=datetime(2015, 11, 20, 9, 30, tzinfo=UTC),
        published_raw="Fri, 20 Nov 2015 09:30:00 +0000 (said)",
    )
    where = "/saved/wire.md"
    modified = datetime(2015, 10, 9, 6, 0, tzinfo=UTC)
    md = RawDocument("folder", "/saved", "saved", where, where, "text/markdown", b"", modified)
    docs.append(replace(md, content=MARKDOWN.encode()))
    return _ready(docs, config)


@pytest.fixture(scope="module")
def payload(batch: Batch) -> bytes:
    return encode(*batch)


def _split(payload: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack_from("<I", payload, 4)
    return json.loads(payload[8 : 8 + length]), payload[8 + length :]


def _join(header: Any, body: bytes) -> bytes:
    head = json.dumps(header).encode("utf-8")
    return MAGIC + struct.pack("<I", len(head)) + head + body


def _decodes_or_refuses(damaged: bytes) -> bool:
    """True if `damaged` decodes, False if it is refused; any other exception escapes."""
    try:
        decode(damaged)
    except HandoffError:
        return False
    return True


def test_the_batch_is_varied_enough_to_test_the_round_trip(batch: Batch) -> None:
    items, signatures = batch
    assert sum(i.warning is not None for i in items) == 2
    assert all(i.reading is not None and i.reading.terms.weights for i in items)
    assert any(i.reading is not None and i.reading.day is not None for i in items)
    wire = items[-1].article
    assert (wire.title, wire.outlet, wire.dated) == (
        "Missiles crash in Iran",
        "example-wire.test",
        True,
    )
    assert len(signatures.minhash) == sum(len(i.spans) for i in items) > 50


def test_every_field_comes_back_but_the_raw_bytes(batch: Batch, payload: bytes) -> None:
    items, signatures = batch
    got, sigs = decode(payload)
    assert len(got) == len(items)
    for before, after in zip(items, got, strict=True):
        for field in fields(RawDocument):
            if field.name not in ("content", "paragraphs"):
                name = field.name
                assert getattr(after.doc, name) == getattr(before.doc, name), name
        # Not sent: the writer stores the extracted article, never re-reads the document.
        assert after.doc.content == b"" and before.doc.content
        assert after.doc.paragraphs is None
        assert after.content_hash == before.content_hash
        assert after.article == before.article
        assert after.article.published_at.utcoffset() == before.article.published_at.utcoffset()
        assert after.warning == before.warning
        assert after.spans.dtype == np.int64 and after.spans.shape == before.spans.shape
        assert np.array_equal(after.spans, before.spans)
        assert before.reading is not None and after.reading is not None
        assert after.reading.terms.weights == before.reading.terms.weights
        assert after.reading.terms.names == before.reading.terms.names
        assert after.reading.terms.kinds == before.reading.terms.kinds
        assert (after.reading.day, after.reading.when) == (before.reading.day, before.reading.when)
    assert got[1].doc.title == "Strikes go on — «Syria»"
    for name in ("minhash", "band_keys", "shingle_counts"):
        a, b = getattr(sigs, name), getattr(signatures, name)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert np.array_equal(a, b), name


def test_an_empty_batch_round_trips(batch: Batch) -> None:
    _, signatures = batch
    empty = Signatures(
        signatures.minhash[:0], signatures.band_keys[:0], signatures.shingle_counts[:0]
    )
    items, sigs = decode(encode([], empty))
    assert items == []
    assert sigs.minhash.shape == (0, signatures.minhash.shape[1])
    assert sigs.band_keys.shape == (0, signatures.band_keys.shape[1])
    assert sigs.shingle_counts.shape == (0,)


def test_another_format_is_refused(payload: bytes) -> None:
    for start in (b"AGH2", b"agh1", b"", b"AGH"):
        with pytest.raises(HandoffError, match="not a handoff payload"):
            decode(start + payload[4:])


def test_a_truncated_payload_is_refused(payload: bytes) -> None:
    cuts = [len(payload) * k // 10 for k in range(10)] + [len(payload) - 1, 6]
    for cut in cuts:
        with pytest.raises(HandoffError):
            decode(payload[:cut])


def test_trailing_bytes_are_refused(payload: bytes) -> None:
    for extra in (b"\0", b"x" * 8, bytes(512 * 4)):
        with pytest.raises(HandoffError, match="left over"):
            decode(payload + extra)


def test_unit_counts_that_do_not_add_up_are_refused(payload: bytes) -> None:
    header, body = _split(payload)
    assert _decodes_or_refuses(_join(header, body))  # the edit alone changes nothing
    for delta in (1, -1):
        edited = json.loads(json.dumps(header))
        edited["articles"][0]["units"] += delta
        with pytest.raises(HandoffError, match="do not add up"):
            decode(_join(edited, body))
    dropped = json.loads(json.dumps(header))
    dropped["articles"].pop()
    with pytest.raises(HandoffError, match="do not add up"):
        decode(_join(dropped, body))


def test_fields_missing_or_of_the_wrong_type_are_refused(payload: bytes) -> None:
    header, body = _split(payload)
    edits: list[Callable[[dict[str, Any]], object]] = [
        lambda h: h.pop("arrays"),
        lambda h: h["arrays"]["minhash"].update(dtype="no such type"),
        lambda h: h["articles"][0].pop("doc"),
        lambda h: h["articles"][0]["doc"].update(modified_at=None),
        lambda h: h["articles"][0].update(published_at="yesterday"),
        lambda h: h["articles"][0]["reading"].update(when=None),
    ]
    for edit in edits:
        edited = json.loads(json.dumps(header))
        edit(edited)
        with pytest.raises(HandoffError):
            decode(_join(edited, body))
    with pytest.raises(HandoffError):
        decode(MAGIC + struct.pack("<I", 3) + b"\xff\xfe\xfd")


def test_flipped_bytes_in_the_arrays_still_decode_as_values(payload: bytes) -> None:
    """The body is raw numbers: a flipped byte there changes one value, not a shape."""
    header, body = _split(payload)
    start = len(payload) - len(body)
    rng = random.Random(7)
    for _ in range(50):
        damaged = bytearray(payload)
        damaged[rng.randrange(start, len(payload))] ^= rng.randrange(1, 256)
        items, sigs = decode(bytes(damaged))
        assert sigs.minhash.shape == tuple(header["arrays"]["minhash"]["shape"])
        assert sum(len(i.spans) for i in items) == len(sigs.minhash)


def test_random_byte_flips_decode_or_are_refused(payload: bytes) -> None:
    rng = random.Random(2024)
    outcomes = [0, 0]
    for _ in range(200):
        damaged = bytearray(payload)
        damaged[rng.randrange(len(payload))] ^= rng.randrange(1, 256)
        outcomes[_decodes_or_refuses(bytes(damaged))] += 1
    assert all(outcomes), outcomes  # both happen: the flips reach header and body


def test_a_term_key_that_overflows_is_refused(payload: bytes) -> None:
    header, body = _split(payload)
    header["articles"][0]["reading"]["weights"][0][0] = 1e999  # written as Infinity
    with pytest.raises(HandoffError):
        decode(_join(header, body))


def test_a_shape_too_large_is_refused(payload: bytes) -> None:
    header, body = _split(payload)
    header["arrays"]["minhash"]["shape"] = [10**20]
    with pytest.raises(HandoffError):
        decode(_join(header, body))


def test_spans_without_dimensions_are_refused(payload: bytes) -> None:
    header, _ = _split(payload)
    header["articles"] = [dict(header["articles"][0], units=1)]
    shapes = {"spans": [], "minhash": [1, 128], "band_keys": [1, 32], "shingle_counts": [1]}
    for name, shape in shapes.items():
        header["arrays"][name]["shape"] = shape
    body = bytes(8 + 128 * 4 + 32 * 4 + 8)
    with pytest.raises(HandoffError):
        decode(_join(header, body))


def test_the_payload_holds_no_pickle(payload: bytes, batch: Batch) -> None:
    assert payload.startswith(MAGIC) and not payload.startswith(b"\x80")
    assert b"\x80\x04\x95" not in payload[:64] and b"\x80\x05\x95" not in payload[:64]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(HandoffError, match="not a handoff payload"):
            decode(pickle.dumps(batch, protocol=protocol))
