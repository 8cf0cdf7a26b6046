"""The service as `make install-service` installs it (issue 13, item 1).

Followed verbatim, the README's old install copied config/aggregator.toml to
/etc/aggregator/, whose relative paths then pointed under /etc: every scan found
no folder, every digest failed, and `status` said nothing was wrong. Here the
install is staged under a temporary root (DESTDIR, without the virtualenv: the
tests never download), and the daemon is started the way the unit starts it:
its ExecStart with the installed configuration, its working directory, umask and
STATE_DIRECTORY, every absolute path moved under the temporary root. A tick, a
scan, the stories feed and the daily digest must land where the README says.
The one change to the installed configuration besides the paths: folder scans
every 0.6 s instead of 5 minutes, so that the inbox is read again within the test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from aggregator.service.system import run_as_owner
from tests.conftest import AGGREGATOR, REPO
from tests.daemons import DEADLINE, Daemon, query, wait_for

pytestmark = pytest.mark.slow

STATE = "/var/lib/aggregator"
ARTICLE = (
    "Harbour board delays the ferry terminal\n\n"
    "The harbour authority has postponed its decision on a new ferry terminal until the"
    " spring, saying it needs more time to study the cost of dredging the eastern channel.\n"
)


def _unit(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")


def _moved(text: str, root: Path) -> str:
    """Absolute paths of the installed layout, moved under `root`; the console script
    is this checkout's (the virtualenv step was left out)."""
    text = text.replace("/opt/aggregator/bin/aggregator", str(AGGREGATOR))
    return re.sub(r"(?<![\w.])(/etc/aggregator|/var/lib/aggregator)", rf"{root}\1", text)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    made = subprocess.run(
        ["make", "--no-print-directory", "install-service", f"DESTDIR={root}", "INSTALL_VENV=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return root


def test_install_service_puts_every_file_where_the_readme_says(installed: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in (
        "/etc/aggregator/aggregator.toml",
        "/etc/systemd/system/aggregator.service",
        "/etc/systemd/system/aggregator@.service",
        "/usr/lib/sysusers.d/aggregator.conf",
        "/usr/share/doc/aggregator/README.md",
        "/usr/share/doc/aggregator/aggregator.toml.example",
    ):
        assert (installed / path.lstrip("/")).is_file(), path
        assert path in readme, f"the README does not say where {path} goes"
    unit = _unit(installed / "etc/systemd/system/aggregator.service")
    documentation = unit["Documentation"].removeprefix("file://")
    assert (installed / documentation.lstrip("/")).is_file(), "Documentation= names a file"
    assert (installed / STATE.lstrip("/")).is_dir()


def test_an_existing_configuration_is_kept(installed: Path) -> None:
    config = installed / "etc/aggregator/aggregator.toml"
    config.write_text('database = "/srv/news.db"\n', encoding="utf-8")
    again = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "install-service",
            f"DESTDIR={installed}",
            "INSTALL_VENV=no",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert config.read_text(encoding="utf-8") == 'database = "/srv/news.db"\n'


def test_the_installed_service_ticks_scans_and_writes_its_feed_and_digest(
    installed: Path, daemons: list[Daemon]
) -> None:
    unit = _unit(installed / "etc/systemd/system/aggregator.service")
    config = installed / "etc/aggregator/aggregator.toml"
    config.write_text(
        _moved(config.read_text(encoding="utf-8"), installed) + "\n[daemon]\nscan_minutes = 0.01\n",
        encoding="utf-8",
    )
    state = installed / STATE.lstrip("/")
    command = shlex.split(_moved(unit["ExecStart"], installed))
    assert command[1:] == ["--config", str(config), "run"]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
        "STATE_DIRECTORY": str(state),  # what StateDirectory= sets
    }
    umask = int(unit["UMask"], 8)
    with (installed / "daemon.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=_moved(unit["WorkingDirectory"], installed),
            env=environment,
            stdout=log,
            stderr=log,
            preexec_fn=lambda: os.umask(umask),  # no threads started yet
        )
    daemon = Daemon.attach(process, installed / "daemon.log", state / "aggregator.db")
    daemons.append(daemon)
    daemon.wait_started()

    inbox, digests = state / "inbox", state / "digests"
    wait_for(inbox.is_dir, daemon.said("the inbox, created in the state directory"))
    (inbox / "ferry.txt").write_text(ARTICLE, encoding="utf-8")
    wait_for(lambda: daemon.articles() == 1, daemon.said("the inbox article stored"))
    stories = digests / "stories.atom"
    wait_for(
        lambda: stories.is_file() and "ferry terminal" in stories.read_text(encoding="utf-8"),
        daemon.said("the stories feed with the new article"),
    )
    # The digest last due was never written (a new install): it is written at start.
    wait_for(lambda: daemon.state("last_digest_at") is not None, daemon.said("the digest"))
    written = sorted(p.name for p in digests.glob("digest-*"))
    assert len(written) == 2 and {Path(n).suffix for n in written} == {".html", ".md"}
    assert oct(stories.stat().st_mode & 0o777) == oct(0o666 & ~umask)

    # The admin command finds the database from the installed configuration alone.
    shown = subprocess.run(
        [str(AGGREGATOR), "--config", str(config), "status"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for job in ("tick", "scan", "digest"):
        assert f"  job {job}: ok " in shown.stdout, shown.stdout
    assert f"database: {state / 'aggregator.db'}" in shown.stdout
    assert query(daemon.db, "SELECT title FROM articles") == [
        ("Harbour board delays the ferry terminal",)
    ]
    assert daemon.stop() == 0
    assert not list(installed.glob("etc/**/*.db")), "nothing written under /etc"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can become another user")
@pytest.mark.parametrize("exists", [True, False], ids=["database", "its folder"])
def test_root_becomes_the_owner_of_the_database_before_opening_it(exists: bool) -> None:
    """`sudo aggregator ...` on the service's database: every file it makes beside the
    database must be the service user's, who could not open root's. In a forked
    child (the change of user is for the whole process, and irreversible); it
    opens the database in WAL mode as the CLI does, so SQLite makes its files."""
    nobody = 65534
    base = Path(tempfile.mkdtemp(prefix="aggregator-owner-", dir="/tmp"))
    try:
        base.chmod(0o755)  # mkdtemp's 0700 would keep the new user out
        state = base / "state"
        state.mkdir()
        db = state / "aggregator.db"
        if exists:
            sqlite3.connect(db).close()
            os.chown(db, nobody, nobody)
        os.chown(state, nobody, nobody)
        child = os.fork()
        if child == 0:  # pragma: no cover (the child reports through its exit status)
            code = 1
            try:
                name = run_as_owner(db)
                connection = sqlite3.connect(db)
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("CREATE TABLE t (x)")
                (db.parent / "aggregator.db.lock").touch()
                code = 0 if name == "nobody" and os.geteuid() == nobody else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        owners = {p.name: p.stat().st_uid for p in state.iterdir()}
        assert set(owners) >= {"aggregator.db", "aggregator.db-wal", "aggregator.db.lock"}
        assert set(owners.values()) == {nobody}, owners
        assert os.geteuid() == 0, "the test process itself is still root"
    finally:
        shutil.rmtree(base)


def test_a_database_owned_by_root_or_a_user_who_is_not_root_changes_nothing(
    tmp_path: Path,
) -> None:
    """Not root, or root's own database: no change of user."""
    db = tmp_path / "aggregator.db"
    sqlite3.connect(db).close()
    owner = db.stat().st_uid
    assert run_as_owner(db) is None
    assert os.geteuid() == owner or os.geteuid() != 0
