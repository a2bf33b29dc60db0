"""Longest-file-first scheduling of test files across pytest-xdist workers (`--dist loadfile`).

xdist's own loadfile scheduler hands out files largest-number-of-tests first, so the long integration
files (one or a few tests of a minute or more each) come last and one worker ends alone on them while
the others sit idle. It also gives a worker its next file while it still runs the second-to-last test
of the current one, so a file can wait behind a long test while another worker is free.

Here a worker gets its next file only when it has nothing left to start (an xdist worker holds its last
test until it knows the next one, so "nothing left to start" is one pending test), and the file it gets
is the one expected to take longest (FILE_SECONDS: wall times measured on the 2-core CI machine; files
not listed are estimated by folder). When the only test a worker holds is a whole file not begun yet (a
one-test file such as the chaos run), whatever it gets next waits behind that test, so it gets the
shortest file instead of a long one another worker could start now.
"""
from __future__ import annotations

from fnmatch import fnmatch

from xdist.scheduler import LoadFileScheduling

# Measured wall time of a file, setup and teardown included, in seconds (`--durations=0` of a `make test`
# with 3 workers on the 2-core machine, shared with other runs), for the files over 5 s. Only the order
# matters: refresh it when a file becomes much longer or shorter.
FILE_SECONDS: dict[str, float] = {
    "tests/integration/strategies/test_parity.py": 35,  # the held venue (was 150 on the stepped one)
    "tests/integration/listener/test_redis_outage.py": 145,
    "tests/integration/listener/test_faults.py": 125,
    "tests/e2e/test_chaos_short.py": 110,
    "tests/integration/telegram/test_c2_cli.py": 68,
    "tests/integration/trade_sync/test_trade_sync_cli.py": 62,
    "tests/integration/strategies/test_live_control.py": 56,
    "tests/integration/foundation/test_opctl.py": 44,
    "tests/unit/strategies/test_indicators_oscillators.py": 43,
    "tests/integration/strategies/test_live_restart.py": 43,
    "tests/integration/telegram/test_c2_access.py": 40,
    "tests/integration/trade_sync/test_trade_sync_service.py": 37,
    "tests/integration/trade_sync/test_trade_sync_backfill.py": 35,
    "tests/integration/bybit_sim/test_venue_generate_limits_state.py": 35,
    "tests/unit/strategies/test_backtest_cli.py": 35,
    "tests/integration/trade_sync/test_trade_sync_sync.py": 35,
    "tests/integration/bybit_sim/test_venue_stamp_clock.py": 34,
    "tests/unit/strategies/test_run_cli.py": 33,
    "tests/unit/strategies/shortseller/test_shortseller_restart.py": 32,
    "tests/integration/listener/test_shutdown_and_watermark.py": 30,
    "tests/unit/strategies/shortseller/test_shortseller_main.py": 28,
    "tests/integration/listener/test_write_path.py": 26,
    "tests/integration/bybit_sim/test_venue_stepped.py": 25,
    "tests/integration/listener/test_recovered_and_auth.py": 25,
    "tests/integration/trade_sync/test_trade_sync_resume.py": 24,
    "tests/unit/strategies/shortseller/test_shortseller_backtest.py": 23,
    "tests/integration/telegram/test_c2_alerts.py": 22,
    "tests/integration/strategies/test_shortseller_process.py": 22,
    "tests/integration/strategies/test_state_pg.py": 21,
    "tests/integration/listener/test_listener_venue.py": 20,
    "tests/integration/telegram/test_c2_e2e.py": 19,
    "tests/integration/telegram/test_killswitch_on_venue.py": 18,
    "tests/integration/listener/test_catchup_rate_limit.py": 18,
    "tests/integration/listener/test_announce_outbox.py": 17,
    "tests/integration/telegram/test_c2_bot_events.py": 16,
    "tests/integration/foundation/test_backup_restore.py": 16,
    "tests/unit/analytics/test_ledger.py": 16,
    "tests/integration/telegram/test_flatten_on_venue.py": 15,
    "tests/integration/telegram/test_c2_ops.py": 14,
    "tests/integration/telegram/test_c2_cc.py": 13,
    "tests/unit/strategies/test_indicators_properties.py": 13,
    "tests/integration/listener/test_klines.py": 12,
    "tests/integration/strategies/test_shortseller_live_entry.py": 12,
    "tests/integration/bybit_sim/test_venue_ws_protocol.py": 11,
    "tests/unit/strategies/shortseller/test_shortseller_lookahead.py": 10,
    "tests/integration/foundation/test_restarts.py": 10,
    "tests/unit/listener/test_classify_fuzz.py": 9,
    "tests/integration/telegram/test_c2_reconciler_alerts.py": 9,
    "tests/integration/bybit_sim/test_venue_shapes.py": 9,
    "tests/integration/bybit_sim/test_venue_klines.py": 7,
    "tests/unit/analytics/test_metrics.py": 7,
    "tests/unit/strategies/shortseller/test_shortseller_signals_real_candles.py": 6,
    "tests/integration/bybit_sim/test_venue_admin_auth.py": 6,
    "tests/integration/telegram/test_pnl_refresh_race.py": 5,
    "tests/integration/telegram/test_pnl_aggregates.py": 5,
    "tests/integration/listener/test_watched_tasks.py": 5,
    "tests/unit/test_settings.py": 5,
}

# Files not in FILE_SECONDS: the first matching pattern's estimate.
FOLDER_SECONDS: list[tuple[str, float]] = [
    ("tests/e2e/*", 120.0),
    ("tests/integration/strategies/*", 60.0),
    ("tests/integration/*", 10.0),
    ("*", 1.0),
]


def estimate(path: str) -> float:
    if path in FILE_SECONDS:
        return FILE_SECONDS[path]
    return next(seconds for pattern, seconds in FOLDER_SECONDS if fnmatch(path, pattern))


class LongestFirstFileScheduling(LoadFileScheduling):
    """LoadFileScheduling that starts the longest files first and gives a file only to an idle worker."""

    def _held_file_not_begun(self, node: object) -> bool:
        """The worker's only pending test is the only test of a file it has not begun."""
        work = self.assigned_work.get(node, {})
        pending = [tests for tests in work.values() if not all(tests.values())]
        return len(pending) == 1 and len(pending[0]) == 1

    def _assign_work_unit(self, node: object) -> None:
        pick = min if self._held_file_not_begun(node) else max
        scope = pick(self.workqueue, key=lambda s: (estimate(s), s))
        self.workqueue.move_to_end(scope, last=False)  # the base class takes the first unit of the queue
        super()._assign_work_unit(node)

    def _reschedule(self, node: object) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:
            return  # still has a test to start after the one it runs
        self._assign_work_unit(node)
