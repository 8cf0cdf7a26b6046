"""The error tree.

Every error the package raises on purpose derives from `AggregatorError` and
carries enough context (a path, a key, a URL) to be printed as one line::

    AggregatorError
    +-- ConfigError        a bad configuration file or key
    +-- SourceError        a file or folder that cannot be read as input
    +-- ExtractError       input that was read but holds no usable article
    +-- StoreError         the database cannot be opened, migrated or written
    |   +-- ParameterMismatchError   the database was built with other MinHash parameters
    +-- FeedError          one feed could not be used (recorded on its source)
        +-- FetchError     refused by policy, timed out, too large, network error
        +-- ParseError     not a usable feed document

The pipeline catches `SourceError` and `ExtractError` per input, reports them
and goes on; the CLI turns any `AggregatorError` into a one-line message and a
non-zero exit.
"""

from __future__ import annotations


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
