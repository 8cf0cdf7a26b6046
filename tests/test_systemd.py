"""The systemd unit: `systemd-analyze verify` accepts it, and its exposure score is <= 1.5.

The tests run where `systemd-analyze` exists (`.ci/run` installs it when the
machine lacks it). `verify` checks that ExecStart= names an executable file,
so it is given a copy of the unit pointing at this checkout's `aggregator`
(installing means the same substitution, or /opt/aggregator per the README).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import AGGREGATOR, REPO, needs_tool

UNIT = REPO / "systemd" / "aggregator.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = needs_tool(ANALYZE, "systemd-analyze")


@needs_analyze
def test_unit_passes_verify(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/aggregator/bin/aggregator" in text
    unit = tmp_path / "aggregator.service"
    unit.write_text(text.replace("/opt/aggregator/bin/aggregator", str(AGGREGATOR)))
    result = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_analyze
def test_unit_exposure_is_at_most_1_5() -> None:
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5, result.stdout


def test_unit_runs_the_daemon_the_way_the_daemon_expects() -> None:
    settings = dict(
        line.split("=", 1)
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert settings["Type"] == "notify", "the daemon sends READY=1"
    assert settings["ExecStart"].endswith(" run")
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID", "SIGHUP reloads"
    assert settings["WatchdogSec"], "the daemon pings at half of it"
    assert settings["StateDirectory"] == "aggregator"
    assert (settings["User"], settings["Group"]) == ("aggregator", "aggregator")
    sysusers = (REPO / "systemd" / "aggregator.sysusers").read_text(encoding="utf-8")
    assert 'u aggregator - "aggregator news service" /var/lib/aggregator\n' in sysusers
    # The database and every path come from the configuration the unit names, the
    # same file root's admin commands find (no AGGREGATOR_DB that they would lack).
    assert "Environment" not in settings
    assert settings["ExecStart"].split()[1:3] == ["--config", "/etc/aggregator/aggregator.toml"]


TEMPLATE = REPO / "systemd" / "aggregator@.service"


@needs_analyze
def test_the_role_template_passes_verify_for_each_role(tmp_path: Path) -> None:
    """`aggregator@fetch.service`, `@dedup` and `@scheduler`: the template with its
    instance name as the role."""
    text = TEMPLATE.read_text(encoding="utf-8")
    assert "/opt/aggregator/bin/aggregator" in text
    template = tmp_path / "aggregator@.service"
    template.write_text(text.replace("/opt/aggregator/bin/aggregator", str(AGGREGATOR)))
    for role in ("fetch", "dedup", "scheduler"):
        result = subprocess.run(
            [str(ANALYZE), "verify", f"{template}:aggregator@{role}.service"],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), role


def test_the_role_template_runs_a_role_node() -> None:
    settings = dict(
        line.split("=", 1)
        for line in TEMPLATE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    # Role nodes send no READY=1 and handle no SIGHUP: a notify unit would time out.
    assert settings["Type"] == "exec" and "ExecReload" not in settings
    assert settings["ExecStart"].endswith(" run --role %i")
    assert settings["ExecStart"].split()[1:3] == ["--config", "/etc/aggregator/aggregator.toml"]
    assert settings["Restart"] == "always"
    assert settings["Conflicts"] == "aggregator.service"  # one or the other, never both
    assert (settings["User"], settings["Group"]) == ("aggregator", "aggregator")
