"""A ShortSeller stopped and started again with its persisted state decides as an uninterrupted run.

In the backtester over real candles: run [FROM, TO) in one go; run [FROM, T) then [T, TO) as a new
strategy object, new feed (its own warm-up) and new book, given only the first part's ctx.state and
equity. T is the bar before an entry signal refused only by the day's cross cap, so the day's cross
count (with the cooldowns and the previous bar) must come through the state for the trades after T
to be the same.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from strategies.backtest.data import load_window, sim_instruments, warmup_ms
from strategies.backtest.engine import Backtest
from strategies.backtest.result import BacktestResult
from strategies.backtest.runner import BacktestSpec, build
from strategies.runtime.candles import to_ms
from strategies.runtime.indicators import vectorised

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
FROM, TO = to_ms(datetime(2025, 5, 1)), to_ms(datetime(2025, 5, 22))
BAR_MS = 300_000


def backtest(from_ms: int, to_ms: int, state: dict[str, Any] | None = None,
             balance: Decimal | None = None) -> tuple[BacktestResult, dict[str, Any]]:
    settings = (("initial_balance", str(balance)),) if balance is not None else ()
    strategy, run_settings = build(BacktestSpec("shortseller", SYMBOLS, from_ms, to_ms, settings=settings))
    candles = load_window(SYMBOLS, "5m", from_ms, to_ms, warmup_ms(list(strategy.subscriptions())))
    bt = Backtest(strategy, candles, start_ms=from_ms, settings=run_settings, instruments=sim_instruments(),
                  state=state)
    return bt.run(), bt.ctx.state.snapshot()


def trade_rows(result: BacktestResult, after_ms: int) -> list[tuple[Any, ...]]:
    return [(t.symbol, t.entry_ms, t.exit_ms, t.qty, t.entry_price, t.exit_price, t.fees, t.exit_reason)
            for t in sorted(result.trades, key=lambda t: (t.entry_ms, t.symbol)) if t.entry_ms >= after_ms]


@pytest.fixture(scope="module")
def whole() -> BacktestResult:
    return backtest(FROM, TO)[0]


def signal_bars(symbol: str) -> list[tuple[int, bool, int]]:
    """(close time, entry signal, crosses earlier that UTC day) per bar, the rules over whole arrays."""
    c = load_window((symbol,), "5m", FROM, TO, 30 * 86_400_000)[symbol]
    close, fast, slow = c.close, vectorised.ema(c.close, 240), vectorised.ema(c.close, 600)
    out, day, count = [], None, 0
    for i in range(1, len(close)):
        t = int(c.close_ms[i])
        if t // 86_400_000 != day:
            day, count = t // 86_400_000, 0
        crosses = int(close[i - 1] >= fast[i - 1] and close[i] < fast[i]) + int(close[i - 1] >= slow[i - 1] and close[i] < slow[i])
        out.append((t, crosses > 0 and close[i] < fast[i] and close[i] < slow[i], count))
        count += crosses
    return out


@pytest.fixture(scope="module")
def cut(whole: BacktestResult) -> int:
    """A bar close just before an entry signal that the uninterrupted run refused only for the day's
    cross cap, with every symbol flat: a restart there must carry the day's count to refuse it too."""
    def flat(t_ms: int) -> bool:
        return all(not (o.entry_ms <= t_ms <= o.exit_ms) for o in whole.trades)

    for sym in SYMBOLS:
        entries = [t.entry_ms for t in whole.trades if t.symbol == sym]
        for t_ms, signal, before in signal_bars(sym):
            cooling = any(0 <= t_ms - e < 3_600_000 for e in entries)
            if signal and before >= 12 and not cooling and flat(t_ms) and flat(t_ms - BAR_MS) and t_ms > FROM + 86_400_000:
                return t_ms - BAR_MS
    raise AssertionError("no entry signal refused by the cross cap alone")


def test_a_restart_with_the_persisted_state_decides_as_the_uninterrupted_run(whole: BacktestResult, cut: int) -> None:
    first, state = backtest(FROM, cut)
    assert trade_rows(first, FROM) == trade_rows(whole, FROM)[:len(first.trades)]
    assert {k for k in state if k.startswith("symbol:")} == {f"symbol:{s}" for s in SYMBOLS}
    second, _ = backtest(cut, TO, state=state, balance=first.final_equity)
    after = trade_rows(whole, cut)
    assert len(after) > 10
    assert trade_rows(second, cut) == after  # every trade: times, quantities, prices, fees, reasons
    second_ids = [f.order_link_id for f in second.fills if f.order_link_id]
    whole_ids = [f.order_link_id for f in whole.fills if f.order_link_id and f.time_ms >= cut]
    assert second_ids == whole_ids  # the order-id counter continues too


def test_without_its_state_the_restarted_bot_would_trade_differently(whole: BacktestResult, cut: int) -> None:
    """What the state carries matters here: a fresh start at the cut enters over the day's cap."""
    first, _ = backtest(FROM, cut)
    amnesiac, _ = backtest(cut, TO, balance=first.final_equity)
    assert trade_rows(amnesiac, cut) != trade_rows(whole, cut)
