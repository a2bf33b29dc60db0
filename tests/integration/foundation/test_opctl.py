"""The operators' commands locally (`make backfill`, `make sync`, `make sync-status`, `make cli`): they
load the local platform's settings and keys themselves, as after `make run`. Real venue, listener,
PostgreSQL via PgBouncer and Redis."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.bybit_sim.handle import VenueProcess
from tests.support import trade_sync_harness as h
from tests.support.stack import REPO, TestStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    state = tmp_path_factory.mktemp("opctl_venue") / "state.json"
    h.seed_state(state, months=1, executions=120)
    v = h.start_venue(state)
    yield v
    v.close()


@pytest.fixture
def run_dir(clean_state: TestStack, venue: VenueProcess, tmp_path: Path) -> Path:
    """What `make run` leaves in .run/, pointing at this test's stack and venue."""
    d = tmp_path / "run"
    d.mkdir()
    clean_state.local.write_env_file(d / "stack.env")
    (d / "local-keys.env").write_text("".join(f"{k}={v}\n" for k, v in h.keys_env().items()))
    (d / "venue.env").write_text(f"BYBIT_VENUE=sim\nBYBIT_SIM_HOST={venue.host}\nBYBIT_SIM_PORT={venue.port}\n")
    return d


@pytest.fixture
def listener(clean_state: TestStack, venue: VenueProcess, tmp_path: Path) -> Iterator[h.Listener]:
    lst = h.start_listener(h.base_env(clean_state.env, venue), tmp_path / "listener.log",
                           clean_state.redis.redis_port,
                           clean_state.redis.redis_password.get_secret_value())  # type: ignore[union-attr]
    yield lst
    lst.stop()


def clean_env() -> dict[str, str]:
    """A shell with nothing of the platform in it: everything must come from the run folder."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("POSTGRES_", "PGBOUNCER_", "REDIS_", "BYBIT_", "LISTENER_", "TRADE_SYNC_", "C2_"))
            and not k.endswith(("_API_KEY", "_API_SECRET", "_PASSWORD"))}


def opctl(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.opctl", "--run-dir", str(run_dir), *args], cwd=REPO,
                          env=clean_env(), text=True, capture_output=True, timeout=300)


def make(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", *args], cwd=REPO,
                          env={**clean_env(), "ALPHA_RUN_DIR": str(run_dir)}, text=True, capture_output=True,
                          timeout=300)


def fills_per_bot(stack: TestStack) -> dict[str, int]:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        return dict(conn.execute("SELECT bot_id, count(*) FROM trading.fills GROUP BY bot_id").fetchall())


def test_backfill_sync_status_and_reports(clean_state: TestStack, run_dir: Path, listener: h.Listener) -> None:
    res = make(run_dir, "backfill", "MONTHS=1", "BOT=lxalgo_001")
    assert res.returncode == 0, res.stderr[-2000:]
    assert set(fills_per_bot(clean_state)) == {"lxalgo_001"}
    res = opctl(run_dir, "backfill", "--months", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    counts = fills_per_bot(clean_state)
    assert set(counts) == {"shortseller_001", "lxalgo_001", "momentum_001"} and min(counts.values()) > 0

    res = make(run_dir, "sync")
    assert res.returncode == 0, res.stderr[-2000:]
    assert fills_per_bot(clean_state) == counts

    res = opctl(run_dir, "sync-status", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "lxalgo_001" in json.dumps(json.loads(res.stdout))
    res = make(run_dir, "sync-status")
    assert res.returncode == 0 and "momentum_001" in res.stdout, res.stderr[-2000:]

    res = make(run_dir, "cli", "CMD=analytics 7d")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip()
    res = make(run_dir, "cli", "CMD=fills 5 lxalgo_001")
    assert res.returncode == 0 and "lxalgo_001" in res.stdout, res.stderr[-2000:]


BAD = [
    ["backfill"],
    ["backfill", "--months", "0"],
    ["backfill", "--months", "three"],
    ["backfill", "--months", "1", "--bot", "nosuch_001"],
    ["sync", "--hours", "0"],
    ["sync-status", "extra"],
    ["cli"],
    ["cli", "nosuch"],
    ["cli", "analytics", "0"],
    ["cli", "daily", "999999"],
    ["frobnicate"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) or "none" for a in BAD])
def test_bad_input_is_one_line_and_exit_2(run_dir: Path, args: list[str]) -> None:
    res = opctl(run_dir, *args)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr


def test_without_a_local_platform(tmp_path: Path) -> None:
    res = opctl(tmp_path / "nothing", "sync-status")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "make run" in res.stderr
    res = make(tmp_path / "nothing", "backfill")
    assert res.returncode == 2 and "MONTHS is required" in res.stderr
