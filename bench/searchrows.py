"""Full-text rows: one trigger call per inserted article against one INSERT ... SELECT
per transaction (aggregator/storage/search.py), at several articles per transaction.

    .venv/bin/python -m bench.searchrows [--articles 2000] [--rounds 5]

Each variant inserts the same corpus articles (bench/corpus.py: titles and
bodies as the store keeps them) into a fresh WAL database holding the
`articles` columns search reads and the FTS5 table of schema.py, and is timed
in CPU seconds of this process. Variants alternate within each round, and the
median per article is reported with its range; `none` (no search rows at
all) is the floor both are compared against.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from aggregator.sources.extract import extract
from bench.corpus import Corpus
from bench.ingest import machine, machine_line, write_report

FTS = "CREATE VIRTUAL TABLE articles_fts USING FTS5 (title, body, content=[articles])"
TRIGGER = (
    "CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body); END"
)
PER_TRANSACTION = (
    "INSERT INTO articles_fts (rowid, title, body) "
    "SELECT id, title, body FROM articles WHERE id >= ?"
)
VARIANTS = ("none", "trigger", "per transaction")


def _articles(count: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for doc in Corpus(count).documents():
        article = extract(doc)
        out.append((article.title, "\n\n".join(article.paragraphs)))
    return out


def _run(path: Path, variant: str, articles: list[tuple[str, str]], group: int) -> float:
    """CPU seconds per article to insert `articles`, `group` to a transaction."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT)")
        if variant != "none":
            conn.execute(FTS)
        if variant == "trigger":
            conn.execute(TRIGGER)
        started = time.process_time()
        for start in range(0, len(articles), group):
            conn.execute("BEGIN IMMEDIATE")
            first = None
            for title, body in articles[start : start + group]:
                row = conn.execute(
                    "INSERT INTO articles (title, body) VALUES (?, ?) RETURNING id", (title, body)
                ).fetchone()
                first = first or int(row[0])
            if variant == "per transaction":
                conn.execute(PER_TRANSACTION, (first,))
            conn.execute("COMMIT")
        return (time.process_time() - started) / len(articles)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--groups", default="1,20,64", help="articles per transaction")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    articles = _articles(args.articles)
    groups = [int(g) for g in args.groups.split(",")]
    results: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "search.db"
        for _ in range(args.rounds):
            for group in groups:
                for variant in VARIANTS:
                    took = _run(path, variant, articles, group)
                    results.setdefault((group, variant), []).append(took)
    lines = [
        f"Full-text rows, {args.articles:,} corpus articles, {args.rounds} rounds "
        "(CPU µs per article: median, range)",
        "",
        machine_line(machine()),
        "",
        "| Articles per transaction | " + " | ".join(VARIANTS) + " | trigger / per transaction |",
        "|---:|" + "---:|" * (len(VARIANTS) + 1),
    ]
    for group in groups:
        cells = []
        for variant in VARIANTS:
            xs = results[(group, variant)]
            cells.append(
                f"{statistics.median(xs) * 1e6:.0f} ({min(xs) * 1e6:.0f}-{max(xs) * 1e6:.0f})"
            )
        ratio = statistics.median(
            t / p
            for t, p in zip(
                results[(group, "trigger")], results[(group, "per transaction")], strict=True
            )
        )
        lines.append(f"| {group} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    write_report("\n".join(lines) + "\n", args.out, None, {})


if __name__ == "__main__":
    main()
