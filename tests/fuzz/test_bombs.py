"""Bounded checks of XML entities: entity bombs must be refused quickly, and the
check that refuses them must take linear time on unfinished declarations.

Small random examples cannot find these, so they are fixed inputs. The verdicts are on
CPU time (`time.process_time()`, this process): a loaded machine stretches wall time, not
the CPU time the work needs. The SIGALRM time limits are only hang guards, generous so
that a busy machine never trips them.
"""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path

import pytest

from aggregator.errors import ParseError, SourceConfigError
from aggregator.ingest.feeds import import_opml
from aggregator.sources.parse import parse_feed, refuse_entities
from aggregator.storage.store import Store

from .harness import call, time_limit, xfail_if_known

# A hang guard (wall clock), not a verdict: ample headroom for a loaded 2-core machine.
GUARD_SECONDS = 10.0

LOL = '<!ENTITY lol "lol">' + "".join(
    f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
    for i in range(1, 10)
)
BOMB_BODY = (
    '<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title>'
    "<description>x</description></item></channel></rss>"
)
BOMBS: list[tuple[str, str, str | None]] = [
    ("nested", f'<?xml version="1.0"?><!DOCTYPE rss [{LOL}]>{BOMB_BODY}', None),
    (
        "parameter",
        "<!DOCTYPE rss [<!ENTITY % p \"<!ENTITY lol9 'x'>\"> %p;]>" + BOMB_BODY,
        None,
    ),
    ("external", '<!DOCTYPE rss [<!ENTITY lol9 SYSTEM "file:///dev/zero">]>' + BOMB_BODY, None),
    (
        "many",
        "<!DOCTYPE rss ["
        + "".join(f'<!ENTITY e{i} "x">' for i in range(65))
        + '<!ENTITY lol9 "x">]>'
        + BOMB_BODY,
        None,
    ),
    ("large", f'<!DOCTYPE rss [<!ENTITY lol9 "{"x" * 2000}">]>{BOMB_BODY}', None),
    ("single quotes", f"<!DOCTYPE rss [{LOL.replace(chr(34), chr(39))}]>{BOMB_BODY}", None),
    ("odd whitespace", "<!DOCTYPE rss [" + LOL.replace(" ", "\t\n ") + "]>" + BOMB_BODY, None),
    ("space before >", f'<?xml version="1.0"?><!DOCTYPE rss [{LOL}] >{BOMB_BODY}', "entity-bypass"),
    (
        "after 4 KiB",
        f'<?xml version="1.0"?><!--{"x" * 5000}--><!DOCTYPE rss [{LOL}]>{BOMB_BODY}',
        "entity-bypass",
    ),
    (
        "one entity, many references",
        f'<!DOCTYPE rss [<!ENTITY lol9 "{"x" * 1000}">]>'
        + BOMB_BODY.replace("<description>x", "<description>" + "&lol9;" * 20_000),
        "entity-quadratic",
    ),
]


@pytest.mark.parametrize(
    ("document",),
    [
        pytest.param(document.encode(), id=name, marks=xfail_if_known(bug) if bug else [])
        for name, document, bug in BOMBS
    ],
)
def test_entity_bombs_are_refused_quickly(document: bytes) -> None:
    """Every entity bomb that is well-formed XML is refused before parsing, at once:
    within 0.5 s of CPU time (it takes well under a millisecond)."""
    started = time.process_time()
    with time_limit(GUARD_SECONDS), pytest.raises(ParseError, match="refused"):
        refuse_entities(document, "https://f.example/")
    spent = time.process_time() - started
    assert spent < 0.5, f"refuse_entities took {spent:.3f} s of CPU"
    started = time.process_time()
    with time_limit(GUARD_SECONDS), pytest.raises(ParseError, match="refused"):
        parse_feed(document, {}, "https://f.example/")
    spent = time.process_time() - started
    assert spent < 0.5, f"parse_feed took {spent:.3f} s of CPU to refuse it"


def test_an_entity_bomb_that_is_not_xml_is_not_expanded() -> None:
    """Lower-case declarations are not XML: refused up front (the check ignores case), or
    else feedparser's fallback parser leaves the references as they are."""
    document = f"<!doctype rss [{LOL.lower()}]>{BOMB_BODY}".encode()
    with time_limit(GUARD_SECONDS):
        try:
            parsed = parse_feed(document, {}, "https://f.example/")
        except ParseError as e:
            assert e.reason.startswith("refused:")
            return
    assert parsed.entries[0].title == "&lol9;"


@pytest.mark.parametrize(
    ("document",), [pytest.param(document.encode(), id=name) for name, document, _ in BOMBS]
)
def test_opml_entity_bombs_are_refused_quickly(
    opml_store: Store, fuzz_dir: Path, document: bytes
) -> None:
    """Refused, or stopped by expat's own amplification limit, within a second of CPU
    time."""
    path = fuzz_dir / "bomb.opml"
    path.write_bytes(document.replace(b"<rss", b"<opml").replace(b"</rss>", b"</opml>"))
    started = time.process_time()
    call(
        import_opml,
        opml_store,
        path,
        allowed=(SourceConfigError,),
        limit=GUARD_SECONDS,
        tolerate=False,
    )
    spent = time.process_time() - started
    assert spent < 1.0, f"import_opml took {spent:.3f} s of CPU"


@pytest.mark.parametrize(
    ("shape",),
    [
        pytest.param(b"<!DOCTYPE r [" + b"<!ENTITY a " * 100_000 + b"]>", id="unfinished"),
        pytest.param(b"<!DOCTYPE r [<!ENTITY a " + b" " * 1_000_000 + b"]>", id="spaces"),
        pytest.param(b"<!DOCTYPE r [" + b'<!ENTITY a "' * 100_000 + b"]>", id="open quotes"),
        pytest.param(b"<!DOCTYPE r [" + b"<!ENTITY %" * 100_000 + b"]>", id="percent"),
    ],
)
def test_refuse_entities_is_linear(shape: bytes) -> None:
    """A megabyte of unfinished declarations is scanned in well under 2 s of CPU time
    (about 0.1 s; a scan that backtracks, quadratic, would take hours)."""
    started = time.process_time()
    with time_limit(GUARD_SECONDS), suppress(ParseError):
        refuse_entities(shape, "https://f.example/")
    spent = time.process_time() - started
    assert spent < 2.0, f"refuse_entities took {spent:.3f} s of CPU"
