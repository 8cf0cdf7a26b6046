"""Process pools: started from one fork server, and gone when their owner dies.

Both pools (feed parsing here in sources/, preparing articles in ingest/)
start their workers from multiprocessing's fork server, which is one per
process: whichever pool starts first decides what it preloads, so each pool
adds its modules to one shared list here.

**A worker outlives nothing.** A `ProcessPoolExecutor` worker waits on its
task queue and never checks its owner; after a `kill -9` of the daemon its
workers wait forever, and so does the fork server, whose "owner alive" pipe
those workers hold open. Seen in the kill -9 test: each kill left a fork
server and two workers (about 250 MB) behind. So every worker watches the
process that made the pool (a pidfd where Linux has one, else a poll each
second) and exits when it is gone; the fork server then sees its pipe close
and exits too. An orderly shutdown is unchanged: the owner's `shutdown`
stops its workers as before.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PRELOAD: set[str] = set()
_LOCK = threading.Lock()
POLL_SECONDS = 1.0  # where there is no pidfd


def new_pool(workers: int, preload: list[str]) -> ProcessPoolExecutor:
    """A pool of `workers` processes that exit when this process does, however it ends."""
    return ProcessPoolExecutor(
        workers,
        mp_context=_context(preload),
        initializer=watch_owner,
        initargs=(os.getpid(),),
    )


def _context(preload: list[str]) -> multiprocessing.context.BaseContext:
    """The fork server, preloading what every pool asked for so far, where there is one.

    Not plain fork: pools are started from processes that run threads.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    with _LOCK:
        _PRELOAD.update(preload)
        context.set_forkserver_preload(sorted(_PRELOAD))
    return context


def watch_owner(owner: int) -> None:
    """In a worker: exit as soon as process `owner` has ended (a daemon thread waits)."""
    threading.Thread(target=_wait_then_exit, args=(owner,), daemon=True).start()


def _wait_then_exit(owner: int) -> None:
    try:
        handle = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(0)  # gone before the worker started
    except (AttributeError, OSError):  # no pidfd on this system
        while _alive(owner):
            time.sleep(POLL_SECONDS)
    else:
        select.select([handle], [], [])  # readable once the process has exited
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # running, as another user
    return True
