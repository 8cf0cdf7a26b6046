"""The service helpers on their own: notify addresses, the watchdog interval, logs, the lock."""

from __future__ import annotations

import io
import logging
import os
import socket
import tempfile
from pathlib import Path

import pytest

from aggregator.errors import AlreadyRunningError
from aggregator.service.system import DatabaseLock, Notifier, configure_logging


def test_no_notify_socket_means_silence() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("fine")  # nothing to send to, nothing raised


def test_abstract_socket_names_and_the_watchdog_interval() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "@agg-test", "WATCHDOG_USEC": "30000000"})
    assert notifier.address == "\0agg-test"
    assert notifier.watchdog_interval == 15.0
    other = Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None, "the watchdog is someone else's"


def test_messages_arrive_as_one_datagram_each() -> None:
    folder = Path(tempfile.mkdtemp(prefix="agg", dir="/tmp"))
    address = str(folder / "n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        notifier = Notifier({"NOTIFY_SOCKET": address})
        notifier.ready("up")
        notifier.status("polling 3 feeds")
        first = listener.recv(4096).decode()
        assert first.splitlines() == ["READY=1", "STATUS=up", f"MAINPID={os.getpid()}"]
        assert listener.recv(4096).decode() == "STATUS=polling 3 feeds"
    Path(address).unlink()
    folder.rmdir()
    Notifier({"NOTIFY_SOCKET": address}).watchdog()  # the listener is gone: no error


def test_journald_lines_carry_priorities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.INFO, stream)
        logging.getLogger("aggregator.ingest.poll").warning("feed error\nsecond line")
        logging.getLogger("aggregator.service.daemon").info("started")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert stream.getvalue().splitlines() == [
        "<4>aggregator.ingest.poll: feed error",
        "<4>second line",
        "<6>aggregator.service.daemon: started",
    ]


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "news.db"
    first = DatabaseLock(database)
    first.acquire()
    assert DatabaseLock(database).held_elsewhere() == os.getpid()
    with pytest.raises(AlreadyRunningError, match=rf"\(pid {os.getpid()}\)"):
        DatabaseLock(database).acquire()
    first.release()
    assert DatabaseLock(database).held_elsewhere() is None
    again = DatabaseLock(database)
    again.acquire()
    again.release()
