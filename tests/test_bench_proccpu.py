"""bench/proccpu.py counts the CPU of grandchildren that `getrusage` never sees (issue 15).

Each test runs a small script in a process of its own that burns a known amount
of CPU (`BURN` seconds of process time each, however long that takes on a
loaded machine) in three grandchildren: a multiprocessing fork-server worker
that ends normally (the parse pool's shape: reaped by the fork server, which
its parent never waits for), one that is killed with SIGKILL once it has
burnt its share (the pool's deadline), and an orphan (its parent exits at once
and nobody waits for it). The assertions are lower bounds on CPU consumed,
which load cannot lower; nothing depends on how long anything took. The orphan
burns while the fork-server workers do, so on two idle cores a test takes
about one second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import proccpu

REPO = Path(__file__).resolve().parent.parent
BURN = 0.3  # CPU seconds per grandchild
# /proc gives times in clock ticks, truncated: the burnt CPU is read in at most
# four fields (the fork server's cutime and cstime, the orphan's utime and stime),
# each short by less than a tick; twice that, to be safe.
TICK_SLACK = 8 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="bench/proccpu.py reads /proc (Linux only)"
)

GRANDCHILDREN = """
from __future__ import annotations

import multiprocessing
import os
import sys
import time

BURN = float(sys.argv[1])


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def burn_then_spin(seconds: float, burnt: multiprocessing.synchronize.Event) -> None:
    burn(seconds)
    burnt.set()
    while True:
        pass


def forkserver_grandchildren() -> None:
    # Run by the fork server, a child of ours; it reaps the workers, and it outlives us.
    context = multiprocessing.get_context("forkserver")
    worker = context.Process(target=burn, args=(BURN,))
    worker.start()
    worker.join()
    assert worker.exitcode == 0
    # A runaway, killed as the parse pool kills one past its deadline.
    burnt = context.Event()
    runaway = context.Process(target=burn_then_spin, args=(BURN, burnt))
    runaway.start()
    burnt.wait()
    runaway.kill()
    runaway.join()


def orphan_grandchild() -> int:
    # A child that forks a grandchild and exits at once, leaving it an orphan.
    # Returns the read end of a pipe that reaches EOF when the grandchild exits.
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            burn(BURN)
        os._exit(0)
    os.close(done_w)
    os.waitpid(child, 0)
    return done_r
"""

UNDER_WRAPPER = (
    GRANDCHILDREN
    + """
if __name__ == "__main__":
    orphan_grandchild()  # never waited for: it may still be burning when we exit
    forkserver_grandchildren()
"""
)

WITH_METER = (
    GRANDCHILDREN
    + """
if __name__ == "__main__":
    import json

    from bench.proccpu import TreeMeter, become_subreaper

    become_subreaper()  # the orphan is re-parented to us, so it stays in our tree
    meter = TreeMeter()
    start = meter.sample()
    done = orphan_grandchild()
    forkserver_grandchildren()
    while os.read(done, 1):  # EOF: the grandchild has exited (a zombie of ours now)
        pass
    span = TreeMeter.between(start, meter.sample())
    print(json.dumps({"main": span.main, "children": span.children, "rusage": span.rusage}))
"""
)


def _script(tmp_path: Path, text: str) -> Path:
    # A file, not `-c`: the fork server imports the main module to find `burn`.
    path = tmp_path / "grandchildren.py"
    path.write_text(text, encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_wrapper_counts_forkserver_and_orphaned_grandchildren(tmp_path: Path) -> None:
    script = _script(tmp_path, UNDER_WRAPPER)
    report_path = tmp_path / "report.json"
    command = [sys.executable, str(script), str(BURN)]
    subprocess.run(
        proccpu.accounted_command(command, report_path),
        check=True,
        cwd=REPO,
        env=_env(),
        timeout=120,
    )
    report = proccpu.read_report(report_path)
    assert report.exit_code == 0
    # The fork server and the orphan outlived the script: the wrapper reaped them.
    assert report.orphans_reaped >= 2
    assert report.killed == 0
    # The total is exact (microseconds); the split takes off what the script reaped
    # itself (its short-lived child) in clock ticks.
    assert report.total_cpu_seconds >= 3 * BURN
    assert report.children_cpu_seconds >= 3 * BURN - TICK_SLACK
    assert report.total_cpu_seconds >= report.client_rusage_cpu_seconds


def test_meter_counts_grandchildren_still_in_the_tree(tmp_path: Path) -> None:
    script = _script(tmp_path, WITH_METER)
    done = subprocess.run(
        [sys.executable, str(script), str(BURN)],
        check=True,
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    span = json.loads(done.stdout.strip().splitlines()[-1])
    # The workers' CPU is in the live fork server's cutime, the orphan's in its
    # zombie's utime: none of it reached this process's RUSAGE_CHILDREN.
    assert span["children"] >= 3 * BURN - TICK_SLACK
    assert span["main"] >= 0


def test_meter_sample_in_a_quiet_process() -> None:
    meter = proccpu.TreeMeter()
    start = meter.sample()
    span = proccpu.TreeMeter.between(start, meter.sample())
    assert span.children >= 0
    assert span.total == span.main + span.children


def test_other_platforms_are_told_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(proccpu.UnsupportedPlatform, match="needs Linux"):
        proccpu.require_linux()
    with pytest.raises(proccpu.UnsupportedPlatform, match="darwin"):
        proccpu.TreeMeter()
