"""Process pools outlive nothing: a kill -9 of their owner takes the workers and the fork
server with it (sources/pools.py). Real processes, really killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

OWNER = """
import json, multiprocessing.forkserver as fs, os, sys, time
from aggregator.config import Config
from aggregator.ingest.prepare import Preparer
from aggregator.sources.workers import ParsePool

parse = ParsePool(2)
feed = b'<rss version="2.0"><channel><title>t</title><item><title>a</title></item></channel></rss>'
parse.result(parse.submit(feed, {}, "http://127.0.0.1/feed"), "http://127.0.0.1/feed")
preparer = Preparer(Config(), 2)
preparer.result([], preparer.submit([]))
pools = [[p.pid for p in pool._processes.values()] for pool in (parse._pool, preparer._pool)]
print(json.dumps({"pools": pools, "server": fs._forkserver._forkserver_pid}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_owner_leaves_no_worker_and_no_fork_server() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True
    ) as owner:
        pids: list[int] = []
        try:
            assert owner.stdout is not None
            started = json.loads(owner.stdout.readline())
            parse, prepare = started["pools"]  # workers start as work arrives: one or two each
            pids = [*parse, *prepare, started["server"]]
            assert parse and prepare and all(_alive(p) for p in pids)
            owner.send_signal(signal.SIGKILL)
            owner.wait(timeout=10)
            deadline = time.monotonic() + 15
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [p for p in pids if _alive(p)] == []
        finally:
            owner.kill()
            for pid in pids:  # whatever a failure left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
