"""The band index at window scale: memory per unit and look-up cost from 100k to 6M units.

    python -m bench.indexsize --sizes 100000,1000000,6000000 --out /tmp/ix.md --json /tmp/ix.json

(the defaults; about 6 minutes on 2 vCPUs, most of it filling the 6M index).
Results: docs/benchmarks.md, "Compact index". 6M units is 10k feeds x 20
articles a day x 3 days x 10 units an article.

Each size runs in a fresh process (so RSS is that index's, not a previous
one's): a `BandIndex(32 bands, max_units=N)` is filled with N units in the
pipeline's batches (1,280 units = 64 articles of 20), then measured at its
bound for `--measure` further batches, as the pipeline uses it: per batch one
`lookup_runs` of the new batch's keys, then `add` (with its folds, layout
changes and bound drops). Keys are seeded and streamed, batch by batch:

* random uint32 keys for most units;
* a tenth are copies of an earlier unit of the last 100k with four bands
  changed (a syndicated sentence lightly edited): these are the planted
  pairs, and each must be found (recall);
* one unit in fifty carries a "boilerplate" key in band 0, shared by every
  such unit, so one bucket is always full (`max_bucket` caps it).

Reported per size: RSS growth and peak over the process's start (VmRSS,
VmHWM), the index's own bytes (`nbytes`), both per unit; look-up and add ms per
article (median and mean: the mean carries the folds); the layout (key bits
compared); planted pairs found; other units returned per article (units returned
other than the planted source and the boilerplate bucket: chance band
collisions, and sources that were themselves copies). The ratio column
compares each size's mean look-up with the smallest's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.ingest import machine, machine_line, write_report

BANDS = 32
BATCH = 1280
ARTICLE_UNITS = 20
COPY_EVERY = 10
BOILERPLATE_EVERY = 50
BOILERPLATE_KEY = 0x5EED5EED
RECENT = 100_000

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


def _status(field: str) -> float:
    """A /proc/self/status figure in MiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class Stream:
    """Seeded batches of band keys, with planted copies and boilerplate, in id order."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.next_id = 1
        # The newest units' keys and ids, a ring filled up front so that its
        # memory is not counted as the index's.
        self.recent: U32 = np.ones((RECENT, BANDS), dtype=np.uint32)
        self.recent_ids: I64 = np.ones(RECENT, dtype=np.int64)

    def batch(self, number: int) -> tuple[I64, U32, I64]:
        """Ids, keys, and for each unit the id it copies (0: none)."""
        rng = np.random.default_rng([self.seed, number])
        ids = np.arange(self.next_id, self.next_id + BATCH, dtype=np.int64)
        keys = rng.integers(0, 2**32, size=(BATCH, BANDS), dtype=np.uint32)
        copies = np.zeros(BATCH, dtype=np.int64)
        if number:
            rows = np.arange(0, BATCH, COPY_EVERY)
            source = rng.integers(0, min(RECENT, self.next_id - 1), size=len(rows))
            copied = self.recent[source].copy()
            changed = rng.integers(0, BANDS, size=(len(rows), 4))
            np.put_along_axis(copied, changed, keys[rows][:, :4], axis=1)  # four bands edited
            keys[rows] = copied
            copies[rows] = self.recent_ids[source]
        keys[BOILERPLATE_EVERY // 2 :: BOILERPLATE_EVERY, 0] = BOILERPLATE_KEY
        ring = (ids - 1) % RECENT
        self.recent[ring], self.recent_ids[ring] = keys, ids
        self.next_id += BATCH
        return ids, keys, copies


def run_one(size: int, measure: int, seed: int) -> dict[str, Any]:
    """Fill an index to `size` units, then measure `measure` batches at its bound."""
    from aggregator.dedup.index import BandIndex

    stream = Stream(seed)
    rss0 = _status("VmRSS")
    index = BandIndex(BANDS, max_units=size)
    fill = -(-size // BATCH)
    began = time.perf_counter()
    for number in range(fill):
        ids, keys, _ = stream.batch(number)
        index.add(ids, keys)
    fill_s = time.perf_counter() - began
    lookup_s: list[float] = []
    add_s: list[float] = []
    planted = found = other = 0
    for number in range(fill, fill + measure):
        ids, keys, copies = stream.batch(number)
        t0 = time.perf_counter()
        rows, units = index.lookup_runs(keys)
        t1 = time.perf_counter()
        index.add(ids, keys)
        add_s.append(time.perf_counter() - t1)
        lookup_s.append(t1 - t0)
        wanted = copies >= index.floor  # a copy of a unit the bound has not dropped
        planted += int(np.count_nonzero(wanted & (copies > 0)))
        hit = units == copies[rows]
        found += len(np.unique(rows[hit & wanted[rows]]))
        boiler = keys[rows, 0] == BOILERPLATE_KEY
        other += int(np.count_nonzero(~hit & ~boiler))
    articles = measure * BATCH / ARTICLE_UNITS
    per_batch = 1000 / (BATCH / ARTICLE_UNITS)  # batch seconds -> ms per article
    layout = index._base.layout
    return {
        "size": size,
        "units": index.size,
        "fill_s": fill_s,
        "rss_mb": _status("VmRSS") - rss0,
        "peak_mb": _status("VmHWM") - rss0,
        "nbytes": index.nbytes,
        "runs": index.runs,
        "key_bits": index.key_bits,
        "layout": None
        if layout is None
        else [layout.prefix_bits, layout.rest_bits, layout.slot_bits],
        "lookup_ms_median": float(np.median(lookup_s)) * per_batch,
        "lookup_ms_mean": float(np.sum(lookup_s)) * 1000 / articles,
        "add_ms_median": float(np.median(add_s)) * per_batch,
        "add_ms_mean": float(np.sum(add_s)) * 1000 / articles,
        "planted": planted,
        "found": found,
        "other_per_article": other / articles,
    }


def render(results: list[dict[str, Any]], command: str, info: dict[str, str]) -> str:
    base = results[0]
    lines = [
        f"Command: `{command}`  ",
        machine_line(info),
        f"Code: commit {info['commit']} (aggregator/ {info['aggregator_changes']})  ",
        f"Run at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "| Units | RSS B/unit | Peak B/unit | Index B/unit | RSS MiB | Key bits "
        "| Look-up ms/article median (mean) | x smallest | Add ms/article median (mean) "
        "| Planted found | "
        "Other units/article | Fill s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mib = 1024 * 1024
        lines.append(
            f"| {r['size']:,} | {r['rss_mb'] * mib / r['units']:.0f} "
            f"| {r['peak_mb'] * mib / r['units']:.0f} | {r['nbytes'] / r['units']:.0f} "
            f"| {r['rss_mb']:.0f} | {r['key_bits']} "
            f"| {r['lookup_ms_median']:.3f} ({r['lookup_ms_mean']:.3f}) "
            f"| {r['lookup_ms_mean'] / base['lookup_ms_mean']:.2f} "
            f"| {r['add_ms_median']:.3f} ({r['add_ms_mean']:.3f}) "
            f"| {r['found']:,} / {r['planted']:,} | {r['other_per_article']:.2f} "
            f"| {r['fill_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,6000000")
    parser.add_argument("--measure", type=int, default=100, help="batches measured at the bound")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.measure, args.seed)))
        return 0
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        print(f"index of {size:,} units ...", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "bench.indexsize", "--one", str(size),
             "--measure", str(args.measure), "--seed", str(args.seed)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results.append(json.loads(done.stdout.splitlines()[-1]))
    command = "python -m bench.indexsize " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(render(results, command, machine()), args.out, args.json, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
