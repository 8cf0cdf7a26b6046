"""The user's own files: configuration files (TOML: known keys with fuzzed values,
some of the wrong type, the odd unknown key or section) and OPML subscription lists;
and the OPML samples of past bugs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any
from xml.sax.saxutils import quoteattr

from hypothesis import strategies as st

from .strategies import (
    DECLARED,
    DOCTYPES,
    ENCODINGS,
    encode,
    fuzz_text,
    maybe_mutated,
    xml_text,
)

# ---------------------------------------------------------------------------------------
# Configuration files.

TIMEZONES = [
    "UTC",
    "Europe/Paris",
    "America/Argentina/Buenos_Aires",
    "Europe",
    "Europe/",
    "/etc/passwd",
    "../../etc/localtime",
    "Etc/GMT+14",
    "utc",
    "x" * 300,
    "",
    "\x00",
]
PATHS = ["db/agg.db", "/tmp/x", "~", "~/x", "~nosuchuser/x", ".", "", "a\x00b", "x" * 5000]
ADDRESSES = ["a@example.org", "no-at", "a@b,c@d", "<a@b>", "a@b\r\nBcc: c@d", "", "@"]
CLOCK_TIMES = [
    "07:00",
    "23:59",
    "24:00",
    "7:5",
    "07:60",
    "0700",
    ":",
    "\u00b2:00",
    "9" * 5000 + ":00",
]
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    fuzz_text,
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=2)
    ),
    max_leaves=6,
)
ints = st.one_of(
    st.integers(-5, 70_000),
    st.sampled_from([0, 1, 2, 3, 16, 65535, 65536, 2**31, 2**63 - 1, 2**63, -(2**63)]),
    st.integers(),
)
floats = st.one_of(st.floats(), ints)
CONFIG_KEYS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "": {
        "database": st.sampled_from(PATHS),
        "folders": st.lists(st.sampled_from(PATHS), max_size=3),
    },
    "ingest": {
        "max_file_bytes": ints,
        "extensions": st.lists(
            st.sampled_from([".txt", ".md", ".HTML", ".pdf", "txt", "", ".markdown"]), max_size=3
        ),
    },
    "dedup": {
        **dict.fromkeys(
            (
                "num_perm",
                "bands",
                "rows",
                "seed",
                "shingle_words",
                "min_unit_words",
                "min_shared_shingles",
            ),
            ints,
        ),
        "jaccard_threshold": floats,
        "containment_threshold": floats,
    },
    "clusters": {
        "window_days": floats,
        "canonical": st.sampled_from(["earliest", "longest", "EARLIEST", ""]),
        "boilerplate_min_articles": ints,
        "boilerplate_edge_paragraphs": ints,
        "boilerplate_min_similarity": floats,
        "background_min_stories": ints,
        "background_min_hours": floats,
    },
    "feeds": {
        "urls": st.lists(
            st.sampled_from(["https://a.example/rss", "ftp://x", " HTTP://B.example ", "", "x"]),
            max_size=3,
        ),
        "allow": st.lists(
            st.sampled_from(
                [
                    "127.0.0.1/8",
                    "10.0.0.0/33",
                    "::1",
                    "fe80::/10",
                    "localhost:8080",
                    "host:\u00b2",
                    "host:" + "9" * 5000,
                    "a:b:c",
                    "",
                    "/",
                    "300.1.1.1",
                ]
            ),
            max_size=3,
        ),
        **dict.fromkeys(
            (
                "min_interval_minutes",
                "max_interval_hours",
                "default_interval_minutes",
                "deadline_seconds",
            ),
            floats,
        ),
        **dict.fromkeys(("max_entries_per_poll", "max_bytes", "concurrency", "per_host"), ints),
        "parse_workers": ints,
    },
    "daemon": {
        **dict.fromkeys(
            (
                "tick_seconds",
                "tick_budget_seconds",
                "scan_minutes",
                "stop_grace_seconds",
                "job_timeout_seconds",
            ),
            floats,
        ),
        "batch_size": ints,
        "digest_time": st.one_of(st.sampled_from(CLOCK_TIMES), fuzz_text),
        "timezone": st.one_of(st.sampled_from(TIMEZONES), fuzz_text),
    },
    "digest": {
        "directory": st.sampled_from(PATHS),
        "keep": ints,
        "formats": st.lists(st.sampled_from(["html", "md", "text", "atom", "pdf", ""]), max_size=4),
        "atom_file": st.sampled_from(["stories.atom", "", "../x", "a\x00b"]),
        "atom_days": floats,
        "atom_max_articles": ints,
        "mail_to": st.lists(st.sampled_from(ADDRESSES), max_size=2),
        "mail_from": st.sampled_from(ADDRESSES),
        "smtp_host": st.sampled_from(["", "localhost", "smtp.example.org", "::1"]),
        "smtp_port": ints,
        "smtp_security": st.sampled_from(["starttls", "tls", "none", "ssl", ""]),
    },
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string, except that TOML wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """A configuration file: known keys with fuzzed values (some of the wrong type),
    the odd unknown key or section, as TOML text."""
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from(sorted(CONFIG_KEYS)), unique=True)):
        keys = CONFIG_KEYS[section]
        chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=4))
        body = [
            f"{key} = " + toml_value(draw(st.one_of(keys[key], keys[key], keys[key], toml_values)))
            for key in chosen
        ]
        if draw(st.integers(0, 9)) == 0:
            body.append(f"{toml_value(draw(st.text(max_size=8)))} = 1")
        if section:
            header = f"[{section}]"
            if draw(st.integers(0, 19)) == 0:
                lines.append(f"{section} = {toml_value(draw(toml_scalars))}")
                continue
            lines.append(header)
        lines.extend(body)
    if draw(st.integers(0, 19)) == 0:
        lines.append(f"[{toml_value(draw(st.text(min_size=1, max_size=8)))}]")
    raw = draw(st.sampled_from(["", "", "", "", "huge-int", "huge-key"]))
    if raw == "huge-int":
        lines.insert(0, "database = " + "9" * 5000)
    elif raw == "huge-key":
        lines.insert(0, json.dumps("k" * 1000) + " = 1")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# OPML.

OPML_URLS = st.one_of(
    st.sampled_from(
        [
            "https://wire.example/rss",
            "https://wire.example/rss?utm_source=x#f",
            "HTTPS://WIRE.EXAMPLE:443/rss",
            " https://padded.example/feed ",
            "ftp://files.example/feed",
            "javascript:alert(1)",
            "http://[::1",
            "http://[::1]:99999/feed",
            "http://",
            "",
            "https://" + "a" * 300 + ".example/",
        ]
    ),
    st.text(max_size=30).map(lambda t: "https://fuzz.example/" + t),
    st.text(max_size=20),
)


@st.composite
def opml_outline(draw: st.DrawFn, children: st.SearchStrategy[str] | None = None) -> str:
    attributes = ""
    for name, values in (
        ("type", st.sampled_from(["rss", "atom", "link", ""])),
        ("text", fuzz_text),
        ("title", fuzz_text),
        ("xmlUrl", OPML_URLS),
        ("htmlUrl", OPML_URLS),
        ("xmlurl", OPML_URLS),
    ):
        if draw(st.booleans()):
            value = draw(values)
            attributes += f" {name}=" + (
                quoteattr(value) if draw(st.integers(0, 5)) else f'"{value}"'
            )
    inner = "".join(draw(st.lists(children, max_size=3))) if children is not None else ""
    return f"<outline{attributes}>{inner}</outline>" if inner else f"<outline{attributes}/>"


opml_outlines = st.recursive(opml_outline(), opml_outline, max_leaves=8)


@st.composite
def opml_documents(draw: st.DrawFn) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    declared = draw(st.one_of(st.just(encoding), st.sampled_from(DECLARED)))
    declaration = draw(
        st.sampled_from(
            ["", '<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{declared}"?>']
        )
    )
    version = draw(st.sampled_from(["1.0", "2.0", "", "x"]))
    body = "".join(draw(st.lists(opml_outlines, max_size=4)))
    document = (
        declaration
        + draw(st.sampled_from(DOCTYPES))
        + f'<opml version="{version}"><head><title>{draw(xml_text())}</title></head>'
        + f"<body>{body}</body></opml>"
    )
    return draw(maybe_mutated(encode(document, encoding)))


OPML_EMPTY = '<opml version="1.0"><head><title/></head><body/></opml>'
OPML_16 = ('<?xml version="1.0" encoding="utf-16-le"?>' + OPML_EMPTY).encode("utf-16-le")
OPML_BOGUS = ('<?xml version="1.0" encoding="x-bogus"?>' + OPML_EMPTY).encode()
