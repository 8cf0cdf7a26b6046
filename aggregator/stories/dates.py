"""Dates: the days an article's text says things happened on.

Two reports of one event name the same days; two similar events of one kind
(sibling events: two earthquakes in one region, two rate decisions) name
different ones, and that is often all that tells them apart. So the story
layer reads, from the text:

* **calendar dates**: "October 31", "31 October", "Oct. 31", "October 31,
  2015", "31 Oct 2015". Without a year, the year that puts the date nearest
  before the reference (at most 60 days after it: reports mention what is
  scheduled soon more than what happened a year ago);
* **relative days**, only when the reference is a real publication time
  (`relative=True`; a file's modification time says when it was saved, not
  when it was written): "today", "yesterday", "on Tuesday", "last Tuesday",
  "since Tuesday" (the latest such weekday on or before the reference; "last
  Tuesday" at least a day before), "next Tuesday" (after it).

Days are proleptic Gregorian ordinals (`date.toordinal`). Phrases like "last
week" or "in March" are too vague to separate events and are not read.
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
}
_SHORT = {name[:3]: number for name, number in _MONTHS.items()} | {"sept": 9}
_MONTH = (
    r"(january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_YEAR = r"(?:,?\s+(\d{4})\b)?"
_ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_ORDINAL}\b{_YEAR}", re.I)
_DAY_MONTH = re.compile(rf"\b{_ORDINAL}\s+(?:of\s+)?{_MONTH}\b{_YEAR}", re.I)
_WEEKDAY = re.compile(
    rf"\b(?:(on|last|since|this|next|until|by)\s+)?({'|'.join(_DAYS)})\b",
    re.I,
)
_NEAR = re.compile(r"\b(today|yesterday|tomorrow)\b", re.I)

# A date without a year is put at most this many days after the reference.
AHEAD_DAYS = 60


def _month(name: str) -> int:
    name = name.lower().rstrip(".")
    return _MONTHS.get(name) or _SHORT[name if name == "sept" else name[:3]]


def _day(year: int, month: int, day: int) -> int | None:
    try:
        return date(year, month, day).toordinal()
    except ValueError:
        return None


def _calendar(year: str | None, month: int, day: int, reference: date) -> int | None:
    if year:
        return _day(int(year), month, day)
    for candidate in (reference.year + 1, reference.year, reference.year - 1):
        found = _day(candidate, month, day)
        if found is not None and found - reference.toordinal() <= AHEAD_DAYS:
            return found
    return None


def stated_days(text: str, reference: date, relative: bool) -> set[int]:
    """The days `text` names, read against `reference` (see the module's rules)."""
    days: set[int] = set()
    for month, day, year in _MONTH_DAY.findall(text):
        if (found := _calendar(year, _month(month), int(day), reference)) is not None:
            days.add(found)
    for day, month, year in _DAY_MONTH.findall(text):
        if (found := _calendar(year, _month(month), int(day), reference)) is not None:
            days.add(found)
    if not relative:
        return days
    today = reference.toordinal()
    for word in _NEAR.findall(text):
        days.add(today + {"today": 0, "yesterday": -1, "tomorrow": 1}[word.lower()])
    for lead, weekday in _WEEKDAY.findall(text):
        back = (reference.weekday() - _DAYS.index(weekday.lower())) % 7
        lead = lead.lower()
        if lead == "next":
            days.add(today + (7 - back if back else 7))
        elif lead in ("until", "by") and back:
            days.add(today + 7 - back)
        else:
            days.add(today - (back or (7 if lead == "last" else 0)))
    return days


def event_day(stated: set[int], published: date | None) -> int | None:
    """The day an article reports on: the latest day it states that is not after
    its publication (a report looks back; earlier days it names are background,
    such as the previous event a sibling story recalls), else its publication
    day; with no publication time, the latest day it states. None if nothing."""
    if published is None:
        return max(stated) if stated else None
    limit = published.toordinal()
    before = [d for d in stated if d <= limit]
    return max(before) if before else limit
