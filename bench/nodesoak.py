"""Nodes soak (issue 17): fetch and dedup nodes on PostgreSQL against the fault farm,
with one fetch node and then the active dedup writer killed with SIGKILL.

    python -m bench.nodesoak [--db postgresql://...] --feeds 100 --minutes 30 --out bench/out/nodes

(`make soak-nodes`, 5 minutes: the last step of `.ci/run`.) Without `--db`, a
throwaway PostgreSQL server is started for the run (bench/pgserver.py). Exit
status 0 only when the ledger is clean, every feed's final state was stored,
nothing is left staged and every node exited 0 on SIGTERM.

What it runs, and what it decides:

* **The farm** (`bench/farm.py`, as in bench/soak.py): feeds that change, break,
  redirect, drip and come back, and a ledger of every entry served.
* **The nodes**: `--writers` processes of `aggregator run --role dedup` (the
  first becomes the writer, the others stand by) and `--fetchers` of `--role
  fetch`, each logging to its own file in `--out`.
* **The kills**, at a third and at two thirds of the soak: one fetch node is
  killed with SIGKILL and started again 2 s later; then the node that is the
  dedup writer (by the `nodes` table) is killed the same way and started
  again as a standby. The takeover time is from the kill to the line in
  which another node says it is the writer.
* **The end**: the farm goes quiet; the soak waits until every enabled feed
  has had a successful poll after its final answer (bench/soak.py
  `waiting_feeds`) and nothing is left staged, then stops every node with
  SIGTERM (each must exit 0) and checks the ledger as bench/soak.py does:
  0 lost, 0 stored twice, 0 phantom, 0 stale is a pass.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aggregator.config import PostgresURL
from bench.soak import (
    AGGREGATOR,
    Farm,
    NotReadyError,
    SoakConfig,
    _config_text,
    _query,
    check_ledger,
    machine,
    subscribe_opml,
    waiting_feeds,
)


@dataclass(frozen=True, slots=True)
class NodesSoakConfig:
    soak: SoakConfig  # its database must be an empty PostgreSQL database
    fetchers: int = 3
    writers: int = 2
    lease_seconds: float = 4.0
    heartbeat_seconds: float = 1.0


class NodeProcess:
    """One `aggregator run --role ROLE` subprocess, started again after a kill."""

    def __init__(self, role: str, name: str, config: Path, out: Path) -> None:
        self.role, self.name, self.config = role, name, config
        self.log = out / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(AGGREGATOR), "--config", str(self.config), "run", "--role", self.role],
                stdout=log,
                stderr=log,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int | str:
        assert self.process is not None
        if self.process.poll() is not None:
            return f"had exited: {self.process.returncode}"
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return f"killed after {timeout:.0f} s: {self.process.wait()}"


def _writer_said(nodes: list[NodeProcess]) -> int:
    return sum(n.text().count("the writer now") for n in nodes if n.role == "dedup")


def _wait(check: Any, timeout: float, what: str) -> float:
    """Seconds until `check()` held; RuntimeError after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _staged(db: PostgresURL) -> int:
    with contextlib.suppress(NotReadyError):
        return int(_query(db, "SELECT count(*) FROM staged")[0][0])
    return -1


def run_nodes_soak(cfg: NodesSoakConfig, progress: IO[str] | None = None) -> dict[str, Any]:
    """Run one nodes soak; the report (also written to out / report.json)."""
    soak = cfg.soak
    db = soak.database
    if not isinstance(db, PostgresURL):
        raise ValueError("the nodes soak needs an empty PostgreSQL database (--db)")
    out = soak.out
    out.mkdir(parents=True, exist_ok=True)
    config = out / "aggregator.toml"
    config.write_text(
        _config_text(soak)
        + f"lease_seconds = {cfg.lease_seconds}\nheartbeat_seconds = {cfg.heartbeat_seconds}\n",
        encoding="utf-8",
    )
    report: dict[str, Any] = {"machine": machine(), "fetchers": cfg.fetchers}
    report["writers"], report["soak_seconds"] = cfg.writers, soak.seconds

    def say(text: str) -> None:
        if progress is not None:
            print(f"[nodes {time.strftime('%H:%M:%S')}] {text}", file=progress, flush=True)

    farm = Farm(soak)
    nodes: list[NodeProcess] = []
    try:
        subscribe_opml(config, farm.urls, out / "farm.opml")
        nodes.append(NodeProcess("dedup", "dedup0", config, out))
        _wait(lambda: _writer_said(nodes) >= 1, 120, "the first writer")
        nodes += [NodeProcess("dedup", f"dedup{k}", config, out) for k in range(1, cfg.writers)]
        nodes += [NodeProcess("fetch", f"fetch{k}", config, out) for k in range(cfg.fetchers)]
        started = time.monotonic()
        say(f"{cfg.writers} dedup and {cfg.fetchers} fetch nodes, {soak.feeds} feeds")
        kills: list[dict[str, Any]] = []
        staged_max = 0
        plan = [(soak.seconds / 3, "fetch"), (2 * soak.seconds / 3, "dedup")]
        while (elapsed := time.monotonic() - started) < soak.seconds:
            staged_max = max(staged_max, _staged(db))
            if plan and elapsed >= plan[0][0]:
                _, role = plan.pop(0)
                kills.append(_kill(role, nodes, db, say))
            time.sleep(1.0)
        quiet_at = farm.ask("quiet")["quiet_at"]
        say("farm quiet; waiting for the final polls and an empty queue")
        deadline, missing = time.monotonic() + soak.final_timeout, ["(not checked yet)"]
        fewest = len(missing) + 1
        while time.monotonic() < deadline:
            answered = farm.ask("status")["final_answered"]
            with contextlib.suppress(NotReadyError):
                missing = waiting_feeds(db, answered)
            if not missing and _staged(db) == 0:
                break
            if len(missing) < fewest:
                fewest, deadline = len(missing), time.monotonic() + soak.final_timeout
            time.sleep(1.0)
        report["final_wait_seconds"] = round(time.time() - quiet_at, 1)
        report["final_wait_missing"] = missing
        report["staged_left"], report["staged_max"] = _staged(db), staged_max
        report["alive_at_end"] = {n.name: n.process.poll() is None for n in nodes if n.process}
        report["exits"] = {n.name: n.stop() for n in nodes}
        report["kills"] = kills
        farm.ask(f"ledger {out / 'ledger.json'}")
        ledger = json.loads((out / "ledger.json").read_text(encoding="utf-8"))
        report["ledger"] = check_ledger(db, ledger)
        report["faults_injected"] = {
            k: v for k, v in sorted(ledger["counts"].items()) if k not in ("ok", "200", "304")
        }
        report["set_aside"] = int(
            _query(db, "SELECT count(*) FROM staged WHERE set_aside IS NOT NULL")[0][0]
        )
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
                node.process.wait()
        farm.close()
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str), "utf-8")
    return report


def _kill(role: str, nodes: list[NodeProcess], db: PostgresURL, say: Any) -> dict[str, Any]:
    """SIGKILL one node of `role` (the writer, for dedup), start it again; what happened."""
    if role == "dedup":
        rows = _query(
            db,
            "SELECT pid FROM nodes WHERE role = 'dedup' AND state = 'writer' "
            "AND stopped_at IS NULL ORDER BY heartbeat_at DESC LIMIT 1",
        )
        pids = {int(r[0]) for r in rows}
        victim = next(n for n in nodes if n.role == "dedup" and n.pid in pids)
    else:
        victim = next(n for n in nodes if n.role == "fetch")
    before = _writer_said(nodes)
    victim.kill()
    killed_at = time.monotonic()
    say(f"killed {victim.name} (pid {victim.pid}) with SIGKILL")
    event: dict[str, Any] = {"role": role, "node": victim.name, "pid": victim.pid}
    if role == "dedup":
        event["takeover_s"] = round(
            _wait(lambda: _writer_said(nodes) > before, 120, "a standby taking over"), 2
        )
        say(f"a standby took over in {event['takeover_s']} s")
    time.sleep(max(0.0, 2.0 - (time.monotonic() - killed_at)))
    victim.start()
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db", help="an empty PostgreSQL database URL (default: a throwaway server of its own)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/nodes"))
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--fetchers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.db is None:
        from bench.pgserver import pg_server

        with pg_server(None) as server:
            return _main(args, server.new_database("nodesoak"))
    return _main(args, args.db)


def _main(args: argparse.Namespace, url: str) -> int:
    soak = SoakConfig(
        out=args.out,
        database=PostgresURL(url),
        feeds=args.feeds,
        seconds=args.minutes * 60,
        final_timeout=180,
    )
    report = run_nodes_soak(NodesSoakConfig(soak, args.fetchers, args.writers), sys.stderr)
    ledger = report["ledger"]
    shown = {k: (len(v) if isinstance(v, list) else v) for k, v in ledger.items()}
    print(
        json.dumps(
            {**{k: v for k, v in report.items() if k != "ledger"}, "ledger": shown},
            indent=1,
            default=str,
        )
    )
    failed = any(ledger[k] for k in ("lost", "twice", "phantom", "stale"))
    exits = any(code != 0 for code in report["exits"].values())
    stuck = report["final_wait_missing"] or report["staged_left"] != 0
    return 1 if failed or exits or stuck or len(report["kills"]) < 2 else 0


if __name__ == "__main__":
    raise SystemExit(main())
