"""Configuration: the settings of every stage as frozen dataclasses, and their limits.

Each section validates itself and names the key at fault (`config key
feeds.per_host: ...`). Reading and writing the TOML file is `configfile.py`.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.errors import ConfigError
from aggregator.model import MEDIA_TYPES
from aggregator.urls import parse_allow

# How the MinHash permutations (datasketch's scheme) and the shingles and band keys
# are derived (signature.py); stored with the index (store.py) so that a change
# there can never silently mix two kinds of key in one database.
SCHEME = "affine32"
SHINGLE_SCHEME = "xxh32-words-v1"


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """What a stored signature means; fixed for the life of a database.

    `bands * rows` permutations feed the LSH index; all `num_perm` are used
    when a candidate is verified.
    """

    num_perm: int = 128
    bands: int = 32
    rows: int = 4
    seed: int = 1
    shingle_words: int = 2

    def validate(self) -> None:
        _require(self.num_perm >= 16, "dedup.num_perm", "must be at least 16")
        _require(self.bands >= 1 and self.rows >= 1, "dedup.bands", "bands and rows must be >= 1")
        _require(
            self.bands * self.rows <= self.num_perm,
            "dedup.bands",
            f"bands * rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})",
        )
        _require(0 <= self.seed < 2**32, "dedup.seed", "must be in [0, 2**32)")
        _require(1 <= self.shingle_words <= 5, "dedup.shingle_words", "must be between 1 and 5")


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """How passages are cut and when two of them count as the same."""

    minhash: MinHashParams = field(default_factory=MinHashParams)
    min_unit_words: int = 12
    # Sentences of at least this many words end their merged unit and are matched
    # on their own too (0: off), so that a copied sentence is found whatever it
    # was merged with (segment.py).
    min_sentence_words: int = 8
    jaccard_threshold: float = 0.5
    containment_threshold: float = 0.8
    min_shared_shingles: int = 8
    # Units kept in the in-memory LSH index (about 0.9 KiB each in the daemon's RSS);
    # the oldest leave it beyond this. 1,000,000: about 0.9 GiB.
    index_max_units: int = 1_000_000

    def validate(self) -> None:
        self.minhash.validate()
        _require(3 <= self.min_unit_words <= 200, "dedup.min_unit_words", "must be 3..200")
        _require(
            self.min_sentence_words == 0 or 3 <= self.min_sentence_words <= 200,
            "dedup.min_sentence_words",
            "must be 0 (off) or 3..200",
        )
        for name in ("jaccard_threshold", "containment_threshold"):
            value = getattr(self, name)
            _require(0.0 < value <= 1.0, f"dedup.{name}", "must be in (0, 1]")
        _require(self.min_shared_shingles >= 1, "dedup.min_shared_shingles", "must be >= 1")
        _require(self.index_max_units >= 1000, "dedup.index_max_units", "must be >= 1000")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """When a found passage joins two articles into one story (rules: passages.py)."""

    window_days: float = 3.0
    canonical: str = "earliest"
    # Boilerplate: a near-identical passage at the edge of two articles of one outlet.
    boilerplate_edge_paragraphs: int = 1
    boilerplate_min_similarity: float = 0.9
    # Background: a passage spread over this many otherwise unrelated stories,
    # published at least this many hours apart, links none of them.
    background_min_stories: int = 3
    background_min_hours: float = 24.0
    # No longer used (its count rule hid wire copy); accepted so old files load.
    boilerplate_min_articles: int = field(default=0, compare=False)

    def validate(self) -> None:
        _require(self.window_days > 0, "clusters.window_days", "must be > 0")
        _require(
            self.canonical in ("earliest", "longest"),
            "clusters.canonical",
            "must be 'earliest' or 'longest'",
        )
        _require(
            0 <= self.boilerplate_edge_paragraphs <= 10,
            "clusters.boilerplate_edge_paragraphs",
            "must be 0..10",
        )
        _require(
            0.0 < self.boilerplate_min_similarity <= 1.0,
            "clusters.boilerplate_min_similarity",
            "must be in (0, 1]",
        )
        _require(self.background_min_stories >= 2, "clusters.background_min_stories", ">= 2")
        _require(self.background_min_hours >= 0, "clusters.background_min_hours", ">= 0")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Limits on what the folder source will read, and on one article from any source.

    The article caps apply after extraction to every article, from a file or a
    feed (caps.py cuts, as it reads, and says so in a warning), so that no headline or
    body, however large its source, reaches the database unbounded. The
    defaults sit far above real news: headlines run to a few hundred
    characters, a long-form piece to about 100,000 characters in a few hundred
    paragraphs; what exceeds them is a broken or hostile source, not an article.
    """

    max_file_bytes: int = 10 * 1024 * 1024
    extensions: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm")
    max_title_chars: int = 1_000
    max_paragraphs: int = 2_000
    # The stored text: paragraphs joined by blank lines (about 170,000 words).
    max_text_chars: int = 1024 * 1024
    # Processes preparing (extract, segment, sign) the next batch while one is
    # stored (ingest/prepare.py); 0: one per core.
    workers: int = 0

    def validate(self) -> None:
        _require(self.max_file_bytes >= 1024, "ingest.max_file_bytes", "must be >= 1024")
        _require(self.max_title_chars >= 20, "ingest.max_title_chars", "must be >= 20")
        _require(self.max_paragraphs >= 1, "ingest.max_paragraphs", "must be >= 1")
        _require(self.max_text_chars >= 1024, "ingest.max_text_chars", "must be >= 1024")
        _require(0 <= self.workers <= 64, "ingest.workers", "must be 0 to 64")
        unknown = [e for e in self.extensions if e.lower() not in MEDIA_TYPES]
        _require(
            not unknown,
            "ingest.extensions",
            f"unknown extension {unknown[0] if unknown else ''!r} "
            f"(known: {', '.join(sorted(MEDIA_TYPES))})",
        )


@dataclass(frozen=True, slots=True)
class FeedsConfig:
    """Polling: which feeds, how often, and what the fetcher may reach."""

    urls: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    min_interval_minutes: float = 15.0
    max_interval_hours: float = 24.0
    default_interval_minutes: float = 60.0
    max_entries_per_poll: int = 200
    max_bytes: int = 15 * 1024 * 1024
    deadline_seconds: float = 30.0
    concurrency: int = 16
    per_host: int = 2
    parse_workers: int = 0  # 0: one per core

    def validate(self) -> None:
        try:
            parse_allow(self.allow)
        except ValueError as e:
            raise ConfigError(f"config key feeds.allow: {e}") from e
        bad = [u for u in self.urls if not u.strip().lower().startswith(("http://", "https://"))]
        _require(not bad, "feeds.urls", f"{bad[0] if bad else ''!r} is not an http(s) URL")
        _require(self.min_interval_minutes > 0, "feeds.min_interval_minutes", "must be > 0")
        _require(
            self.max_interval_hours * 60 >= self.min_interval_minutes,
            "feeds.max_interval_hours",
            "must be at least min_interval_minutes",
        )
        _require(self.max_entries_per_poll >= 1, "feeds.max_entries_per_poll", "must be >= 1")
        _require(self.max_bytes >= 1024, "feeds.max_bytes", "must be >= 1024")
        _require(self.deadline_seconds > 0, "feeds.deadline_seconds", "must be > 0")
        _require(1 <= self.concurrency <= 256, "feeds.concurrency", "must be 1 to 256")
        _require(
            1 <= self.per_host <= self.concurrency, "feeds.per_host", "must be 1 to concurrency"
        )
        _require(0 <= self.parse_workers <= 64, "feeds.parse_workers", "must be 0 to 64")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The background service (`aggregator run`): its jobs, their bounds, shutdown."""

    tick_seconds: float = 60.0
    batch_size: int = 50
    tick_budget_seconds: float = 300.0
    scan_minutes: float = 5.0
    digest_time: str = "07:00"
    timezone: str = "UTC"
    stop_grace_seconds: float = 10.0
    job_timeout_seconds: float = 900.0
    # Several nodes (`run --role`, PostgreSQL): how long a fetch node's claim on a
    # feed outlives its last heartbeat, and how often nodes beat.
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 5.0
    # How much a fetch node lowers its CPU priority (nice): on a machine it shares
    # with the dedup writer, the writer (the deployment's one serial stage) comes first.
    fetch_nice: int = 10

    def validate(self) -> None:
        _require(self.tick_seconds >= 0.1, "daemon.tick_seconds", "must be >= 0.1")
        _require(self.heartbeat_seconds >= 0.1, "daemon.heartbeat_seconds", "must be >= 0.1")
        _require(
            self.lease_seconds >= 3 * self.heartbeat_seconds,
            "daemon.lease_seconds",
            "must be at least 3 x heartbeat_seconds",
        )
        _require(self.batch_size >= 1, "daemon.batch_size", "must be >= 1")
        _require(0 <= self.fetch_nice <= 19, "daemon.fetch_nice", "must be in 0..19")
        _require(self.tick_budget_seconds > 0, "daemon.tick_budget_seconds", "must be > 0")
        _require(self.scan_minutes > 0, "daemon.scan_minutes", "must be > 0")
        _require(self.stop_grace_seconds > 0, "daemon.stop_grace_seconds", "must be > 0")
        _require(
            self.job_timeout_seconds >= self.tick_budget_seconds,
            "daemon.job_timeout_seconds",
            "must be at least tick_budget_seconds",
        )
        hour, sep, minute = self.digest_time.partition(":")
        _require(
            bool(sep)
            and hour.isascii()
            and minute.isascii()
            and len(hour) <= 2
            and len(minute) <= 2
            and hour.isdigit()
            and minute.isdigit()
            and int(hour) < 24
            and int(minute) < 60,
            "daemon.digest_time",
            f'{self.digest_time!r} is not a time of day like "07:30"',
        )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory
            raise ConfigError(
                f"config key daemon.timezone: unknown time zone {self.timezone!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class StoriesConfig:
    """Event stories: which articles report one event (rules: stories/assign.py;
    the measurements behind the defaults: docs/benchmarks.md, "Event stories")."""

    enabled: bool = True
    threshold: float = 0.08
    # With no day to compare (the article or the story undated), words alone decide,
    # and they must agree more.
    undated_threshold: float = 0.4
    window_days: float = 3.0
    date_tolerance_days: int = 2
    date_penalty: float = 0.1
    quiet_articles: int = 150
    title_weight: float = 2.0
    name_weight: float = 2.0
    number_weight: float = 1.5
    lead_words: int = 250

    def validate(self) -> None:
        for key in ("threshold", "undated_threshold"):
            _require(0.0 < getattr(self, key) <= 1.0, f"stories.{key}", "must be in (0, 1]")
        _require(self.window_days > 0, "stories.window_days", "must be > 0")
        _require(self.date_tolerance_days >= 0, "stories.date_tolerance_days", "must be >= 0")
        _require(0.0 <= self.date_penalty <= 1.0, "stories.date_penalty", "must be in [0, 1]")
        _require(self.quiet_articles >= 0, "stories.quiet_articles", "must be >= 0 (0: off)")
        for key in ("title_weight", "name_weight", "number_weight"):
            _require(getattr(self, key) > 0, f"stories.{key}", "must be > 0")
        _require(self.lead_words >= 1, "stories.lead_words", "must be >= 1")


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """The daily digest: where its files go, and whom it is mailed to."""

    directory: Path = Path("digests")
    keep: int = 30
    formats: tuple[str, ...] = ("html", "md")
    atom_file: str = "stories.atom"
    atom_days: float = 3.0
    # ...and at most the newest this many arrivals: a feed reader wants recent
    # entries, and the daemon rebuilds the feed after every job that stored something.
    atom_max_articles: int = 500
    mail_to: tuple[str, ...] = ()
    mail_from: str = "aggregator@localhost"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"

    def validate(self) -> None:
        _require(self.keep >= 1, "digest.keep", "must be >= 1")
        bad = [f for f in self.formats if f not in DIGEST_FORMATS]
        _require(not bad, "digest.formats", f"{bad[:1]} not one of {', '.join(DIGEST_FORMATS)}")
        _require(self.atom_days > 0, "digest.atom_days", "must be > 0")
        _require(self.atom_max_articles >= 1, "digest.atom_max_articles", "must be >= 1")
        _require(
            self.smtp_security in ("starttls", "tls", "none"),
            "digest.smtp_security",
            "must be starttls, tls or none",
        )
        _require(1 <= self.smtp_port <= 65535, "digest.smtp_port", "must be a port number")
        addresses = (*self.mail_to, self.mail_from)
        bad = [a for a in addresses if "@" not in a or any(c in a for c in "\r\n<>,; ")]
        _require(not bad, "digest.mail_to", f"{bad[:1]} is not a plain mail address")
        _require(
            not self.mail_to or bool(self.smtp_host),
            "digest.smtp_host",
            "must be set when mail_to is",
        )


DIGEST_FORMATS = ("html", "md", "text", "atom")


@dataclass(frozen=True, slots=True)
class PostgresURL:
    """A PostgreSQL database, named by a libpq URL: `postgresql://user@host:5432/name`."""

    url: str

    def __str__(self) -> str:
        """The URL as logs and messages show it: any password is masked."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{user}:***@{host}").geturl()


Database = Path | PostgresURL
"""Where the store lives: a SQLite file (the default) or a PostgreSQL database."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def database_location(text: str) -> Database:
    """A `database` setting (config key, --db, AGGREGATOR_DB): a URL or a file path."""
    if text.startswith(POSTGRES_SCHEMES):
        return PostgresURL(text)
    scheme, found, _ = text.partition("://")
    if found and scheme.isidentifier():
        raise ConfigError(
            f"database {text.split('@')[-1]!r}: {scheme}:// is not a supported database; "
            "give a SQLite file path or a postgresql:// URL"
        )
    return Path(text)


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration of one run."""

    database: Database = Path("aggregator.db")
    folders: tuple[Path, ...] = ()
    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    clusters: ClusterConfig = field(default_factory=ClusterConfig)
    stories: StoriesConfig = field(default_factory=StoriesConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    path: Path | None = None

    def validate(self) -> None:
        self.feeds.validate()
        self.digest.validate()
        self.daemon.validate()
        self.ingest.validate()
        self.dedup.validate()
        self.clusters.validate()
        self.stories.validate()


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key}: {message}")
