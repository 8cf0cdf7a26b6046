"""The error tree.

Every error the package raises on purpose derives from `AggregatorError`, lives
here, and carries enough context (a path, a key, a URL) to be printed as one
line::

    AggregatorError
    +-- ConfigError          a bad configuration file or key
    +-- SourceError          a file or folder that cannot be read as input
    |   +-- ExtractError     input that was read but holds no usable article
    +-- StoreError           the database cannot be opened, migrated or written
    |   +-- ParameterMismatchError   built with other MinHash parameters
    |   +-- CorruptDatabaseError     damaged, or not a database (left untouched)
    |   +-- RefusedError     the values of one write refused (too large, a constraint)
    +-- FeedError            one feed could not be used (recorded on its source)
    |   +-- FetchError       refused by policy, timed out, too large, network error
    |   +-- ParseError       not a usable feed document
    +-- WorkerError          work in a worker process past its deadline, or it died
    +-- SourceConfigError    a feed cannot be added, found or imported as asked
    |   +-- FeedCheckError   `sources add`: the URL is no feed (and links none)
    |       +-- SeveralFeedsError   the page links several feeds; none picked
    +-- DigestError          a digest cannot be made, written or sent as asked
    +-- AlreadyRunningError  another daemon holds the database
    +-- BrowseError          the browser view cannot start

The pipeline catches `SourceError` and `ExtractError` per input, reports them
and goes on; the CLI turns any `AggregatorError` into a one-line message and a
non-zero exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.model import FeedLink


class AggregatorError(Exception):
    """Base class of every error raised on purpose by the package."""


class ConfigError(AggregatorError):
    """The configuration file is missing, malformed, or has a bad key."""


class SourceError(AggregatorError):
    """An input file or folder cannot be read (type, size, permissions, path)."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        # Errors cross process boundaries (the parser pool); rebuild from the parts.
        return type(self), (self.location, self.reason)


class ExtractError(SourceError):
    """Input was read but holds no usable article (undecodable, binary, empty)."""


class StoreError(AggregatorError):
    """The database cannot be opened, migrated or written."""


class ParameterMismatchError(StoreError):
    """The database was built with MinHash parameters other than the configured ones."""


class RefusedError(StoreError):
    """The database refused the values of one statement (too large, a constraint, a type).

    A verdict on what was written, not on the store: the article that carried
    the values fails, and the next one is written as usual. `why` is the
    engine's own message, on one line.
    """

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


class FeedError(AggregatorError):
    """One feed could not be used; `stage` says where, `reason` why (one line)."""

    stage = "feed"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{self.stage} {url}: {reason}")
        self.url = url
        self.reason = reason

    def __reduce__(self) -> tuple[type[FeedError], tuple[str, str]]:
        return type(self), (self.url, self.reason)


class FetchError(FeedError):
    """A fetch failed: refused by policy, timed out, too large, or a network error."""

    stage = "fetch"


class ParseError(FeedError):
    """A document that is not a usable feed."""

    stage = "parse"


class CorruptDatabaseError(StoreError):
    """The database file is damaged (or not a database); it was left untouched."""


class WorkerError(AggregatorError):
    """A `call` that did not finish: past its deadline, or its worker died; `reason`
    reads after the work's name ("reading the page took longer than 60 s; stopped")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceConfigError(AggregatorError):
    """A feed cannot be added, found or imported as asked."""


class FeedCheckError(SourceConfigError):
    """`url` cannot be subscribed: `reason` says why, in one line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot subscribe to {url}: {reason}")
        self.url = url
        self.reason = reason


class SeveralFeedsError(FeedCheckError):
    """The page at `url` links several feeds (`links`) and none was picked."""

    def __init__(self, url: str, links: tuple[FeedLink, ...]) -> None:
        super().__init__(
            url,
            f"the page links {len(links)} feeds, none added; run again with the URL of "
            "the one you want, or add --pick N",
        )
        self.links = links


class DigestError(AggregatorError):
    """A digest cannot be made, written or sent as asked."""


class AlreadyRunningError(AggregatorError):
    """Another daemon holds the database."""


class BrowseError(AggregatorError):
    """The browser view cannot start: Datasette missing, no database, port taken."""
