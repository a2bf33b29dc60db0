"""Win rate, profit factor, daily PnL, drawdown and Sharpe against brute-force computations."""
from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.analytics.books import daily, replay
from shared.analytics.metrics import (
    DayPnl, PnlTotals, TripStats, calendar, equity_curve, max_drawdown, performance, sharpe,
)
from tests.unit.analytics.fillgen import fill, fill_sequences
from tests.unit.analytics.reference import brute_drawdown, daily_net, ref_sharpe, simulate

TOL = Fraction(1, 10**12)


def test_hand_made_days_give_known_drawdown_win_rate_and_profit_factor() -> None:
    fills = [
        # day 1: long 1 @ 100 -> 110, +10 (win)
        fill(1, "Buy", "1", "100", minutes=0), fill(2, "Sell", "1", "110", minutes=60),
        # day 2: short 2 @ 50 -> 60, -20 (loss)
        fill(3, "Sell", "2", "50", minutes=1440), fill(4, "Buy", "2", "60", minutes=1500),
        # day 4 (day 3 quiet): long 1 @ 10 -> 15, +5 (win), held 30 min
        fill(5, "Buy", "1", "10", minutes=4320), fill(6, "Sell", "1", "15", minutes=4350),
    ]
    perf = performance(daily(replay(fills)))
    assert [v for _, v in perf.equity_curve] == [10, -10, -10, -5]
    assert perf.max_drawdown.amount == 20
    assert perf.max_drawdown.trough_day == fills[3].exec_time.date()
    assert perf.trips.win_rate == Decimal(2) / 3
    assert perf.trips.profit_factor == Decimal(15) / 20
    assert perf.trips.avg_holding_s == Decimal(60 * 60 + 60 * 60 + 30 * 60) / 3
    daily_values = [Decimal(10), Decimal(-20), Decimal(0), Decimal(5)]
    mean = sum(daily_values) / 4
    sd = (sum((x - mean) ** 2 for x in daily_values) / 3).sqrt()
    assert perf.sharpe == mean / sd * Decimal(365).sqrt()


def test_no_losing_trip_means_no_profit_factor_and_one_day_no_sharpe() -> None:
    perf = performance(daily(replay([fill(1, "Buy", "1", "1"), fill(2, "Sell", "1", "2")])))
    assert perf.trips.profit_factor is None
    assert perf.trips.win_rate == 1
    assert perf.sharpe is None
    assert perf.max_drawdown.amount == 0


def test_calendar_fills_quiet_days_with_zero() -> None:
    d0 = date(2026, 1, 1)
    days = [DayPnl(d0, PnlTotals(realised=Decimal(1)), TripStats()),
            DayPnl(d0 + timedelta(days=3), PnlTotals(realised=Decimal(2)), TripStats())]
    full = calendar(days)
    assert [d.day for d in full] == [d0 + timedelta(days=i) for i in range(4)]
    assert [d.totals.net for d in full] == [1, 0, 0, 2]


@settings(max_examples=100, deadline=None)
@given(fill_sequences())
def test_daily_figures_and_trip_stats_agree_with_the_reference(fills) -> None:
    books = replay(fills)
    ref = simulate(fills)
    ref_days = daily_net(fills, ref)
    days = daily(books)
    assert {d.day for d in days} == set(ref_days)
    for d in days:
        assert abs(Fraction(d.totals.net) - ref_days[d.day]) <= TOL
    perf = performance(days)
    wins = [t.net for t in ref.trips if t.net > 0]
    losses = [t.net for t in ref.trips if t.net < 0]
    assert perf.trips.count == len(ref.trips)
    assert perf.trips.wins == len(wins)
    assert perf.trips.losses == len(losses)
    if ref.trips:
        assert perf.trips.win_rate == Decimal(len(wins)) / len(ref.trips)
    if losses:
        assert abs(Fraction(perf.trips.profit_factor) - sum(wins) / -sum(losses)) <= TOL
    # Drawdown and Sharpe on the reference's own daily series, quiet days included.
    first, last = min(ref_days), max(ref_days)
    series = [ref_days.get(first + timedelta(days=i), Fraction(0)) for i in range((last - first).days + 1)]
    cumulative = [sum(series[: i + 1]) for i in range(len(series))]
    assert abs(Fraction(perf.max_drawdown.amount) - brute_drawdown(cumulative)) <= TOL
    if len(series) >= 2 and len(set(series)) > 1:
        assert math.isclose(float(perf.sharpe), ref_sharpe(series), rel_tol=1e-9, abs_tol=1e-9)
    else:
        assert perf.sharpe is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-1000, max_value=1000), max_size=30))
def test_max_drawdown_matches_every_pair_search(steps) -> None:
    d0 = date(2026, 1, 1)
    curve, total = [], Decimal(0)
    for i, step in enumerate(steps):
        total += Decimal(step) / 7
        curve.append((d0 + timedelta(days=i), total))
    assert abs(Fraction(max_drawdown(curve).amount) - brute_drawdown([Fraction(v) for _, v in curve])) <= TOL


def test_sharpe_needs_spread() -> None:
    assert sharpe([Decimal(1), Decimal(1), Decimal(1)]) is None
    assert sharpe([Decimal(1)]) is None
    assert equity_curve([]) == []
