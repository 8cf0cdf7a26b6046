"""Configuration file: where it is found, how its TOML becomes a Config, and back.

Relative paths in the file are resolved against the file's own folder, so the
same configuration works from any working directory (a shell, `make`, systemd).
Unknown keys are errors rather than warnings: a misspelt threshold that is
silently ignored is worse than a refusal to start.

Where the file comes from, first match wins: `--config`, `$AGGREGATOR_CONFIG`,
`./config/aggregator.toml`, `/etc/aggregator/aggregator.toml`; with none of
them the built-in defaults apply (no folders, `./aggregator.db`).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from aggregator.config import (
    ClusterConfig,
    Config,
    DaemonConfig,
    DedupConfig,
    DigestConfig,
    FeedsConfig,
    IngestConfig,
    MinHashParams,
    PostgresURL,
    StoriesConfig,
    database_location,
)
from aggregator.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

SEARCH_PATHS = (Path("config/aggregator.toml"), Path("/etc/aggregator/aggregator.toml"))


def find_config(explicit: Path | None) -> Path | None:
    """Return the configuration file to read, or None for built-in defaults."""
    if explicit is not None:
        return explicit
    env = os.environ.get("AGGREGATOR_CONFIG")
    if env:
        return Path(env)
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> Config:
    """Read and validate a configuration file; None gives the defaults."""
    if path is None:
        config = Config()
        config.validate()
        return config
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path}: not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path}: cannot read: {e}") from e
    except (tomllib.TOMLDecodeError, ValueError) as e:  # ValueError: a 4,300+ digit int
        raise ConfigError(f"config file {path}: invalid TOML: {e}") from e
    return parse_config(raw, base=path.resolve().parent, path=path)


def parse_config(raw: dict[str, Any], base: Path, path: Path | None = None) -> Config:
    """Build a Config from parsed TOML, resolving relative paths against `base`."""
    sections = {"ingest", "dedup", "clusters", "stories", "feeds", "daemon", "digest"}
    _check_keys(raw, {"database", "folders", *sections}, "")
    database = database_location(_typed(raw, "database", str, "", "aggregator.db"))
    folders_raw = raw.get("folders", [])
    if not isinstance(folders_raw, list) or not all(isinstance(f, str) for f in folders_raw):
        raise ConfigError("config key folders: must be a list of paths")
    ingest = _section(raw, "ingest", IngestConfig)
    dedup_raw = dict(_table(raw, "dedup"))
    minhash_keys = {f.name for f in fields(MinHashParams)}
    # The section is one table to the user, two dataclasses here: check it whole.
    _check_keys(
        dedup_raw, {f.name for f in fields(DedupConfig)} - {"minhash"} | minhash_keys, "dedup."
    )
    minhash = _build(
        MinHashParams, {k: dedup_raw.pop(k) for k in list(dedup_raw) if k in minhash_keys}, "dedup"
    )
    dedup = _build(DedupConfig, dedup_raw, "dedup", minhash=minhash)
    clusters = _section(raw, "clusters", ClusterConfig)
    if clusters.boilerplate_min_articles:
        log.warning(
            "config %s: clusters.boilerplate_min_articles is no longer used (boilerplate is "
            "told by where a passage sits: clusters.boilerplate_edge_paragraphs); remove it",
            path or "(no file)",
        )
    stories = _section(raw, "stories", StoriesConfig)
    feeds = _section(raw, "feeds", FeedsConfig)
    daemon = _section(raw, "daemon", DaemonConfig)
    digest_raw = dict(_table(raw, "digest"))
    _check_keys(digest_raw, {f.name for f in fields(DigestConfig)}, "digest.")
    directory = _typed(digest_raw, "directory", str, "digest.", "digests")
    digest_raw.pop("directory", None)
    where = _resolve(Path(directory), base, "digest.directory")
    digest = _build(DigestConfig, digest_raw, "digest", directory=where)
    config = Config(
        database=(
            database if isinstance(database, PostgresURL) else _resolve(database, base, "database")
        ),
        folders=tuple(_resolve(Path(f), base, "folders") for f in folders_raw),
        ingest=ingest,
        dedup=dedup,
        clusters=clusters,
        stories=stories,
        feeds=feeds,
        daemon=daemon,
        digest=digest,
        path=path,
    )
    config.validate()
    return config


def _resolve(path: Path, base: Path, key: str) -> Path:
    try:
        path = path.expanduser()
        return (path if path.is_absolute() else base / path).resolve()
    except (ValueError, RuntimeError, OSError) as e:  # a NUL byte, ~nosuchuser
        raise ConfigError(f"config key {key}: {str(path)!r} is not a usable path: {e}") from e


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config key {name}: must be a table")
    return value


def _section(raw: dict[str, Any], name: str, cls: type[T]) -> T:
    return _build(cls, dict(_table(raw, name)), name)


def _build(cls: type[T], values: dict[str, Any], prefix: str, **extra: Any) -> T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    _check_keys(values, set(known) - set(extra), prefix + ".")
    defaults = cls()
    kwargs: dict[str, Any] = dict(extra)
    for key, value in values.items():
        expected = getattr(defaults, key)
        kwargs[key] = _coerce(value, expected, f"{prefix}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, expected: Any, key: str) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(expected, bool) and isinstance(value, bool):
        return value
    if isinstance(expected, int) and not isinstance(expected, bool) and isinstance(value, int):
        if not isinstance(value, bool):
            return value
    if isinstance(expected, float) and number:
        return float(value)
    if isinstance(expected, str) and isinstance(value, str):
        return value
    if isinstance(expected, tuple) and isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return tuple(value)
    raise ConfigError(f"config key {key}: expected {type(expected).__name__}, got {value!r}")


def _typed(raw: dict[str, Any], key: str, kind: type, prefix: str, default: Any) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, kind):
        raise ConfigError(f"config key {prefix}{key}: expected {kind.__name__}, got {value!r}")
    return value


def _check_keys(values: dict[str, Any], allowed: set[str], prefix: str) -> None:
    """A ConfigError for the first unknown key: the closest allowed key if one is
    close (a typo: `num_perms` for `num_perm`), and every key of the section."""
    unknown = sorted(set(values) - allowed)
    if unknown:
        key = unknown[0] if unknown[0].isprintable() else repr(unknown[0])
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        raise ConfigError(
            f"config key {prefix}{key}: unknown key ({hint}allowed: {', '.join(sorted(allowed))})"
        )


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value)) if isinstance(value, str | Path) else str(value)


def render_config(config: Config) -> str:
    """The effective configuration as TOML, for `aggregator config show`."""
    mh = config.dedup.minhash

    def quoted(value: object) -> str:
        # A JSON string is a valid TOML basic string: quotes, backslashes and
        # control characters come out escaped.
        return json.dumps(str(value))

    lines = [
        f"# effective configuration (from {config.path or 'built-in defaults'})",
        f"database = {quoted(config.database)}",
        "folders = [" + ", ".join(quoted(f) for f in config.folders) + "]",
        "",
        "[ingest]",
        f"max_file_bytes = {config.ingest.max_file_bytes}",
        "extensions = [" + ", ".join(quoted(e) for e in config.ingest.extensions) + "]",
        f"max_title_chars = {config.ingest.max_title_chars}",
        f"max_paragraphs = {config.ingest.max_paragraphs}",
        f"max_text_chars = {config.ingest.max_text_chars}",
        "",
        "[dedup]",
        f"num_perm = {mh.num_perm}",
        f"bands = {mh.bands}",
        f"rows = {mh.rows}",
        f"seed = {mh.seed}",
        f"shingle_words = {mh.shingle_words}",
        f"min_unit_words = {config.dedup.min_unit_words}",
        f"min_sentence_words = {config.dedup.min_sentence_words}",
        f"jaccard_threshold = {config.dedup.jaccard_threshold}",
        f"containment_threshold = {config.dedup.containment_threshold}",
        f"min_shared_shingles = {config.dedup.min_shared_shingles}",
        f"index_max_units = {config.dedup.index_max_units}",
        "",
        "[clusters]",
        f"window_days = {config.clusters.window_days}",
        f"canonical = {quoted(config.clusters.canonical)}",
        f"boilerplate_edge_paragraphs = {config.clusters.boilerplate_edge_paragraphs}",
        f"boilerplate_min_similarity = {config.clusters.boilerplate_min_similarity}",
        f"background_min_stories = {config.clusters.background_min_stories}",
        f"background_min_hours = {config.clusters.background_min_hours}",
        "",
        "[feeds]",
        "urls = [" + ", ".join(quoted(u) for u in config.feeds.urls) + "]",
        "allow = [" + ", ".join(quoted(a) for a in config.feeds.allow) + "]",
        f"min_interval_minutes = {config.feeds.min_interval_minutes}",
        f"max_interval_hours = {config.feeds.max_interval_hours}",
        f"default_interval_minutes = {config.feeds.default_interval_minutes}",
        f"max_entries_per_poll = {config.feeds.max_entries_per_poll}",
        f"max_bytes = {config.feeds.max_bytes}",
        f"deadline_seconds = {config.feeds.deadline_seconds}",
        f"concurrency = {config.feeds.concurrency}",
        f"per_host = {config.feeds.per_host}",
        f"parse_workers = {config.feeds.parse_workers}",
        "",
        "[stories]",
        *(f"{f.name} = {_toml(getattr(config.stories, f.name))}" for f in fields(StoriesConfig)),
        "",
        "[daemon]",
        *(f"{f.name} = {_toml(getattr(config.daemon, f.name))}" for f in fields(DaemonConfig)),
        "",
        "[digest]",
        *(f"{f.name} = {_toml(getattr(config.digest, f.name))}" for f in fields(DigestConfig)),
    ]
    return "\n".join(lines) + "\n"
