"""Entry text: a feed entry's HTML read into paragraphs inside the parse worker.

What it decides, and why:

* **Where entry HTML is parsed.** Right after feedparser, in the same worker
  process and under the same deadline (`workers.py`), never on the poller's
  thread, which is the one that writes the database: an entry whose HTML
  costs lxml seconds (100,000 attributes on one element took 15 s before the
  limits of `htmllimits.py`) then delays nothing else, and a worker past its
  deadline is killed. `read_feed` is what the pool runs: `parse_feed`, then
  `read_entry` on every entry (all of them, not only the first
  `max_entries_per_poll`: the worker does not know the cap, and lxml reads a
  typical entry in a fraction of a millisecond, against feedparser's much
  larger share of the same worker's time).
* **How the paragraphs travel.** A `ReadEntry` is the `FeedEntry` with its
  paragraphs, the HTML they were read from (`read_from`), and what of that
  HTML was over the limits (`html_warning`). It passes through the poller
  (and the full-text stage, which puts a page's paragraphs there) as the entry
  it is; `entry_documents` hands the paragraphs on in the `RawDocument`, and
  `extract` takes them instead of parsing the HTML again. The stored bytes,
  and so the content hash that decides "unchanged", stay the entry's HTML.
  An entry whose HTML changed after it was read (`read_from` differs) or that
  was never read is read again where it is extracted: the same result, only
  on another thread.
* **Warnings.** `html_warning` collects the entries' warnings into one line
  for the feed's `last_warning`: how many entries were over the limits, and
  the last one's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from aggregator.sources.parse import FeedEntry, ParsedFeed, parse_feed


@dataclass(frozen=True, slots=True)
class ReadEntry(FeedEntry):
    """A feed entry with the paragraphs of its HTML (`entry_html`), read in a worker."""

    paragraphs: tuple[str, ...] = ()
    read_from: str = ""
    html_warning: str | None = None


def read_feed(content: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    """`parse_feed`, with every entry's HTML read into paragraphs (`read_entry`)."""
    parsed = parse_feed(content, headers, url)
    return replace(parsed, entries=tuple(read_entry(e) for e in parsed.entries))


def entry_html(entry: FeedEntry) -> str:
    """The HTML an entry is read from: its full content, else its summary."""
    return entry.content or entry.summary or ""


def read_entry(entry: FeedEntry) -> FeedEntry:
    """The entry as a ReadEntry; as it is if its HTML cannot be read here (then
    `extract` reads it again and reports the failure for that entry alone)."""
    from aggregator.sources.htmltext import read_fragment  # lxml: only where entries are read

    html = entry_html(entry)
    try:
        paragraphs, warning = read_fragment(html.encode("utf-8"))
    except Exception:  # the same call fails again, for this entry alone, in extract
        return entry
    return with_text(entry, tuple(paragraphs), html, f"entry HTML: {warning}" if warning else None)


def with_text(
    entry: FeedEntry, paragraphs: tuple[str, ...], html: str, warning: str | None
) -> ReadEntry:
    """`entry` with `html` as its content or summary's text, read into `paragraphs`."""
    values = {f.name: getattr(entry, f.name) for f in fields(FeedEntry)}
    return ReadEntry(**values, paragraphs=paragraphs, read_from=html, html_warning=warning)


def entry_paragraphs(entry: FeedEntry) -> tuple[str, ...] | None:
    """The paragraphs read from the entry's HTML as it is now; None if not read."""
    if isinstance(entry, ReadEntry) and entry.read_from == entry_html(entry):
        return entry.paragraphs
    return None


def html_warning(entries: Sequence[FeedEntry]) -> str | None:
    """One line on the entries whose HTML (or page) was over the limits, or None."""
    problems = [e.html_warning for e in entries if isinstance(e, ReadEntry) and e.html_warning]
    if not problems:
        return None
    count = f"{len(problems)} of {len(entries)} entries"
    return f"HTML over the limits in {count}, last: {problems[-1]}"
