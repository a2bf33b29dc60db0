"""The runtime's look-ahead guard on ShortSeller over real SOL candles: the decisions up to each cut
are those of the full history, and they do not depend on where the history starts (two warm-ups
before the window give the same decisions as one: the EMAs' warm-up is long enough).

ShortSeller decides on its own fills too (the stops re-based on the entry's fill price); those made
at a cut's own time come from the next candle's open and are compared at the later cuts.
"""
from __future__ import annotations

from strategies.backtest.data import warmup_ms
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.orders import TradingStop
from strategies.shortseller.config import ShortSellerConfig
from strategies.shortseller.strategy import ShortSeller
from strategies.testing.lookahead import assert_no_lookahead, check_warmup, decisions

# six hours of SOL with three entries, their stops set on the fills, and regime exits
WINDOW = (to_ms("2025-05-24T12:00"), to_ms("2025-05-24T18:00"))


def make() -> ShortSeller:
    return ShortSeller(ShortSellerConfig(symbols=("SOLUSDT",)))


def test_the_window_trades_and_sets_stops_on_fills() -> None:
    w = warmup_ms(list(make().subscriptions()))
    sol = load_shipped("SOLUSDT", "5m").select(WINDOW[0] - w, WINDOW[1])
    in_window = decisions(make, {"SOLUSDT": sol}, WINDOW[0])
    assert len(in_window) >= 6
    assert any(isinstance(d.intent, TradingStop) and d.cause == "on_fill" for d in in_window)


def test_decisions_at_every_cut_are_those_of_the_full_history() -> None:
    sol = {"SOLUSDT": load_shipped("SOLUSDT", "5m").select(None, WINDOW[1] + 3_600_000)}
    assert assert_no_lookahead(make, sol, *WINDOW) == 72


def test_decisions_do_not_depend_on_where_the_history_starts() -> None:
    sol = {"SOLUSDT": load_shipped("SOLUSDT", "5m").select(None, WINDOW[1])}
    assert check_warmup(make, sol, WINDOW[0]) == []
