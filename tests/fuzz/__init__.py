"""Fuzzing every input the program takes (issue 6, part 3).

What this proves: for every input the strategies can build, each entry point returns
its documented result or raises one of our own errors
(`aggregator.errors.AggregatorError` subclasses) with a one-line message. Never
another exception, never a warning (pytest runs with `filterwarnings=error`), never
a hang (every call runs under a SIGALRM time limit), and what comes back is usable
downstream (dates the store can write and read back, non-empty one-line paragraphs).

The inputs: feed documents (RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 skeletons with fuzzed
text, attributes, entities, CDATA, declared vs actual encodings, truncation and
spliced bytes; JSON Feed with wrong types, huge numbers and deep nesting) through
`parse_feed`, `entry_documents` and `extract`; HTML pages and fragments; text and
Markdown files; configuration files; OPML; URLs and Retry-After headers. Bounded
checks add what small random examples cannot find: entity bombs must be refused
quickly, and pathological input must be processed in linear time (both measured in
CPU time, which a loaded machine does not stretch).

The modules:

    harness.py               settings and profiles, the known bugs, call() and time_limit()
    checks.py                what each entry point must give back (check_feed, ...)
    strategies.py            text, dates, bytes, mutations, encodings, XML pieces
    strategies_feeds.py      RSS/Atom and JSON Feed documents, sample feeds of past bugs
    strategies_documents.py  HTML pages and fragments, text and Markdown files
    strategies_config.py     configuration files and OPML
    conftest.py              the module-scoped fixtures (fuzz_dir, opml_store)
    test_feeds.py            XML and JSON feeds, feed bytes
    test_documents.py        HTML pages, HTML fragments, text and Markdown files
    test_config.py           configuration files, OPML
    test_urls.py             normalise_url, Retry-After, next-check intervals
    test_bombs.py            entity bombs; refuse_entities is linear
    test_encodings.py        feeds in fifteen encodings: entities refused, text read as in UTF-8
    test_linear.py           pathological input is processed in linear time
    test_reproductions.py    a reproduction of every bug found; the harness's own checks

Running:

    .venv/bin/python -m pytest -q tests/fuzz                    # CI budget, about 30 s
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/fuzz \
        --hypothesis-show-statistics                            # 20,000 examples a test
    FUZZ_KNOWN_BUGS=fail .venv/bin/python -m pytest -q tests/fuzz  # see below

The CI run is derandomized (the same examples every run, for a given Hypothesis and
test source) and first replays `tests/fuzz-db/`, the example database of past
failures, read-only. The long profile explores with fresh randomness and records
every failure it finds in `tests/fuzz-db/`; commit those files, and turn each
failure into an `@example` on its test (examples survive edits to the test body,
the database does not: it is keyed by the test function's source and signature, so
a test moved between modules keeps its examples only if its text is unchanged). Hypothesis
forgets an example once it passes; the long profile's database does not, so a fixed
bug's examples keep being replayed.

Known bugs: `KNOWN_BUGS` (harness.py) lists each one found and not yet fixed. Its
reproduction in `REPRODUCTIONS` (test_reproductions.py) is an `xfail(strict=True)`
case, and the fuzz tests tolerate exactly that bug (same exception type raised from
the same function with the same message, or the same broken invariant) so that they
keep guarding everything else. Fixing a bug means deleting its `KNOWN_BUGS` entry:
the reproduction then has to pass, and the fuzz tests stop tolerating it.
`FUZZ_KNOWN_BUGS=fail` stops the tolerance (and skips the `@example`s) to show which
known bugs the strategies find by themselves; with the long profile it also records
them in `tests/fuzz-db/`.
"""
