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

# Measured wall time of a file (setup and teardown included), seconds; the files over 10 s only.
FILE_SECONDS: dict[str, float] = {
    "tests/integration/strategies/test_parity.py": 151,
    "tests/integration/listener/test_redis_outage.py": 148,
    "tests/integration/listener/test_faults.py": 116,
    "tests/e2e/test_chaos_short.py": 108,
    "tests/integration/foundation/test_opctl.py": 38,
    "tests/integration/telegram/test_c2_cli.py": 27,
    "tests/integration/strategies/test_live_control.py": 24,
    "tests/integration/trade_sync/test_trade_sync_cli.py": 24,
    "tests/integration/trade_sync/test_trade_sync_service.py": 23,
    "tests/unit/strategies/shortseller/test_shortseller_backtest.py": 23,
    "tests/unit/analytics/test_ledger.py": 23,
    "tests/integration/strategies/test_live_restart.py": 23,
    "tests/integration/listener/test_shutdown_and_watermark.py": 20,
    "tests/integration/strategies/test_state_pg.py": 19,
    "tests/integration/bybit_sim/test_venue_stepped.py": 17,
    "tests/integration/foundation/test_backup_restore.py": 16,
    "tests/integration/bybit_sim/test_venue_generate_limits_state.py": 16,
    "tests/integration/listener/test_announce_outbox.py": 15,
    "tests/unit/strategies/shortseller/test_shortseller_restart.py": 15,
    "tests/integration/trade_sync/test_trade_sync_resume.py": 14,
    "tests/integration/listener/test_listener_venue.py": 13,
    "tests/integration/listener/test_catchup_rate_limit.py": 13,
    "tests/integration/bybit_sim/test_venue_ws_protocol.py": 12,
    "tests/integration/bybit_sim/test_venue_stamp_clock.py": 11,
    "tests/integration/listener/test_write_path.py": 11,
}

# Files not in FILE_SECONDS: the first matching pattern's estimate.
FOLDER_SECONDS: list[tuple[str, float]] = [
    ("tests/e2e/*", 120.0),
    ("tests/integration/strategies/*", 20.0),
    ("tests/integration/*", 5.0),
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
