"""The digest grouped by event story (digest/select.py `Event`): the labelled set of
full articles (tests/fixtures/events) ingested as dated Markdown files, each
labelled event expected once, under one heading, with every one of its reports;
the labels are the oracle, not the story layer's own output."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config
from aggregator.digest.render import to_html, to_markdown, to_text
from aggregator.digest.select import Digest, build_digest
from aggregator.storage.store import Store
from tests.conftest import ingest

pytestmark = pytest.mark.both_stores

EVENTS = Path(__file__).parent / "fixtures" / "events"
EXTRA = "zz_extra-copy.md"  # carries a paragraph of COPIED word for word: a passage story
COPIED = "001_what-thursdays-rate-cut-means.txt"


def _write_labelled(folder: Path) -> dict[str, str]:
    """The labelled set as dated Markdown files, plus EXTRA; file title -> event label."""
    labels = json.loads((EVENTS / "labels.json").read_text(encoding="utf-8"))["articles"]
    folder.mkdir()
    gold: dict[str, str] = {}
    for name, label in labels.items():
        title, *blocks = (EVENTS / name).read_text(encoding="utf-8").strip().split("\n\n")
        front = f"---\ndate: {label['published']}\nsource: {label['outlet']}\n---\n"
        body = "\n\n".join(" ".join(b.split()) for b in blocks)
        (folder / f"{Path(name).stem}.md").write_text(f"{front}# {title}\n\n{body}\n", "utf-8")
        gold[title.strip()] = label["event"]
    title, *blocks = (EVENTS / COPIED).read_text(encoding="utf-8").strip().split("\n\n")
    copied = max(blocks, key=len)
    assert len(copied.split()) >= 40, "a paragraph long enough to be a passage"
    extra_title = "Rate cut: what the bank said"
    (folder / EXTRA).write_text(
        f"---\ndate: {labels[COPIED]['published']}\nsource: Copy Desk\n---\n"
        f"# {extra_title}\n\nA desk summary of the bank's decision for our readers.\n\n"
        f"{' '.join(copied.split())}\n",
        "utf-8",
    )
    gold[extra_title] = labels[COPIED]["event"]
    return gold


@pytest.fixture
def grouped(config: Config, tmp_path: Path) -> tuple[Digest, dict[str, str]]:
    gold = _write_labelled(tmp_path / "labelled")
    ingest(config, tmp_path / "labelled")
    now = datetime.now(UTC)
    with Store(config.database, config.dedup.minhash) as store:
        digest = build_digest(store, now - timedelta(days=1), now + timedelta(days=1))
    return digest, gold


def _titles(event_titles: list[str]) -> list[str]:
    return sorted(t.strip() for t in event_titles)


def test_each_labelled_event_is_one_group_with_all_its_reports(
    grouped: tuple[Digest, dict[str, str]],
) -> None:
    digest, gold = grouped
    shown: list[list[str]] = []
    for event in digest.events:
        titles = [a.title for s in event.stories for a in s.articles]
        titles += [s.entry.title for s in event.singles]
        shown.append(_titles(titles))
    expected = {}
    for title, label in gold.items():
        expected.setdefault(label, []).append(title)
    assert sorted(shown) == sorted(_titles(t) for t in expected.values())
    # The copy made a passage story; its event shows it first, then the other reports.
    [with_copy] = [e for e in digest.events if e.stories]
    assert (
        sorted(a.title for a in with_copy.stories[0].articles)[0] == "Rate cut: what the bank said"
    )
    assert with_copy.singles and with_copy.grouped
    assert digest.also_reported == ()  # every event had three or more reports


def test_the_rendered_digest_shows_each_event_under_one_heading(
    grouped: tuple[Digest, dict[str, str]],
) -> None:
    digest, gold = grouped
    markdown = to_markdown(digest)
    sections = re.split(r"^## ", markdown, flags=re.M)[1:]
    assert len(sections) == len(set(gold.values()))
    for section in sections:
        labels = Counter(label for title, label in gold.items() if f" {title}" in f" {section}")
        assert len(labels) == 1, section[:200]  # no other event's title inside
    html = to_html(digest)
    assert html.count('<section class="event">') == len(sections)
    text = to_text(digest)
    numbered = [line for line in text.splitlines() if re.match(r"\d+\. ", line)]
    assert len(numbered) == len(sections)
