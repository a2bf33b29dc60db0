"""An independent average-cost simulation for the tests, written apart from the product code.

It works in exact fractions with an explicit average entry price (the textbook formula), splits a
flipping fill into a closing part and an opening part, and finds round trips by scanning for the
points where the running position is zero. The product keeps an open *cost* instead and never
splits fills into virtual ones, so the two only agree if both are right.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from shared.analytics.fills import LedgerFill

MOVES = {"Trade", "AdlTrade", "BustTrade", "Delivery", "BlockTrade", "MovePosition", "FutureSpread"}


@dataclass
class RefTrip:
    opened_at: datetime
    closed_at: datetime
    net: Fraction


@dataclass
class RefResult:
    realised_by_fill: dict[str, Fraction]
    fee_by_fill: dict[str, Fraction]
    funding_by_fill: dict[str, Fraction]
    trips: list[RefTrip]
    position: dict[tuple[str, str], Fraction]
    avg_entry: dict[tuple[str, str], Fraction]


def _order(f: LedgerFill) -> tuple:
    return (f.exec_time, f.seq or 0, f.exec_id)


def simulate(fills: list[LedgerFill]) -> RefResult:
    realised: dict[str, Fraction] = {}
    fees: dict[str, Fraction] = {}
    funding: dict[str, Fraction] = {}
    trips: list[RefTrip] = []
    pos: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    avg: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    trip_open: dict[tuple[str, str], datetime] = {}
    trip_net: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for f in sorted(fills, key=_order):
        k = (f.bot_id, f.symbol)
        fee = Fraction(f.commission)
        realised[f.exec_id] = Fraction(0)
        fees[f.exec_id] = Fraction(0)
        funding[f.exec_id] = Fraction(0)
        if f.exec_type == "Funding":
            funding[f.exec_id] = fee
            if pos[k] != 0:
                trip_net[k] -= fee
            continue
        fees[f.exec_id] = fee
        if f.exec_type not in MOVES or f.side not in ("Buy", "Sell"):
            continue
        direction = 1 if f.side == "Buy" else -1
        qty = Fraction(f.exec_qty)
        price = Fraction(f.exec_price)
        # Split the fill into (closing part, opening part).
        if pos[k] * direction < 0:
            closing = min(qty, abs(pos[k]))
        else:
            closing = Fraction(0)
        opening = qty - closing
        if closing:
            held_dir = 1 if pos[k] > 0 else -1
            pnl = closing * (price - avg[k]) * held_dir
            realised[f.exec_id] += pnl
            trip_net[k] += pnl - fee * closing / qty
            pos[k] -= held_dir * closing
            if pos[k] == 0:
                trips.append(RefTrip(trip_open.pop(k), f.exec_time, trip_net[k]))
                trip_net[k] = Fraction(0)
                avg[k] = Fraction(0)
        if opening:
            if pos[k] == 0:
                trip_open[k] = f.exec_time
            new_pos = pos[k] + direction * opening
            avg[k] = (abs(pos[k]) * avg[k] + opening * price) / abs(new_pos)
            pos[k] = new_pos
            trip_net[k] -= fee * opening / qty
    return RefResult(realised, fees, funding, trips, dict(pos), dict(avg))


def daily_net(fills: list[LedgerFill], ref: RefResult) -> dict[date, Fraction]:
    out: dict[date, Fraction] = defaultdict(Fraction)
    for f in fills:
        out[f.exec_time.date()] += ref.realised_by_fill[f.exec_id] - ref.fee_by_fill[f.exec_id] - ref.funding_by_fill[f.exec_id]
    return dict(out)


def brute_drawdown(values: list[Fraction]) -> Fraction:
    """Every (earlier, later) pair, the curve starting at zero."""
    series = [Fraction(0)] + values
    return max((series[i] - series[j] for i in range(len(series)) for j in range(i, len(series))), default=Fraction(0))


def ref_sharpe(values: list[Fraction]) -> float:
    return float(statistics.mean(values)) / float(statistics.stdev(values)) * math.sqrt(365)
