"""Additive PnL and round-trip statistics, and the metrics derived from a daily series.

Everything here is additive per UTC day, so the same figures come out whether the days were built
from raw fills in Python or read from SQL aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

ZERO = Decimal(0)
DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class PnlTotals:
    """Trade count and volume count `Trade` executions only; PnL counts every execution."""

    trades: int = 0
    volume: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.realised - self.fees - self.funding

    def __add__(self, other: PnlTotals) -> PnlTotals:
        return PnlTotals(
            self.trades + other.trades,
            self.volume + other.volume,
            self.realised + other.realised,
            self.fees + other.fees,
            self.funding + other.funding,
        )


@dataclass(frozen=True)
class TripStats:
    """Closed round trips: a win has net PnL > 0, a loss < 0; break-even is neither."""

    count: int = 0
    wins: int = 0
    losses: int = 0
    gross_win: Decimal = ZERO
    gross_loss: Decimal = ZERO  # positive: the sum of the losing trips' |net|
    holding_s: Decimal = ZERO

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.wins) / Decimal(self.count) if self.count else None

    @property
    def profit_factor(self) -> Decimal | None:
        return self.gross_win / self.gross_loss if self.gross_loss > ZERO else None

    @property
    def avg_holding_s(self) -> Decimal | None:
        return self.holding_s / Decimal(self.count) if self.count else None

    @property
    def net(self) -> Decimal:
        return self.gross_win - self.gross_loss

    def __add__(self, other: TripStats) -> TripStats:
        return TripStats(
            self.count + other.count,
            self.wins + other.wins,
            self.losses + other.losses,
            self.gross_win + other.gross_win,
            self.gross_loss + other.gross_loss,
            self.holding_s + other.holding_s,
        )

    @staticmethod
    def of_trip(net: Decimal, holding_s: Decimal) -> TripStats:
        return TripStats(
            count=1,
            wins=1 if net > ZERO else 0,
            losses=1 if net < ZERO else 0,
            gross_win=net if net > ZERO else ZERO,
            gross_loss=-net if net < ZERO else ZERO,
            holding_s=holding_s,
        )


@dataclass(frozen=True)
class DayPnl:
    """One UTC day: PnL realised that day, and the round trips that closed that day."""

    day: date
    totals: PnlTotals
    trips: TripStats


@dataclass(frozen=True)
class Drawdown:
    amount: Decimal
    peak_day: date | None
    trough_day: date | None


@dataclass(frozen=True)
class Performance:
    totals: PnlTotals
    trips: TripStats
    max_drawdown: Drawdown
    sharpe: Decimal | None
    equity_curve: tuple[tuple[date, Decimal], ...]


def sum_totals(items: Iterable[PnlTotals]) -> PnlTotals:
    out = PnlTotals()
    for item in items:
        out = out + item
    return out


def sum_trips(items: Iterable[TripStats]) -> TripStats:
    out = TripStats()
    for item in items:
        out = out + item
    return out


def merge_days(days: Iterable[DayPnl]) -> list[DayPnl]:
    """Combine rows of the same day (e.g. from several bots or symbols), oldest first."""
    by_day: dict[date, DayPnl] = {}
    for d in days:
        prev = by_day.get(d.day)
        by_day[d.day] = d if prev is None else DayPnl(d.day, prev.totals + d.totals, prev.trips + d.trips)
    return [by_day[k] for k in sorted(by_day)]


def calendar(days: Sequence[DayPnl]) -> list[DayPnl]:
    """Every day from the first to the last, quiet days as zero: Sharpe needs them."""
    merged = merge_days(days)
    if not merged:
        return []
    have = {d.day: d for d in merged}
    out: list[DayPnl] = []
    cur = merged[0].day
    while cur <= merged[-1].day:
        out.append(have.get(cur) or DayPnl(cur, PnlTotals(), TripStats()))
        cur += timedelta(days=1)
    return out


def equity_curve(days: Sequence[DayPnl]) -> list[tuple[date, Decimal]]:
    """Cumulative net PnL at the end of each day."""
    total = ZERO
    out: list[tuple[date, Decimal]] = []
    for d in calendar(days):
        total += d.totals.net
        out.append((d.day, total))
    return out


def max_drawdown(curve: Sequence[tuple[date, Decimal]]) -> Drawdown:
    """Largest fall from a running peak; the curve starts from zero before its first day."""
    peak, peak_day = ZERO, None
    best = Drawdown(ZERO, None, None)
    for day, value in curve:
        if value > peak:
            peak, peak_day = value, day
        if peak - value > best.amount:
            best = Drawdown(peak - value, peak_day, day)
    return best


def sharpe(daily_net: Sequence[Decimal], periods_per_year: int = DAYS_PER_YEAR) -> Decimal | None:
    """Annualised mean / sample stdev of daily net PnL; None with fewer than 2 days or no spread.

    Computed on PnL rather than returns: for a constant capital base the ratio is the same.
    """
    n = len(daily_net)
    if n < 2:
        return None
    mean = sum(daily_net, ZERO) / n
    var = sum(((x - mean) ** 2 for x in daily_net), ZERO) / (n - 1)
    if var == ZERO:
        return None
    return mean / var.sqrt() * Decimal(periods_per_year).sqrt()


def performance(days: Sequence[DayPnl]) -> Performance:
    full = calendar(days)
    curve = equity_curve(full)
    return Performance(
        totals=sum_totals(d.totals for d in full),
        trips=sum_trips(d.trips for d in full),
        max_drawdown=max_drawdown(curve),
        sharpe=sharpe([d.totals.net for d in full]),
        equity_curve=tuple(curve),
    )
