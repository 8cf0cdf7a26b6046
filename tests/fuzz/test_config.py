"""Fuzz the user's own files: configuration files (`load_config`) and OPML
subscription lists (`import_opml`)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.errors import ParseError, SourceConfigError
from aggregator.ingest.feeds import import_opml
from aggregator.storage.store import Store

from .checks import check_config
from .harness import call, fuzz
from .strategies import mutated
from .strategies_config import OPML_16, OPML_BOGUS, config_texts, opml_documents


@fuzz(200)
@given(
    st.one_of(
        config_texts(),
        config_texts().flatmap(lambda t: mutated(t.encode()).map(lambda b: b.decode("latin-1"))),
        st.text(max_size=200),
    ),
    st.sampled_from(["text", "text", "text", "text", "bytes", "missing", "directory"]),
)
@example('[daemon]\ndigest_time = "\u00b2:00"\n', "text")
@example('[daemon]\ntimezone = "Europe"\n', "text")
@example('folders = ["~nosuchuser/x"]\n', "text")
@example("database = " + "9" * 5000 + "\n", "text")
@example('"a\\nb" = 1\n', "text")
def test_config_files(fuzz_dir: Path, text: str, how: str) -> None:
    path = fuzz_dir / "config.toml"
    if path.is_dir():
        path.rmdir()
    path.unlink(missing_ok=True)
    if how == "text":
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    elif how == "bytes":
        path.write_bytes(text.encode("utf-8", "surrogatepass") + b"\xff\xfe")
    elif how == "directory":
        path.mkdir()
    check_config(path)


@fuzz(150)
@given(st.one_of(opml_documents(), st.binary(max_size=300)))
@example(OPML_16)
@example(OPML_BOGUS)
def test_opml(opml_store: Store, fuzz_dir: Path, content: bytes) -> None:
    path = fuzz_dir / "subscriptions.opml"
    path.write_bytes(content)
    result = call(import_opml, opml_store, path, allowed=(SourceConfigError, ParseError))
    if result is not None:
        added, skipped = result
        assert added >= 0 and skipped >= 0
