"""Replay a set of fills (any arrival order) into per-(bot, symbol) books and daily figures."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timezone
from decimal import Decimal
from typing import Iterable

from shared.analytics.fills import LedgerFill, execution_order
from shared.analytics.ledger import FillEffect, OpenPosition, RoundTrip, SymbolLedger
from shared.analytics.metrics import DayPnl, PnlTotals, TripStats, merge_days


@dataclass(frozen=True)
class Books:
    effects: tuple[FillEffect, ...]
    trips: tuple[RoundTrip, ...]
    open_positions: tuple[OpenPosition, ...]


def replay(fills: Iterable[LedgerFill]) -> Books:
    ledgers: dict[tuple[str, str], SymbolLedger] = {}
    effects: list[FillEffect] = []
    for fill in execution_order(list(fills)):
        key = (fill.bot_id, fill.symbol)
        ledger = ledgers.get(key)
        if ledger is None:
            ledger = ledgers[key] = SymbolLedger(fill.bot_id, fill.symbol)
        effects.append(ledger.apply(fill))
    trips = tuple(e.closed_trip for e in effects if e.closed_trip is not None)
    opens = tuple(p for p in (lg.open_position() for lg in ledgers.values()) if p is not None)
    return Books(tuple(effects), trips, opens)


def effect_totals(effect: FillEffect) -> PnlTotals:
    fill = effect.fill
    return PnlTotals(
        trades=1 if fill.is_trade else 0,
        volume=fill.exec_price * fill.exec_qty if fill.is_trade else Decimal(0),
        realised=effect.realised,
        fees=effect.fee,
        funding=effect.funding,
    )


def daily(books: Books) -> list[DayPnl]:
    """Per UTC day: PnL realised by that day's fills, round trips closed that day."""
    totals: dict[date, PnlTotals] = defaultdict(PnlTotals)
    trips: dict[date, TripStats] = defaultdict(TripStats)
    for effect in books.effects:
        day = effect.fill.exec_time.astimezone(timezone.utc).date()
        totals[day] = totals[day] + effect_totals(effect)
    for trip in books.trips:
        day = trip.closed_at.astimezone(timezone.utc).date()
        trips[day] = trips[day] + TripStats.of_trip(trip.net, trip.holding_s)
    return merge_days(DayPnl(d, totals[d], trips.get(d, TripStats())) for d in totals)
