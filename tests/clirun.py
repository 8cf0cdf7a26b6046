"""Running `aggregator` as its console script does, in this process or in a new one.

`run_cli(...)` calls `aggregator.cli.main.main()` (what the console script runs: the error
handling, the exit statuses, the one-line messages) with its own argv, environment,
working folder, stdout and stderr, and returns what `subprocess.run` would. In this
process it costs the command's work only; a new process adds about 0.6 s of imports
(1.3 s for commands that sign, which load datasketch), which most tests need not pay.
Tests of what only a real process shows (the console script itself, a terminal,
signals, tracebacks reaching stderr) pass `new_process=True`.

Logging is set up the way a fresh process would: the root logger's handlers (pytest's
capture) are set aside for the call, so the CLI's own `basicConfig` writes warnings to
the captured stderr, exactly where a user would see them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from aggregator.cli.main import main
from tests.conftest import AGGREGATOR


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for handler in handlers:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    new_process: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`aggregator ARGS...` with ENV (default: this environment) in CWD."""
    argv = [str(a) for a in args]
    environment = dict(os.environ if env is None else env)
    if new_process:
        return subprocess.run(
            [str(AGGREGATOR), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd=cwd,
            check=False,
        )
    out, err = io.StringIO(), io.StringIO()
    status: int
    with (
        _environment(environment),
        contextlib.chdir(cwd or Path.cwd()),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _fresh_logging(),
    ):
        saved_argv = sys.argv
        sys.argv = ["aggregator", *argv]
        try:
            main()
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = saved_argv
    return subprocess.CompletedProcess(
        ["aggregator", *argv], status, out.getvalue(), err.getvalue()
    )
