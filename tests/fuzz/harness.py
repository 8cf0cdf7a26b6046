"""The fuzz harness: Hypothesis settings, the known bugs, and the contract of a call.

* Settings: `fuzz(n)` gives a test its derandomized CI budget of n examples, which
  first replays the recorded failures in `tests/fuzz-db/` (read-only); under the long
  profile (HYPOTHESIS_PROFILE=long) it explores with fresh randomness and records there.
* Known bugs: `KNOWN_BUGS`, and how the fuzz tests tolerate exactly those
  (`known_exception`, `invariant`, `xfail_if_known`); see `tests/fuzz/__init__.py`.
* The contract: `call(fn, ...)` returns fn's result, or None when fn raised one of our
  errors with a one-line message; any other exception fails the test, and so does a
  call still running after `HANG_SECONDS` (`time_limit`, SIGALRM).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

from aggregator.errors import AggregatorError, ConfigError

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]  # tests/fuzz/harness.py -> the repository
PACKAGE = REPO / "aggregator"


# ---------------------------------------------------------------------------------------
# Settings: a derandomized CI budget that replays the recorded failures first, and a
# long profile that explores and records.


class KeepingDatabase(DirectoryBasedExampleDatabase):
    """The long profile's database: it adds, and never forgets. Hypothesis deletes an
    example once it passes again; here a fixed bug's example stays, so every CI run
    keeps replaying every failure ever found (a few hundred examples: cheap)."""

    def delete(self, key: bytes, value: bytes) -> None:
        pass

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.save(dest, value)


FUZZ_DB = KeepingDatabase(REPO / "tests" / "fuzz-db")
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=timedelta(seconds=20),
    database=FUZZ_DB,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# FUZZ_KNOWN_BUGS=fail: the fuzz tests stop tolerating the known bugs (to see which of
# them the strategies find on their own).
TOLERATE = os.environ.get("FUZZ_KNOWN_BUGS") != "fail"
LONG = (
    os.environ.get("HYPOTHESIS_PROFILE") == "long" or settings.get_current_profile_name() == "long"
)
# derandomize=True implies no database when both are given to one settings object;
# given to a child, the database is used: derandomized examples, recorded failures first.
_CI = settings(
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# FUZZ_BUDGET=0.1 (`make test-fast`): a tenth of each CI budget, for quick feedback; the
# recorded failures and the @examples are replayed all the same.
BUDGET = float(os.environ.get("FUZZ_BUDGET", "1"))


def fuzz(max_examples: int) -> settings:
    """The settings of one fuzz test: its CI budget, or the long profile."""
    budget = max(10, round(max_examples * BUDGET))
    chosen = (
        settings(settings.get_profile("long"))
        if LONG
        else settings(_CI, max_examples=budget, database=ReadOnlyDatabase(FUZZ_DB))
    )
    if not TOLERATE:  # what do the strategies find on their own, without the @examples?
        return settings(chosen, phases=[p for p in chosen.phases if p is not Phase.explicit])
    return chosen


# A call slower than this is a hang (generous: a loaded 2-core CI machine).
HANG_SECONDS = 20.0


# ---------------------------------------------------------------------------------------
# Known bugs, tolerated by the fuzz tests until fixed (see tests/fuzz/__init__.py).


@dataclass(frozen=True, slots=True)
class Bug:
    reason: str
    # An exception of exactly one of these types, raised with the innermost frame in the
    # package in `where` ("module.function") and a message that `match` is found in;
    # with no types, a violated invariant of the same id.
    types: tuple[type[BaseException], ...] = ()
    where: str = ""
    match: str = ""


KNOWN_BUGS: dict[str, Bug] = {}  # none open: all 24 found so far are fixed


def known(bug_id: str) -> bool:
    return bug_id in KNOWN_BUGS


def xfail_if_known(bug_id: str) -> list[pytest.MarkDecorator]:
    if bug_id not in KNOWN_BUGS:
        return []
    return [pytest.mark.xfail(strict=True, reason=f"bug: {KNOWN_BUGS[bug_id].reason}")]


def _where(error: BaseException) -> str:
    """'module.function' of the innermost frame of the traceback inside the package."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(PACKAGE):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            where = f"{module}.{frame.name}"
    return where


def known_exception(error: BaseException) -> str | None:
    where = _where(error)
    for bug_id, bug in KNOWN_BUGS.items():
        if (
            type(error) in bug.types
            and bug.where == where
            and re.search(bug.match, str(error)) is not None
        ):
            return bug_id
    return None


def invariant(ok: bool, bug_id: str, message: str, tolerate: bool = True) -> None:
    """Assert an invariant, unless it is a known bug being tolerated."""
    if not ok and not (tolerate and TOLERATE and known(bug_id)):
        raise AssertionError(f"{message} ({bug_id})")


# ---------------------------------------------------------------------------------------
# The contract: a result, or one of our errors with a one-line message, in bounded time.


class Hang(BaseException):
    """Raised by the time limit; a BaseException, so no `except Exception` swallows it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hang in the block after `seconds` of wall time (SIGALRM): a hang guard.

    An alarm already set outside (pytest-timeout's, whose default method is SIGALRM too)
    is re-armed afterwards with what is left of it, rather than silently cancelled.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)


def check_message(
    error: AggregatorError, tolerate: bool = True, starts: tuple[str, ...] = ()
) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert not starts or message.startswith(starts), f"{message!r} does not start with {starts}"
    bug_id = "config-key-newline" if isinstance(error, ConfigError) else ""
    invariant(
        "\n" not in message and "\r" not in message,
        bug_id,
        f"{type(error).__name__} message is not one line: {message!r}",
        tolerate,
    )


def call(
    fn: Callable[..., T],
    *args: Any,
    allowed: tuple[type[AggregatorError], ...] = (AggregatorError,),
    limit: float = HANG_SECONDS,
    tolerate: bool = True,
    starts: tuple[str, ...] = (),
) -> T | None:
    """fn(*args), or None when it raised an allowed error (checked for a one-line message).

    Any other exception propagates, unless it is a known bug and `tolerate` is set.
    """
    try:
        with time_limit(limit):
            return fn(*args)
    except Hang as e:
        raise AssertionError(f"{fn.__qualname__} hangs: {e}") from None
    except allowed as e:
        check_message(e, tolerate, starts)
        return None
    except Exception as e:
        if tolerate and TOLERATE and known_exception(e) is not None:
            return None
        raise
