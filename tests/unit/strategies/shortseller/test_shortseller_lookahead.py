"""The runtime's look-ahead guard on ShortSeller over real SOL candles: the decisions up to each cut
are those of the full history, and they do not depend on where the history starts (two warm-ups
before the window give the same decisions as one: the EMAs' warm-up is long enough).

The cut comparison is the guard's (`check_cuts`) with one difference at the cut itself. ShortSeller
decides on its own fills too (the stops re-based on the entry's fill price), and a market order
decided at the close T fills at the next candle's open, also stamped T. The history cut at T ends
before that candle, so it cannot make those decisions: decisions before T must be equal, and at T
the cut run's must be the first of the full run's (bar decisions come before the next open's fills),
and the rest only the stops set on a fill.
"""
from __future__ import annotations

from strategies.backtest.data import warmup_ms
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.orders import TradingStop
from strategies.shortseller.config import ShortSellerConfig
from strategies.shortseller.strategy import ShortSeller
from strategies.testing.lookahead import check_warmup, decisions

# six hours of SOL with three entries, their stops set on the fills, and regime exits
WINDOW = (to_ms("2025-05-24T12:00"), to_ms("2025-05-24T18:00"))


def make() -> ShortSeller:
    return ShortSeller(ShortSellerConfig(symbols=("SOLUSDT",)))


def test_decisions_at_every_cut_are_those_of_the_full_history() -> None:
    w = warmup_ms(list(make().subscriptions()))
    sol = load_shipped("SOLUSDT", "5m").select(WINDOW[0] - w, WINDOW[1] + 3_600_000)
    full = decisions(make, {"SOLUSDT": sol}, WINDOW[0])
    in_window = [d for d in full if d.time_ms < WINDOW[1]]
    assert len(in_window) >= 6 and any(d.time_ms == WINDOW[0] + 15 * 60_000 for d in in_window)
    cuts = [int(t) for t in sol.close_ms.tolist() if WINDOW[0] < t <= WINDOW[1]]
    assert len(cuts) == 72
    for cut in cuts:
        got = [d for d in decisions(make, {"SOLUSDT": sol.select(None, cut)}, WINDOW[0]) if d.time_ms <= cut]
        before = [d for d in full if d.time_ms < cut]
        at_cut = [d for d in full if d.time_ms == cut]
        assert got[:len(before)] == before, cut
        got_at = got[len(before):]
        assert got_at == at_cut[:len(got_at)], cut
        # what only the full history decided at T is the stops set on an entry's fill (on_fill's only intent)
        assert all(isinstance(d.intent, TradingStop) for d in at_cut[len(got_at):]), cut


def test_decisions_do_not_depend_on_where_the_history_starts() -> None:
    sol = {"SOLUSDT": load_shipped("SOLUSDT", "5m").select(None, WINDOW[1])}
    assert check_warmup(make, sol, WINDOW[0]) == []
