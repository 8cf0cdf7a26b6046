"""Passage groups: every carrier of a wire passage joins its story; boilerplate and
background found but not linked; one row per carrier; counts that agree everywhere.

Wire stories are built from the seed articles' own paragraphs (real news text),
lightly edited per carrier the way outlets edit copy; each carrier adds its own
opening and closing paragraphs of random seed vocabulary, which no other
article shares, so the gold story of every article is known.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from aggregator.cli.reports import list_clusters, match_counts
from aggregator.config import ClusterConfig, Config
from aggregator.dedup.match import Passage
from aggregator.dedup.passages import (
    Host,
    Pair,
    Recording,
    is_edge,
    plan_passages,
    unplaced_paragraphs,
)
from aggregator.digest.select import build_digest
from aggregator.ingest.entries import entry_documents
from aggregator.model import RawDocument
from aggregator.sources.parse import parse_feed
from aggregator.storage.passages import ParagraphPlace, StoredCarrier
from aggregator.storage.plans import NewCarrier, NewPassage, Widening
from tests.clirun import run_cli
from tests.conftest import SEEDS, THIRD_OUTLET, OpenStore, ingest, ingest_docs, text_doc

pytestmark = pytest.mark.both_stores

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
FEED = "https://wire.example/feed.xml"


def _seed(name: str) -> list[str]:
    return next(SEEDS.glob(f"{name}_*.txt")).read_text(encoding="utf-8").splitlines()


VOCABULARY = sorted(
    {w for path in SEEDS.glob("*.txt") for w in re.findall(r"[a-z]{4,}", path.read_text().lower())}
)


def _filler(rng: random.Random, sentences: int = 3) -> str:
    """A paragraph nobody else has: random seed words in sentences of 12-18 words."""
    out = []
    for _ in range(sentences):
        words = rng.choices(VOCABULARY, k=rng.randint(12, 18))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _edit(paragraph: str, rng: random.Random) -> str:
    """A light copy edit: a spelling, curly quotes, one word dropped."""
    text = re.sub(r"\bUS\b", "USA", paragraph) if rng.random() < 0.5 else paragraph
    text = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", text)
    words = text.split(" ")
    if len(words) > 12:
        del words[rng.randrange(2, len(words) - 2)]
    return " ".join(words)


WIRE = _seed("002")[1:5]  # four paragraphs of one agency story


def _carriers(n: int, seed: int = 7) -> list[tuple[str, list[str], datetime]]:
    """(title, paragraphs, published) of `n` articles carrying the wire story."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = [_filler(rng), *(_edit(p, rng) for p in WIRE), _filler(rng, 2)]
        out.append((f"Outlet {i} on the missiles", body, START + timedelta(minutes=7 * i)))
    return out


def _story_sizes(open_store: OpenStore) -> list[int]:
    return [c["size"] for c in list_clusters(open_store())]


@pytest.mark.parametrize("n", [3, 10, 50])
def test_a_wire_story_in_one_folder_is_one_story_of_all_its_carriers(
    config: Config, open_store: OpenStore, n: int
) -> None:
    docs = [
        text_doc("/saved", f"a{i:03d}", title, body, when)
        for i, (title, body, when) in enumerate(_carriers(n))
    ]
    ingest_docs(config, docs)
    assert _story_sizes(open_store) == [n]
    store = open_store()
    # One row per carrier and wire paragraph: linear, not n x n.
    rows = store.execute("SELECT count(*) FROM passage_carriers").fetchone()[0]
    assert rows <= n * len(WIRE)
    assert store.execute("SELECT count(*) FROM passages").fetchone()[0] == len(WIRE)


def _rss(items: list[tuple[str, list[str], datetime]]) -> bytes:
    body = "".join(
        f"<item><guid>wire-{i}</guid><title>{escape(title)}</title>"
        f"<link>https://wire.example/{i}</link>"
        f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f"<description>{escape(''.join(f'<p>{escape(p)}</p>' for p in paragraphs))}"
        "</description></item>"
        for i, (title, paragraphs, when) in enumerate(items)
    )
    return f'<rss version="2.0"><channel><title>Wire</title>{body}</channel></rss>'.encode()


@pytest.mark.parametrize("n", [3, 10, 50])
def test_a_wire_story_in_one_feed_is_one_story_of_all_its_carriers(
    config: Config, open_store: OpenStore, n: int
) -> None:
    feed = parse_feed(_rss(_carriers(n, seed=n)), {}, FEED)
    fetched = START + timedelta(days=1)
    ingest_docs(config, entry_documents(feed.entries, FEED, "Wire", fetched))
    assert _story_sizes(open_store) == [n]


@pytest.mark.slow
def test_two_hundred_carriers_are_one_story_at_one_row_each_per_paragraph(
    config: Config, open_store: OpenStore
) -> None:
    docs = [text_doc("/saved", f"a{i:03d}", t, b, w) for i, (t, b, w) in enumerate(_carriers(200))]
    outcomes = ingest_docs(config, docs)
    assert _story_sizes(open_store) == [200]
    # Each carrier after the first records one match per wire paragraph.
    assert max(o.passages for o in outcomes) <= len(WIRE)


def test_seeds_and_a_third_outlet_are_one_story_with_both_passages(
    config: Config, seeds_and_third: Path, open_store: OpenStore
) -> None:
    ingest(config, seeds_and_third)
    [story] = list_clusters(open_store())
    assert sorted(Path(a["location"]).name[:3] for a in story["articles"]) == ["001", "004", "thi"]
    store = open_store()
    carriers = dict(
        store.execute(
            "SELECT p.id, count(*) FROM passages p JOIN passage_carriers c "
            "ON c.passage_id = p.id GROUP BY p.id"
        ).fetchall()
    )
    assert sorted(carriers.values()) == [2, 3]  # Deir el-Zour; constructive partner
    assert match_counts(store)["linked"] == 3


def test_counts_agree_across_ingest_stats_duplicates_and_clusters(
    config: Config, seeds_and_third: Path
) -> None:
    db = ["--db", str(config.database)]
    ingested = run_cli(*db, "ingest", str(seeds_and_third))
    assert "3 passage matches found, 3 linking stories" in ingested.stdout
    stats = json.loads(run_cli(*db, "stats", "--json").stdout)
    assert stats["passage_matches"]["matches"] == 3 and stats["passage_matches"]["linked"] == 3
    pairs = json.loads(run_cli(*db, "duplicates", "--json").stdout)
    assert len(pairs) == 3
    groups = json.loads(run_cli(*db, "duplicates", "--passages", "--json").stdout)
    assert sum(len(g["carriers"]) - 1 for g in groups) == 3
    story = json.loads(run_cli(*db, "cluster", "1", "--json").stdout)
    assert len(story["passages"]) == 3
    text = run_cli(*db, "duplicates").stdout
    assert text.count("similarity ") == 3 and "constructive partner" in text


def _standfirst_feed() -> list[tuple[str, list[str], datetime]]:
    """30 different stories over 10 days, each framed by the outlet's standfirst and bio."""
    rng = random.Random(30)
    standfirst = (
        "The Daily Dispatch brings you the latest from the region every morning, with analysis "
        "from our correspondents on the ground and the stories behind the headlines."
    )
    bio = (
        "Mara Lindqvist is the Dispatch's regional correspondent and has covered the conflict "
        "since 2012. She previously reported from Beirut, Ankara and Baghdad for other outlets."
    )
    return [
        (
            f"Story {i}",
            [standfirst, _filler(rng), _filler(rng), _filler(rng), bio],
            START + timedelta(hours=8 * i),
        )
        for i in range(30)
    ]


def test_a_feed_s_standfirst_and_bio_link_no_stories_and_are_listed_as_boilerplate(
    config: Config, open_store: OpenStore
) -> None:
    feed = parse_feed(_rss(_standfirst_feed()), {}, FEED)
    ingest_docs(config, entry_documents(feed.entries, FEED, "Dispatch", START + timedelta(days=11)))
    store = open_store()
    assert _story_sizes(open_store) == []
    counts = match_counts(store)
    assert counts["linked"] == 0 and counts["matches"] == 2 * 29
    assert counts["unlinked"]["boilerplate"] == 2 * 29
    listed = json.loads(
        run_cli("--db", str(config.database), "duplicates", "--unlinked", "--json").stdout
    )
    assert {r["reason"] for r in listed} == {"boilerplate"} and len(listed) == 2 * 29


def test_the_same_frame_from_different_outlets_in_one_folder_is_not_boilerplate(
    config: Config, open_store: OpenStore
) -> None:
    """Two outlets carrying one press release as their opening paragraph: one story."""
    release = _seed("003")[1]
    rng = random.Random(3)
    docs = [
        text_doc("/saved", f"o{i}", f"T{i}", [release, _filler(rng), _filler(rng)], START)
        for i in range(3)
    ]
    # The outlets say who they are; the folder is one source.
    docs = [_with_outlet(d, f"Outlet {i}") for i, d in enumerate(docs)]
    ingest_docs(config, docs)
    assert _story_sizes(open_store) == [3]


def _with_outlet(doc: RawDocument, outlet: str) -> RawDocument:
    from dataclasses import replace

    text = doc.content.decode()
    title, _, rest = text.partition("\n")
    front = f"---\ntitle: {title}\nsource: {outlet}\n---\n\n"
    return replace(
        doc,
        media_type="text/markdown",
        content=(front + rest.replace("\n", "\n\n")).encode(),
    )


def test_background_reused_across_unrelated_stories_does_not_chain_them(
    config: Config, open_store: OpenStore
) -> None:
    """Four stories of two articles each, days apart, all quoting one background paragraph."""
    rng = random.Random(4)
    background = _seed("004")[3]
    docs = []
    for story in range(4):
        shared = [_filler(rng, 4), _filler(rng, 4)]
        for copy in range(2):
            when = START + timedelta(days=2 * story, hours=copy)
            body = [_filler(rng), *(_edit(p, rng) for p in shared), background, _filler(rng)]
            docs.append(text_doc("/saved", f"s{story}c{copy}", f"S{story}", body, when))
    ingest_docs(config, docs)
    assert sorted(_story_sizes(open_store)) == [2, 2, 2, 2]
    store = open_store()
    assert store.execute("SELECT count(*) FROM passages WHERE background = 1").fetchone()[0] == 1
    assert match_counts(store)["unlinked"]["background"] >= 1


def test_the_digest_of_the_three_article_story_shows_the_passage_once(
    config: Config, seeds_and_third: Path, open_store: OpenStore
) -> None:
    ingest(config, seeds_and_third)
    store = open_store()
    digest = build_digest(store, START - timedelta(days=3650), START + timedelta(days=3650))
    [story] = [s for s in digest.stories if len(s.articles) == 3]
    additions = {Path(a.entry.location).name[:3]: a for a in story.additions}
    shown = "\n".join([*story.opening, *(p for a in story.additions for p in a.paragraphs)])
    assert shown.count("constructive partner") == 1
    third = THIRD_OUTLET.read_text(encoding="utf-8").splitlines()
    own = [p for p in third[1:] if "constructive partner" not in p]
    assert list(additions["thi"].paragraphs) == own
    assert additions["thi"].repeated == 1


def test_the_window_keeps_a_late_copy_found_but_unlinked(
    config: Config, open_store: OpenStore
) -> None:
    rng = random.Random(5)
    body = [_filler(rng), *WIRE, _filler(rng)]
    docs = [
        text_doc("/saved", "early", "E", body, START),
        text_doc("/saved", "late", "L", [_filler(rng), *WIRE], START + timedelta(days=30)),
    ]
    ingest_docs(config, docs)
    assert _story_sizes(open_store) == []
    counts = match_counts(open_store())
    assert counts["matches"] == len(WIRE) and counts["unlinked"]["window"] == len(WIRE)


@pytest.mark.parametrize(
    ("position", "count", "edge"),
    [(0, 5, True), (4, 5, True), (2, 5, False), (0, 2, False), (1, 3, False), (0, 3, True)],
)
def test_a_frame_is_the_first_and_last_paragraph_of_an_article_long_enough_to_have_one(
    position: int, count: int, edge: bool
) -> None:
    assert is_edge(position, count, ClusterConfig()) is edge


# -- the decisions alone: plan_passages from rows, no store -------------------------------

HOST = Host(
    article_id=9,
    outlet="source:1",
    published_at="2026-11-20T12:00:00Z",
    paragraph_ids=[90, 91, 92, 93, 94],
    unit_paragraphs=[1, 1, 2],
    unit_starts=[0, 50, 0],
    unit_ends=[49, 99, 80],
    unit_ids=[900, 901, 902],
)
NOW = "2026-11-20T12:00:05Z"


def _piece(
    article: int,
    published: str = "2026-11-20T10:00:00Z",
    query: tuple[int, int] = (0, 1),
    span: tuple[int, int] = (0, 99),
    paragraph: int = 0,
    similarity: float = 0.95,
) -> Passage:
    """A piece of HOST matching paragraph `paragraph` of stored article `article`."""
    return Passage(
        other_article_id=article,
        other_source_id=article,
        other_published_at=published,
        query_first=query[0],
        query_last=query[1],
        other_paragraph_id=article * 10 + paragraph,
        other_first_unit_id=article * 100,
        other_last_unit_id=article * 100 + 1,
        other_char_start=span[0],
        other_char_end=span[1],
        similarity=similarity,
    )


def _stored(
    row: int, passage: int, article: int, span: tuple[int, int] = (0, 99), background: bool = False
) -> StoredCarrier:
    return StoredCarrier(row, passage, article, article * 10, span[0], span[1], False, background)


def _plan(pieces: list[Passage], stored: list[StoredCarrier] | None = None) -> Recording:
    """HOST's plan, each stored article its own outlet, each paragraph a place of 5."""
    stored = stored or []
    outlets = {p.other_article_id: f"source:{p.other_article_id}" for p in pieces}
    places = {
        paragraph: ParagraphPlace(paragraph % 10, 5)
        for paragraph in unplaced_paragraphs(pieces, stored)
    }
    return plan_passages(HOST, pieces, outlets, stored, places, ClusterConfig(), NOW)


def test_a_passage_found_in_two_stored_articles_opens_with_the_earliest_as_origin() -> None:
    recording = _plan([_piece(3, "2026-11-20T09:00:00Z"), _piece(2, "2026-11-20T10:00:00Z")])
    [placement] = recording.plan.placements
    assert placement.opened and placement.passage == NewPassage(0) and placement.merged == ()
    origin, host, other = placement.carriers
    assert (origin.article_id, origin.matched, origin.reason) == (3, None, "origin")
    assert (host.article_id, host.matched, host.reason) == (9, NewCarrier(0), "linked")
    assert (host.paragraph_id, host.char_start, host.char_end) == (91, 0, 99)
    assert (host.first_unit_id, host.last_unit_id) == (900, 901)
    # The other stored copy is matched to the new article's row, not to the origin.
    assert (other.article_id, other.matched, other.reason) == (2, NewCarrier(1), "linked")
    assert placement.first_published_at == "2026-11-20T09:00:00Z"
    assert placement.last_published_at == HOST.published_at
    assert recording.pairs == (Pair(NewPassage(0), 3, True), Pair(NewPassage(0), 2, True))
    assert recording.touched == (NewPassage(0),)


def test_a_copy_with_a_row_joins_its_passage_and_widens_the_row() -> None:
    recording = _plan([_piece(2, span=(10, 120))], [_stored(41, 7, 2, span=(20, 99))])
    [placement] = recording.plan.placements
    assert not placement.opened and placement.passage == 7
    assert placement.widened == (Widening(41, 10, 120, 200, 201),)
    [host] = placement.carriers
    assert (host.matched, host.similarity, host.reason) == (41, 0.95, "linked")


def test_copies_in_two_passages_fold_them_into_the_older() -> None:
    stored = [_stored(41, 7, 2), _stored(51, 5, 3)]
    recording = _plan([_piece(2), _piece(3)], stored)
    [placement] = recording.plan.placements
    assert (placement.passage, placement.merged) == (5, (7,))
    assert recording.touched == (5,)
    assert {p.passage for p in recording.pairs} == {5}


def test_a_later_carrier_can_be_matched_to_a_row_the_same_plan_adds() -> None:
    # Paragraph 1 of the host and paragraph 2 both carry pieces of article 2's paragraph.
    first = _piece(2, query=(0, 1), span=(0, 60))
    second = _piece(2, query=(2, 2), span=(40, 99))
    recording = _plan([first, second])
    one, two = recording.plan.placements
    assert one.opened and [c.article_id for c in one.carriers] == [2, 9]
    assert not two.opened and two.passage == NewPassage(0)
    assert two.widened == (Widening(NewCarrier(0), 0, 99, 200, 201),)
    assert [(c.article_id, c.matched) for c in two.carriers] == [(9, NewCarrier(0))]


@pytest.mark.parametrize(
    ("outlet", "paragraph", "similarity", "published", "background", "reason"),
    [
        ("source:1", 0, 0.95, "2026-11-20T10:00:00Z", False, "boilerplate"),
        ("source:1", 0, 0.85, "2026-11-20T10:00:00Z", False, "linked"),  # edited
        ("source:1", 2, 0.95, "2026-11-20T10:00:00Z", False, "linked"),  # not its frame
        ("source:4", 0, 0.95, "2026-11-20T10:00:00Z", False, "linked"),  # another outlet
        ("source:4", 0, 0.95, "2026-11-10T10:00:00Z", False, "window"),
        ("source:4", 0, 0.95, "2026-11-20T10:00:00Z", True, "background"),
    ],
)
def test_the_reason_a_match_records(
    outlet: str, paragraph: int, similarity: float, published: str, background: bool, reason: str
) -> None:
    """HOST's opening paragraph (position 0 of 5) against a stored copy."""
    host = replace(HOST, unit_paragraphs=[0, 0, 2])
    piece = _piece(2, published, paragraph=paragraph, similarity=similarity)
    stored = [_stored(41, 7, 2, background=background)] if background else []
    places = {20 + paragraph: ParagraphPlace(paragraph, 5)}
    recording = plan_passages(host, [piece], {2: outlet}, stored, places, ClusterConfig(), NOW)
    host_row = next(c for c in recording.plan.placements[0].carriers if c.article_id == 9)
    assert host_row.reason == reason
    assert recording.pairs[0].linked is (reason == "linked")
