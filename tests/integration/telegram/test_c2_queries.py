"""The query layer's PnL windows against a Python replay of the same fills: a window's realised
PnL counts only what the fills inside it realised, even for positions opened before it."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.telegram_c2.service import open_backends
from shared.analytics.books import daily, replay
from shared.analytics.metrics import performance, sum_totals, sum_trips
from shared.queries.reports import Reports
from tests.integration.telegram.randomfills import T0, random_history
from tests.integration.telegram.writer import listener_writer
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
TOL = Decimal("1e-12")


@pytest.mark.parametrize("window,days_back", [("today", 0), ("7d", 6), ("30d", 29), ("all", None)])
async def test_windows_and_daily_series_match_a_replay(clean_state: TestStack, window: str,
                                                       days_back: int | None) -> None:
    fills = random_history(31, 500, bots=("lxalgo_001", "momentum_001"), days=40)
    async with listener_writer(clean_state) as writer:
        await writer.write(fills[250:])
        await writer.write(fills[:250])
    now = T0 + timedelta(days=33, hours=5)
    since = None if days_back is None else now.date() - timedelta(days=days_back)
    days = [d for d in daily(replay(fills)) if since is None or d.day >= since]
    pool, redis_by_db = await open_backends(clean_state.db, clean_state.redis)
    try:
        reports = Reports(pool, redis_by_db)
        got = await reports.analytics(window, now=now)
        for bot_id in ("lxalgo_001", "momentum_001"):
            mine = await reports.analytics(window, now=now, bot_id=bot_id)
            bot_days = [d for d in daily(replay([f for f in fills if f.bot_id == bot_id]))
                        if since is None or d.day >= since]
            assert abs(mine.totals.realised - sum_totals(d.totals for d in bot_days).realised) < TOL
        perf = await reports.performance("momentum_001")
        daily_report = await reports.daily(5, now=now)
    finally:
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()
    expected, trips = sum_totals(d.totals for d in days), sum_trips(d.trips for d in days)
    assert (got.totals.trades, got.totals.volume, got.totals.fees, got.totals.funding) == (
        expected.trades, expected.volume, expected.fees, expected.funding)
    assert abs(got.totals.realised - expected.realised) < TOL
    assert (got.trips.count, got.trips.wins, got.trips.losses) == (trips.count, trips.wins, trips.losses)
    assert abs(got.trips.gross_win - trips.gross_win) < TOL and got.trips.holding_s == trips.holding_s
    exp_perf = performance(daily(replay([f for f in fills if f.bot_id == "momentum_001"])))
    assert abs(perf.performance.max_drawdown.amount - exp_perf.max_drawdown.amount) < TOL
    assert abs(perf.performance.sharpe - exp_perf.sharpe) < Decimal("1e-9")
    assert [(d, round(v, 10)) for d, v in perf.performance.equity_curve] == [
        (d, round(v, 10)) for d, v in exp_perf.equity_curve]
    last5 = [d for d in daily(replay(fills)) if d.day > now.date() - timedelta(days=5) and d.day <= now.date()]
    assert [d.day for d in daily_report.days] == [d.day for d in reversed(last5)]
    assert all(abs(a.totals.net - b.totals.net) < TOL for a, b in zip(daily_report.days, reversed(last5)))
