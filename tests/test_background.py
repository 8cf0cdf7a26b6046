"""Background: the rule that a passage spread over unrelated stories links none of them,
decided from a passage's counts and the links among its carriers (no store)."""

from __future__ import annotations

import pytest

from aggregator.config import ClusterConfig
from aggregator.dedup.background import looks_spread, spread_apart
from aggregator.storage.passages import PassageSummary, Spread

pytestmark = pytest.mark.both_stores

CONFIG = ClusterConfig(background_min_stories=3, background_min_hours=24)
DAY1, DAY2, DAY3 = "2026-11-01T08:00:00Z", "2026-11-02T07:59:59Z", "2026-11-02T08:00:00Z"


@pytest.mark.parametrize(
    ("background", "carriers", "last", "looks"),
    [
        (False, 3, DAY3, True),
        (False, 2, DAY3, False),  # too few carriers for three stories
        (False, 3, DAY2, False),  # a burst: under 24 hours apart
        (True, 9, DAY3, False),  # already background
    ],
)
def test_only_a_passage_carried_widely_over_time_can_be_background(
    background: bool, carriers: int, last: str, looks: bool
) -> None:
    summary = PassageSummary(1, background, carriers, DAY1, last)
    assert looks_spread(summary, CONFIG) is looks


@pytest.mark.parametrize(
    ("links", "apart"),
    [
        ((), True),  # three articles sharing nothing else: three stories
        (((1, 2),), False),  # 1 and 2 are one story by another passage: two stories
        (((1, 7), (7, 2)), False),  # joined through an article outside the sample
        (((1, 2), (2, 3)), False),  # one story that also carries this passage
    ],
)
def test_background_is_a_passage_whose_carriers_share_nothing_else(
    links: tuple[tuple[int, int], ...], apart: bool
) -> None:
    assert spread_apart(Spread((1, 2, 3, 3), links), CONFIG) is apart
