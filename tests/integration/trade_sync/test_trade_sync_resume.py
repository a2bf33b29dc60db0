"""A backfill killed with SIGKILL halfway, then run again, ends in exactly the state of the venue."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg

from services.bybit_sim.handle import VenueProcess
from tests.integration.trade_sync.conftest import start_listener_for
from tests.integration.trade_sync.test_trade_sync_backfill import run_ranges, venue_expected
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack
from tests.support.trade_sync_checks import differences, stored_rows


def _progress_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM trading.backfill_progress").fetchone()
    return row[0] if row else 0


async def test_sigkill_halfway_then_rerun_resumes_and_ends_exact(clean_state: TestStack, slow_venue: VenueProcess,
                                                                 tmp_path: Path) -> None:
    listener = start_listener_for(clean_state, slow_venue, tmp_path)
    try:
        env = h.base_env(clean_state.env, slow_venue, TRADE_SYNC_WINDOWS_IN_FLIGHT="1")
        owner = clean_state.db.dsn("owner", direct=True)
        proc = h.spawn_cli(["backfill", "--months", "3"], env, tmp_path / "killed.log")
        deadline = time.monotonic() + 120
        while _progress_rows(owner) < 6 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = _progress_rows(owner)
        assert 6 <= done_before < 42  # really halfway: some windows committed, others not

        rerun = h.run_cli(["backfill", "--months", "3", "--json"], env)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        outcomes = rerun.json()
        assert sum(o["windows_resumed"] for o in outcomes) == done_before
        assert all(o["status"] == "ok" for o in outcomes)

        with psycopg.connect(owner) as conn:
            statuses = sorted(r[0] for r in conn.execute(
                "SELECT status FROM trading.sync_runs WHERE kind = 'backfill'").fetchall())
        assert statuses == ["interrupted"] * 3 + ["ok"] * 3  # the killed run is closed, not left 'running'

        # the killed run's ranges started earlier; the venue's history over the union must all be there
        ranges = run_ranges(clean_state)
        with psycopg.connect(owner) as conn:
            firsts = dict(conn.execute("SELECT bot_id, min(range_start) FROM trading.sync_runs GROUP BY bot_id"))
        union = {b: (firsts[b], end) for b, (_s, end) in ranges.items()}
        expected = await venue_expected(slow_venue, union)
        assert differences(expected, stored_rows(owner)) == []
    finally:
        listener.stop()


async def test_sigterm_closes_the_run_as_interrupted_and_the_next_run_resumes(
        clean_state: TestStack, slow_venue: VenueProcess, tmp_path: Path) -> None:
    listener = start_listener_for(clean_state, slow_venue, tmp_path)
    try:
        env = h.base_env(clean_state.env, slow_venue, bots=["momentum_001"], TRADE_SYNC_WINDOWS_IN_FLIGHT="1")
        owner = clean_state.db.dsn("owner", direct=True)
        proc = h.spawn_cli(["backfill", "--months", "3"], env, tmp_path / "stopped.log")
        deadline = time.monotonic() + 120
        while _progress_rows(owner) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130
        assert "interrupted" in (tmp_path / "stopped.log").read_text()
        with psycopg.connect(owner) as conn:
            [(status, error)] = conn.execute("SELECT status, error FROM trading.sync_runs").fetchall()
        assert (status, error) == ("interrupted", "stopped by a signal")  # closed by the process itself
        done_before = _progress_rows(owner)
        assert done_before >= 3

        rerun = h.run_cli(["backfill", "--months", "3", "--json"], env)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        [outcome] = rerun.json()
        assert outcome["windows_resumed"] == done_before and outcome["status"] == "ok"
        with psycopg.connect(owner) as conn:
            firsts = dict(conn.execute("SELECT bot_id, min(range_start) FROM trading.sync_runs GROUP BY bot_id"))
        ranges = {b: (firsts[b], end) for b, (_s, end) in run_ranges(clean_state).items()}
        assert differences(await venue_expected(slow_venue, ranges), stored_rows(owner)) == []
    finally:
        listener.stop()
