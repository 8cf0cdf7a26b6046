"""CPU time of every process a benchmark contender starts, at any depth (Linux only).

Why this exists (issue 15): `getrusage(RUSAGE_CHILDREN)` counts only descendants
that were *waited for*, each by its own parent, all the way up. Our parse pool
starts its workers from a multiprocessing fork server: the workers are children
of the fork server, which reaps them, and the fork server itself is never waited
for by the poller's process (it exits on its own when that process has gone). So
neither the pool's CPU nor the fork server's ever reached the figures of
`bench/feeds.py`: about 0.4-0.5 ms per entry went missing.

What is decided, and why:

* **The whole run is measured exactly, under a subreaper.** `run_accounted` (the
  command line `python -m bench.proccpu --report FILE -- COMMAND...`) runs the
  contender as the only child of a small process marked
  `prctl(PR_SET_CHILD_SUBREAPER)`. Every descendant orphaned at any time (a fork
  server outliving its parent, a worker whose parent was killed, a double-forked
  daemon) is re-parented to it instead of to init, and it reaps all of them, so
  every process of the tree is waited for by someone inside the tree. The kernel
  adds a reaped process's own CPU and the CPU of everything *it* reaped to its
  reaper's "children" times, so the wrapper's `RUSAGE_CHILDREN` ends up holding
  the CPU of every process of the tree, replaced and killed ones included, with
  nothing sampled and nothing missed between samples. The contender's own share
  ("main") is what `wait4` reports for it (itself and what it reaped itself, in
  microseconds) less the reaped part, read from `/proc/PID/stat` while it is a
  zombie (`waitid(WNOWAIT)`: exited, not yet reaped); "children" is the total
  minus main. Only that reaped part is in clock ticks, so a contender that
  reaps nothing itself (reader; our poller, whose fork server is reaped here)
  has its split exact to the microsecond. The wrapper waits for the orphans
  left behind (`linger`, 30 s by default), then kills what is still running and
  reaps that too, so the figure is final when the report is written.
* **Phases inside a run (a first poll, a 304 poll) are read from /proc.** The
  fork server outlives a poll, so the pool's CPU for that poll sits in the fork
  server's `cutime`/`cstime` (workers it reaped) and in the `utime`/`stime` of
  processes still alive; `TreeMeter.sample` adds, for every descendant of the
  calling process, its own times and the times of the children it reaped, to
  this process's `RUSAGE_CHILDREN`. A process being reaped while the tree is read
  could be counted twice or not at all, so a sample is taken only when three
  consecutive reads of the tree name the same processes (none born, none reaped
  in between); at a poll's start and end the tree is quiet, so that is the first
  try. The calling process should be a subreaper too (`become_subreaper`), so an
  orphan stays in its tree, and in the sample, until the run ends. Resolution is
  the kernel's clock tick (10 ms at `CLK_TCK` 100) per process read, and the
  meter's own reading of /proc is left out of "main".
* **Not sampling the tree during the run.** A sampler sees a short-lived process
  only if it lives across a sample, and a process's last moments never; the
  subreaper makes every exit land in a counter, so nothing depends on timing.
* **Not cgroups.** A cgroup's `cpu.stat` would be exact too, but needs write
  access to a delegated cgroup tree, which a CI container or a plain user
  session does not always give; `prctl` needs no privilege (Linux >= 3.4).
* **One blind spot, shared by every rusage-based measure:** a process whose
  parent sets SIGCHLD to SIG_IGN (or SA_NOCLDWAIT) is reaped by the kernel
  itself and its CPU is added to no one. Neither contender does that.

Linux only: elsewhere everything that measures (`TreeMeter`, `become_subreaper`,
`run_accounted`) raises `UnsupportedPlatform`, which says so; `bench/feeds.py` stops
with that message, and the command line exits 2 with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
LINGER_SECONDS = 30.0
STABLE_ATTEMPTS = 100


class UnsupportedPlatform(RuntimeError):
    """The measurement needs Linux: /proc and prctl(PR_SET_CHILD_SUBREAPER)."""


def require_linux() -> None:
    """Raise `UnsupportedPlatform`, with the reason, where the accounting cannot work."""
    if not sys.platform.startswith("linux"):
        raise UnsupportedPlatform(
            f"CPU accounting of a process tree (bench/proccpu.py) needs Linux: /proc and "
            f"prctl(PR_SET_CHILD_SUBREAPER); this is {sys.platform}"
        )
    if not Path("/proc/self/stat").exists():
        raise UnsupportedPlatform("CPU accounting of a process tree needs /proc mounted")


def become_subreaper() -> None:
    """Mark this process a child subreaper: orphaned descendants are re-parented to it."""
    require_linux()
    libc = ctypes.CDLL(None, use_errno=True)  # no find_library: it would start processes
    if libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")


_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


@dataclass(frozen=True, slots=True)
class ProcTimes:
    """One process's line of /proc/PID/stat, in seconds.

    `own` is utime + stime of the whole process (all its threads, exited ones
    too); `reaped` is cutime + cstime: the CPU of the children it has waited for,
    and of everything those had waited for.
    """

    pid: int
    ppid: int
    own: float
    reaped: float


def read_stat(pid: int) -> ProcTimes | None:
    """The times of `pid` (a zombie's are final), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # noqa: PTH123 (read many times a sample)
            line = f.read()
    except OSError:  # gone (ENOENT, ESRCH), or not ours to read
        return None
    # The command name may hold spaces and parentheses: fields start after the last ")".
    fields = line[line.rfind(b")") + 2 :].split()
    # fields[0] is field 3 of proc(5) (state): ppid is 4, utime..cstime are 14..17.
    return ProcTimes(
        pid,
        int(fields[1]),
        (int(fields[11]) + int(fields[12])) / _TICK,
        (int(fields[13]) + int(fields[14])) / _TICK,
    )


def descendants(root: int) -> dict[int, ProcTimes]:
    """Every process below `root` (not `root` itself), zombies included, from /proc."""
    by_parent: dict[int, list[ProcTimes]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            times = read_stat(int(entry.name))
            if times is not None:
                by_parent.setdefault(times.ppid, []).append(times)
    found: dict[int, ProcTimes] = {}
    todo = [root]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            if child.pid not in found:  # a pid reused mid-read cannot loop
                found[child.pid] = child
                todo.append(child.pid)
    return found


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class TreeSample:
    """This process's CPU and its whole tree's, at one moment (seconds).

    `main_before`/`main_after` are this process's own CPU read at the start and at
    the end of the sample, so that a span can leave the meter's own work out;
    `reaped` is `RUSAGE_CHILDREN`; `live` the own and reaped times of every
    descendant not yet reaped (zombies included).
    """

    main_before: float
    main_after: float
    reaped: float
    live: float
    processes: int

    @property
    def children(self) -> float:
        return self.reaped + self.live


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """CPU seconds of a span: this process's own, and that of every process below it."""

    main: float
    children: float
    rusage: float  # what getrusage(SELF) + getrusage(CHILDREN) alone saw: the old figure

    @property
    def total(self) -> float:
        return self.main + self.children


class TreeMeter:
    """Reads the CPU of the calling process and of all its descendants (see the docstring)."""

    def __init__(self, attempts: int = STABLE_ATTEMPTS) -> None:
        require_linux()
        self.pid = os.getpid()
        self.attempts = attempts

    def sample(self) -> TreeSample:
        """The tree's CPU now: a read where no process was born or reaped meanwhile."""
        main_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        previous = descendants(self.pid)
        for _ in range(self.attempts):
            reaped = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
            current = descendants(self.pid)
            following = descendants(self.pid)
            if previous.keys() == current.keys() == following.keys():
                live = sum(p.own + p.reaped for p in current.values())
                main_after = _cpu(resource.getrusage(resource.RUSAGE_SELF))
                return TreeSample(main_before, main_after, reaped, live, len(current))
            previous = following
            time.sleep(0.001)
        raise RuntimeError(
            f"the process tree of {self.pid} kept changing over {self.attempts} reads of /proc"
        )

    @staticmethod
    def between(start: TreeSample, end: TreeSample) -> CpuSplit:
        """The CPU spent from `start` to `end`, the meter's own reads left out of `main`."""
        main = end.main_before - start.main_after
        return CpuSplit(main, end.children - start.children, main + end.reaped - start.reaped)


# -- the whole run, under a subreaper --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunReport:
    """What `run_accounted` measured of one command and everything it started.

    CPU in seconds: `main` is the command's own process, `children` every other
    process of its tree, `total` their sum (exact: see the module docstring).
    `client_rusage_cpu_seconds` is what `wait4` on the command alone reports (its
    process and the descendants it reaped itself), the figure that missed the
    pool. `max_rss_kib` is the largest peak RSS of any process of the tree.
    """

    exit_code: int
    wall_seconds: float
    main_cpu_seconds: float
    children_cpu_seconds: float
    total_cpu_seconds: float
    client_rusage_cpu_seconds: float
    max_rss_kib: int
    client_max_rss_kib: int
    orphans_reaped: int
    killed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_accounted(argv: Sequence[str], linger: float = LINGER_SECONDS) -> RunReport:
    """Run `argv` and account the CPU of every process it starts, at any depth.

    Call it in a process of its own that has no other children (`python -m
    bench.proccpu` is one): it becomes a subreaper and reaps every child it gets.
    SIGTERM is passed on to the command; SIGINT is ignored, since a terminal's ^C
    reaches the command directly and the wrapper must live to reap the rest.
    """
    require_linux()
    if not argv:
        raise ValueError("no command to run")
    become_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], list(argv), dict(os.environ))
    signal.signal(signal.SIGTERM, lambda signum, _frame: os.kill(pid, signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # a zombie now: its times are final
    wall = time.perf_counter() - started
    zombie = read_stat(pid)
    if zombie is None:
        raise RuntimeError(f"/proc/{pid}/stat vanished before the process was reaped")
    _, status, client = os.wait4(pid, 0)
    reaped, killed = _reap_orphans(linger)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = _cpu(after) - _cpu(before)
    # Microseconds less clock ticks (zero when the command reaped nothing itself).
    main = min(max(_cpu(client) - zombie.reaped, 0.0), total)
    return RunReport(
        exit_code=os.waitstatus_to_exitcode(status),
        wall_seconds=wall,
        main_cpu_seconds=main,
        children_cpu_seconds=total - main,
        total_cpu_seconds=total,
        client_rusage_cpu_seconds=_cpu(client),
        max_rss_kib=after.ru_maxrss,
        client_max_rss_kib=client.ru_maxrss,
        orphans_reaped=reaped,
        killed=killed,
    )


def _reap_orphans(linger: float) -> tuple[int, int]:
    """Reap every remaining child (orphans re-parented here) until none is left.

    Those still running after `linger` seconds are killed (SIGKILL), and so are
    their own children as these become ours; every one is reaped, so its CPU is
    counted up to its end. Returns (processes reaped, processes killed).
    """
    me = os.getpid()
    deadline = time.monotonic() + linger
    reaped = 0
    killed: set[int] = set()
    while True:
        try:
            pid, _, _ = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped, len(killed)
        if pid:
            reaped += 1
            continue
        if time.monotonic() >= deadline:
            for child in descendants(me).values():
                if child.ppid == me and child.pid not in killed:
                    try:
                        os.kill(child.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    killed.add(child.pid)
        time.sleep(0.005)


def accounted_command(
    argv: Sequence[str], report: Path, linger: float = LINGER_SECONDS
) -> list[str]:
    """The command line that runs `argv` under `run_accounted`, writing its report to `report`."""
    return [
        sys.executable,
        "-m",
        "bench.proccpu",
        "--report",
        str(report),
        "--linger",
        str(linger),
        "--",
        *argv,
    ]


def read_report(path: Path) -> RunReport:
    """A report written by `python -m bench.proccpu --report PATH`."""
    return RunReport(**json.loads(path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proccpu",
        description="Run a command; report the CPU of every process it started, at any depth.",
    )
    parser.add_argument("--report", type=Path, help="write the JSON report here (else stderr)")
    parser.add_argument(
        "--linger",
        type=float,
        default=LINGER_SECONDS,
        help="seconds to wait for orphans once the command exits, before killing them",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    try:
        report = run_accounted(command, args.linger)
    except UnsupportedPlatform as e:
        print(f"bench.proccpu: {e}", file=sys.stderr)
        return 2
    text = json.dumps(report.to_json())
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    else:
        print(text, file=sys.stderr)
    return report.exit_code if report.exit_code >= 0 else 128 - report.exit_code


if __name__ == "__main__":
    sys.exit(main())
