"""A PnL refresh counts each fill whole or not at all, whatever commits while it runs.

`trading.pnl_refresh()` takes the queue of new fills (`pnl_pending`) and then replays the pairs it
touched. A fill committed between the two must wait for the next refresh: counted by neither its
cash flow nor the replay (before migration 0037 the replay counted it in the open cost and the
trips while its cash flow waited, so realised PnL was off by its notional until the next refresh).
Every check reads the fills, the queue and the aggregates in one snapshot and compares the
aggregates (and the reports' own queries) with a replay in Python of exactly the fills they count.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from services.telegram_c2.service import open_backends
from shared.analytics.books import daily, replay
from shared.analytics.fills import LedgerFill
from shared.analytics.metrics import sum_totals
from shared.queries.reports import Reports
from tests.integration.telegram.pnl_snapshot import StatementWriter, check_snapshot
from tests.integration.telegram.randomfills import random_history
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, 1, 0, tzinfo=timezone.utc)


def _fill(n: int, side: str, qty: str, price: str, minutes: int) -> LedgerFill:
    return LedgerFill(bot_id="lxalgo_001", symbol="BTCUSDT", exec_id=f"race-{n}", exec_type="Trade", side=side,
                exec_price=Decimal(price), exec_qty=Decimal(qty), exec_time=T0 + timedelta(minutes=minutes),
                commission=Decimal("0.01"), seq=None)


def _refresh(stack: TestStack) -> int:
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        return conn.execute("SELECT trading.pnl_refresh()").fetchone()[0]


def _wait_blocked_by(owner: psycopg.Connection, pid: int, deadline_s: float = 20.0) -> None:
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if owner.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                         (pid,)).fetchone()[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the refresh never waited for the held row")


def test_a_fill_committed_while_a_refresh_runs_waits_for_the_next_refresh(clean_state: TestStack) -> None:
    """Deterministic: the refresh is held (a row lock on the day it adds to) after it took the queue,
    a fill commits, then the refresh goes on. That fill must not be in what the refresh applied."""
    stack = clean_state
    writer = StatementWriter()
    a = [_fill(1, "Buy", "2", "100", 0), _fill(2, "Sell", "1", "110", 1)]
    b = [_fill(3, "Buy", "1", "105", 2)]
    c = [_fill(4, "Buy", "5", "120", 3), _fill(5, "Sell", "9", "130", 4)]  # adds, then closes and flips
    with psycopg.connect(stack.db.dsn("listener"), prepare_threshold=None, autocommit=True) as listener, \
            psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as owner, \
            psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as blocker, \
            ThreadPoolExecutor(1) as pool:
        writer.write_sync(listener, a)
        assert _refresh(stack) == 2
        writer.write_sync(listener, b)
        with blocker.transaction():
            assert blocker.execute("SELECT 1 FROM trading.pnl_daily WHERE bot_id = 'lxalgo_001' AND day = %s FOR UPDATE",
                                   (T0.date(),)).fetchall()
            refreshing = pool.submit(_refresh, stack)
            _wait_blocked_by(owner, blocker.info.backend_pid)
            writer.write_sync(listener, c)  # commits while the refresh holds the queue it took
            assert not refreshing.done()
        assert refreshing.result(timeout=30) == 1  # b's fill only
        seen = check_snapshot(owner, writer)
        assert (seen.visible, seen.queued) == (5, 2)
        assert _refresh(stack) == 2
        seen = check_snapshot(owner, writer)
        assert (seen.visible, seen.queued) == (5, 0)


async def test_reports_read_while_fills_commit_equal_a_replay_of_what_they_count(clean_state: TestStack) -> None:
    """Three writers (listener_user, out-of-order statements), two refreshers (one of them the real
    report path: refresh, commit, read) and two checkers, all at once. Every checker snapshot must
    equal a replay of exactly the fills applied in it; the counts at the end show the checks ran
    while fills were queued, i.e. inside the race."""
    stack = clean_state
    fills = random_history(12, 3000, bots=("lxalgo_001", "momentum_001", "shortseller_001"), days=3)
    rnd = random.Random(12)
    rnd.shuffle(fills)
    statements: list[list[LedgerFill]] = []
    i = 0
    while i < len(fills):
        n = rnd.randint(1, 25)
        statements.append(fills[i:i + n])
        i += n
    writer = StatementWriter()
    writing = True
    written = [0]
    stats = {"checks": 0, "checks_with_queue": 0, "refreshes": 0, "reports": 0}
    failures: list[BaseException] = []
    lock = threading.Lock()

    async def write(k: int) -> None:
        async with await psycopg.AsyncConnection.connect(stack.db.dsn("listener"), prepare_threshold=None,
                                                         autocommit=True) as conn:
            for st in statements[k::3]:
                await writer.write(conn, st)
                written[0] += 1
                # Paced by the readers, so that every part of the run is read while it is written.
                while not failures and (stats["refreshes"] < written[0] // 8 or stats["checks"] < written[0] // 8
                                        or stats["reports"] < written[0] // 16):
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rnd.uniform(0, 0.01))

    async def refresh() -> None:
        async with await psycopg.AsyncConnection.connect(stack.db.dsn("c2"), prepare_threshold=None,
                                                         autocommit=True) as conn:
            while writing:
                await conn.execute("SELECT trading.pnl_refresh()")
                stats["refreshes"] += 1
                await asyncio.sleep(rnd.uniform(0, 0.01))

    async def report(reports: Reports) -> None:
        while writing:
            await reports.analytics("all")
            stats["reports"] += 1
            await asyncio.sleep(rnd.uniform(0, 0.01))

    def check() -> None:
        try:
            with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
                while writing:
                    seen = check_snapshot(conn, writer)
                    with lock:
                        stats["checks"] += 1
                        stats["checks_with_queue"] += seen.queued > 0
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    pool, redis_by_db = await open_backends(stack.db, stack.redis)
    try:
        checkers = [asyncio.create_task(asyncio.to_thread(check)) for _ in range(2)]
        readers = [asyncio.create_task(refresh()), asyncio.create_task(report(Reports(pool, redis_by_db)))]
        await asyncio.wait_for(asyncio.gather(*(write(k) for k in range(3))), timeout=300)
        writing = False
        await asyncio.gather(*readers, *checkers)
        if failures:
            raise failures[0]
        reports = Reports(pool, redis_by_db)
        final = await reports.analytics("all")
    finally:
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()

    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        seen = check_snapshot(conn, writer)
    assert (seen.visible, seen.queued) == (len(fills), 0)
    per_pair: dict[tuple[str, str], list[LedgerFill]] = {}
    for f in fills:
        per_pair.setdefault((f.bot_id, f.symbol), []).append(f)
    expected = sum_totals(d.totals for v in per_pair.values() for d in daily(replay(v)))
    assert (final.totals.trades, final.totals.volume, final.totals.fees) == (
        expected.trades, expected.volume, expected.fees)
    assert abs(final.totals.realised - expected.realised) < Decimal("1e-12")
    assert len(statements) > 200 and stats["checks_with_queue"] >= 10, stats
    assert stats["checks"] >= len(statements) // 8 and stats["refreshes"] >= len(statements) // 8, stats
    assert stats["reports"] >= len(statements) // 16, stats
