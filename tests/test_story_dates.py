"""Stories: the days a text states, read against a reference day (aggregator/stories/dates.py).

Expected days are worked out here from the calendar (datetime arithmetic on
the reference), not read back from the code.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from aggregator.stories.dates import event_day, stated_days


def days(*values: date) -> set[int]:
    return {d.toordinal() for d in values}


# Thursday 8 October 2015, the day after Russia's Caspian missile strikes.
THURSDAY = date(2015, 10, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Missiles were fired on October 7.", date(2015, 10, 7)),
        ("It began on 30 September, officials said.", date(2015, 9, 30)),
        ("The summit on Oct. 31 was cancelled.", date(2015, 10, 31)),
        ("signed on Sept. 3rd", date(2015, 9, 3)),
        ("the raid of December 7, 2014", date(2014, 12, 7)),
        ("a court date of 2 November", date(2015, 11, 2)),
    ],
)
def test_calendar_dates(text: str, expected: date) -> None:
    assert stated_days(text, THURSDAY, relative=False) == days(expected)


def test_a_date_without_a_year_is_the_nearest_before_or_soon_after() -> None:
    # Early January: "December 28" is last week, not next December.
    assert stated_days("on December 28", date(2016, 1, 5), False) == days(date(2015, 12, 28))
    # A date up to 60 days ahead is taken as ahead (a scheduled vote).
    assert stated_days("the vote on February 20", date(2016, 1, 5), False) == days(
        date(2016, 2, 20)
    )
    # Further ahead than that is last year's.
    assert stated_days("on June 1", date(2016, 1, 5), False) == days(date(2015, 6, 1))


def test_impossible_dates_are_not_days() -> None:
    assert stated_days("on February 30 and 31 April", THURSDAY, False) == set()


def test_relative_days_against_a_publication_time() -> None:
    wednesday = THURSDAY - timedelta(days=1)
    assert stated_days("fired on Wednesday", THURSDAY, True) == days(wednesday)
    assert stated_days("said yesterday", THURSDAY, True) == days(wednesday)
    assert stated_days("today", THURSDAY, True) == days(THURSDAY)
    # "Thursday" on a Thursday is today; "last Thursday" is a week ago.
    assert stated_days("on Thursday", THURSDAY, True) == days(THURSDAY)
    assert stated_days("last Thursday", THURSDAY, True) == days(THURSDAY - timedelta(days=7))
    assert stated_days("since Monday", THURSDAY, True) == days(THURSDAY - timedelta(days=3))
    assert stated_days("talks next Monday", THURSDAY, True) == days(THURSDAY + timedelta(days=4))


def test_relative_days_are_not_read_against_a_file_time() -> None:
    """A file's modification time is not when its text was written."""
    assert stated_days("on Wednesday, yesterday and today", THURSDAY, False) == set()
    assert stated_days("on Wednesday, October 7", THURSDAY, False) == days(date(2015, 10, 7))


def test_every_weekday_resolves_to_the_latest_on_or_before_the_reference() -> None:
    """Brute force over a fortnight of references: the day found is that weekday,
    at most six days back."""
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    for offset in range(14):
        reference = date(2025, 3, 1) + timedelta(days=offset)
        for number, name in enumerate(names):
            (found,) = stated_days(f"on {name}", reference, True)
            day = date.fromordinal(found)
            assert day.weekday() == number
            assert 0 <= (reference - day).days <= 6


def test_the_event_day_is_the_latest_stated_day_up_to_publication() -> None:
    published = date(2025, 3, 14)
    recalled = (published - timedelta(days=12)).toordinal()  # an earlier event recalled
    reported = (published - timedelta(days=1)).toordinal()
    scheduled = (published + timedelta(days=9)).toordinal()  # a hearing to come
    assert event_day({recalled, reported, scheduled}, published) == reported
    assert event_day({scheduled}, published) == published.toordinal()
    assert event_day(set(), published) == published.toordinal()
    # No publication time: the latest day the text states, or nothing.
    assert event_day({recalled, scheduled}, None) == scheduled
    assert event_day(set(), None) is None
