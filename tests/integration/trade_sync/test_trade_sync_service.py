"""The service mode (scheduled sync + heartbeat + health) and the three ways to start the command."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from services.bybit_sim.handle import VenueProcess
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack


def _scheduled_runs(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT bot_id, status FROM trading.sync_runs WHERE trigger = 'schedule' "
                            "AND status <> 'running'").fetchall()


def test_serve_syncs_on_schedule_and_reports_health(listener: h.Listener, env: dict[str, str],
                                                    clean_state: TestStack, tmp_path: Path) -> None:
    unhealthy = h.run_cli(["health"], env)
    assert unhealthy.returncode == 1 and "unhealthy" in unhealthy.stderr
    env = {**env, "TRADE_SYNC_INTERVAL_S": "10"}
    log_path = tmp_path / "serve.log"
    with open(log_path, "ab") as log:  # started the way the container starts it: python main.py serve
        proc = subprocess.Popen([sys.executable, "main.py", "serve"], cwd=h.REPO / "services" / "trade_sync",
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        owner = clean_state.db.dsn("owner", direct=True)
        deadline = time.monotonic() + 60
        while len(_scheduled_runs(owner)) < 6 and time.monotonic() < deadline:  # two cycles of three bots
            assert proc.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.2)
        runs = _scheduled_runs(owner)
        assert len(runs) >= 6 and {s for _b, s in runs} == {"ok"}, log_path.read_text()[-2000:]
        healthy = h.run_cli(["health"], env)
        assert healthy.returncode == 0 and healthy.stdout.startswith("healthy")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 0
    assert any(json.loads(ln).get("event") == "scheduled_sync" for ln in log_path.read_text().splitlines()
               if ln.startswith("{"))


def test_entry_points(env: dict[str, str], venue: VenueProcess) -> None:
    as_module = subprocess.run([sys.executable, "-m", "services.trade_sync", "status", "--json"], cwd=h.REPO,
                               env=env, capture_output=True, text=True, timeout=60)
    assert as_module.returncode == 0, as_module.stderr
    assert [s["bot_id"] for s in json.loads(as_module.stdout)] == ["shortseller_001", "lxalgo_001", "momentum_001"]
    in_folder = subprocess.run([sys.executable, "main.py", "status"], cwd=h.REPO / "services" / "trade_sync",
                               env=env, capture_output=True, text=True, timeout=60)
    assert in_folder.returncode == 0, in_folder.stderr
    assert in_folder.stdout.splitlines()[0].split()[:2] == ["bot", "fills"]
    from_root = h.run_cli(["status", "--json"], env)
    assert from_root.returncode == 0 and json.loads(from_root.stdout) == json.loads(as_module.stdout)
