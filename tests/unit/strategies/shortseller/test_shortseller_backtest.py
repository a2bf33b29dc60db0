"""ShortSeller in the backtester over the shipped real 5-minute candles of BTC, ETH and SOL.

Each trade is checked against the rules read independently from the same candles (pandas over the
EMA columns): the decision bar had a cross and the ACTIVE regime, entries respect the cooldown and
the daily cap, exits came for a rule's reason and at its levels, and the events were emitted."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import pytest

from strategies.backtest.data import load_window, sim_instruments, warmup_ms
from strategies.backtest.engine import Backtest
from strategies.backtest.result import BacktestResult
from strategies.backtest.runner import BacktestSpec, build, run
from strategies.runtime.candles import to_ms
from strategies.runtime.indicators import vectorised
from strategies.shortseller.config import ShortSellerConfig

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
FROM, TO = to_ms(datetime(2025, 5, 1)), to_ms(datetime(2025, 5, 22))
CFG = ShortSellerConfig()
EXIT_REASONS = {"sl", "tp", "trail", "hold", "regime"}


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return run(BacktestSpec("shortseller", SYMBOLS, FROM, TO))


@pytest.fixture(scope="module")
def bars() -> dict[str, pd.DataFrame]:
    """The candles the backtest read, with the rule columns computed over whole arrays."""
    strategy, _ = build(BacktestSpec("shortseller", SYMBOLS, FROM, TO))
    subs = list(strategy.subscriptions())
    out = {}
    for sym, c in load_window(SYMBOLS, "5m", FROM, TO, warmup_ms(subs)).items():
        r = CFG.for_symbol(sym)
        df = pd.DataFrame({"close_ms": c.close_ms, "close": c.close,
                           "fast": vectorised.ema(c.close, r.ema_fast_len), "slow": vectorised.ema(c.close, r.ema_slow_len)})
        prev = df.shift(1)
        df["cross"] = ((prev.close >= prev.fast) & (df.close < df.fast)) | ((prev.close >= prev.slow) & (df.close < df.slow))
        df["active"] = (df.close < df.fast) & (df.close < df.slow)
        out[sym] = df.set_index("close_ms")
    return out


def test_it_trades_every_symbol_short_only_without_errors(result: BacktestResult) -> None:
    assert result.errors == 0
    assert {t.symbol for t in result.trades} == set(SYMBOLS)
    assert len(result.trades) > 30
    assert {t.side for t in result.trades} == {"short"}
    assert {t.exit_reason for t in result.trades} <= EXIT_REASONS
    # the window has days with more than 12 crosses and crosses in the INACTIVE regime
    assert result.refusals["shortseller_cross_cap"] > 0 and result.refusals["shortseller_regime_inactive"] > 0


def test_every_entry_was_decided_on_a_cross_in_the_active_regime(result: BacktestResult,
                                                                   bars: dict[str, pd.DataFrame]) -> None:
    for t in result.trades:
        decision = bars[t.symbol].loc[t.entry_ms]  # a market order fills at the next open = the decision close
        assert decision.cross and decision.active, (t.symbol, t.entry_ms)
    # and every such bar of a flat symbol outside cooldown and cap entered: count them per symbol
    for sym in SYMBOLS:
        df = bars[sym].loc[FROM + 300_000:TO]
        assert (df.cross & df.active).sum() >= sum(1 for t in result.trades if t.symbol == sym)


def test_entries_respect_the_cooldown_and_the_daily_cap(result: BacktestResult) -> None:
    entries: dict[str, list[int]] = defaultdict(list)
    for t in result.trades:
        entries[t.symbol].append(t.entry_ms)
    for sym, times in entries.items():
        times.sort()
        assert min(np.diff(times)) >= CFG.for_symbol(sym).cooldown_s * 1000, sym
        per_day = Counter(datetime.fromtimestamp(ms / 1000, timezone.utc).date() for ms in times)
        assert max(per_day.values()) <= CFG.for_symbol(sym).daily_cross_cap


def test_exits_come_at_their_rules(result: BacktestResult, bars: dict[str, pd.DataFrame]) -> None:
    seen = Counter(t.exit_reason for t in result.trades)
    assert seen["regime"] > 0 and seen["sl"] > 0 and seen["trail"] + seen["tp"] > 0  # exchange-side ones fire
    for t in result.trades:
        r = CFG.for_symbol(t.symbol)
        held_s = t.holding_s
        if t.exit_reason == "regime":
            # decided on a bar at least the grace after the entry, where the regime was INACTIVE
            decision = bars[t.symbol].loc[t.exit_ms]
            assert held_s >= r.regime_exit_grace_s and not decision.active
        elif t.exit_reason == "hold":
            assert held_s > r.max_hold_s
        elif t.exit_reason == "sl":
            # the exchange-side stop, a tick or less inside entry x (1 + SL %), or a gap through it
            assert t.exit_price >= t.entry_price * (1 + r.stop_loss_pct / 100) - sim_instruments()[t.symbol].tick_size
        elif t.exit_reason == "tp":
            assert t.exit_price <= t.entry_price * (1 - r.take_profit_pct / 100) + sim_instruments()[t.symbol].tick_size


def test_the_exchange_side_levels_are_set_from_the_fill_price(result: BacktestResult) -> None:
    entries = [n.data for n in result.notices if n.kind == "entry"]
    assert len(entries) >= len(result.trades)
    for e in entries:
        r = CFG.for_symbol(e["symbol"])
        tick = sim_instruments()[e["symbol"]].tick_size
        price = Decimal(e["price"])
        for level, raw in (("stop_loss", price * (1 + r.stop_loss_pct / 100)),
                           ("take_profit", price * (1 - r.take_profit_pct / 100)),
                           ("trail_activation", price * (1 - r.trail_activation_pct / 100))):
            got = Decimal(e[level])
            assert abs(got - raw) < tick and got % tick == 0, (e, level)
            assert (got <= raw) if level == "stop_loss" else (got >= raw)  # toward the entry
        assert Decimal(e["trail_distance"]) <= price * r.trail_distance_pct / 100
        assert e["regime"] == "ACTIVE"


def test_events_for_the_telegram_bot(result: BacktestResult) -> None:
    kinds = Counter(n.kind for n in result.notices)
    exits = [n.data for n in result.notices if n.kind == "exit"]
    assert kinds["exit"] == len(result.trades)
    for sym in SYMBOLS:  # in one symbol's order (symbols closing in one candle are told in symbol order)
        mine = [e for e in exits if e["symbol"] == sym]
        trades = sorted((t for t in result.trades if t.symbol == sym), key=lambda t: t.exit_ms)
        for e, t in zip(mine, trades, strict=True):
            assert (e["reason"], e["holding_s"], Decimal(e["entry_price"])) == (t.exit_reason, t.holding_s, t.entry_price)
            assert Decimal(e["pnl_usdt"]) == t.pnl - t.fees  # funding is the book's, reported by /performance
    summaries = [n for n in result.notices if n.kind == "summary"]
    days = (TO - FROM) // 86_400_000
    assert len(summaries) == 3 * days + 1  # the last candle closes at 00:00 of the end day
    assert [n.time_ms for n in summaries[:4]] == [FROM + h * 3_600_000 for h in (0, 8, 14.5, 24)]
    assert {n.data["at"] for n in summaries} == {"00:00", "08:00", "14:30"}
    changes = defaultdict(list)
    for n in result.notices:
        if n.kind == "regime_change":
            changes[n.data["symbol"]].append(n.data["regime"])
    for sym, seq in changes.items():
        assert len(seq) > 5 and all(a != b for a, b in zip(seq, seq[1:])), sym  # they alternate


def test_the_take_profit_ladder_closes_its_share_once_reached() -> None:
    """`--set tp_ladder=1:50`: half of the entry quantity is closed reduce-only at the next open after
    the first close 1 % in profit; the rest goes to the exchange-side exits or the bot-side rules."""
    result = run(BacktestSpec("shortseller", ("ETHUSDT",), FROM, TO, settings=(("tp_ladder", "1:50"),)))
    assert result.errors == 0
    step = sim_instruments()["ETHUSDT"].qty_step
    entries = {f.order_link_id: f for f in result.fills if f.reason == "entry"}
    ladder = [f for f in result.fills if f.reason == "ladder"]
    assert len(ladder) > 3
    closes = pd.Series(dict(zip(*_closes("ETHUSDT"))))
    for f in ladder:
        entry = max((e for e in entries.values() if e.time_ms < f.time_ms), key=lambda e: e.time_ms)
        assert f.side == "Buy" and f.qty == (entry.qty / 2 / step).to_integral_value(ROUND_FLOOR) * step
        decided = closes[f.time_ms]  # the close of the bar that ended when the order filled
        assert (entry.price - Decimal(repr(float(decided)))) / entry.price * 100 >= 1
    for t in result.trades:
        assert t.exit_reason != "ladder" or t.qty < 2 * step  # the ladder only closes all of a tiny position


def _closes(symbol: str) -> tuple[list[int], list[float]]:
    c = load_window((symbol,), "5m", FROM, TO, 0)[symbol]
    return c.close_ms.tolist(), c.close.tolist()


def test_the_live_feeds_incremental_emas_give_the_same_decisions() -> None:
    """The live process updates the EMAs one bar at a time; over three weeks of the three symbols
    its decisions equal the vectorised backtest's, decision for decision."""
    strategy, settings = build(BacktestSpec("shortseller", SYMBOLS, FROM, TO))
    candles = load_window(SYMBOLS, "5m", FROM, TO, warmup_ms(list(strategy.subscriptions())))
    logs = []
    for incremental in (False, True):
        strategy, _ = build(BacktestSpec("shortseller", SYMBOLS, FROM, TO))
        bt = Backtest(strategy, candles, start_ms=FROM, settings=settings, instruments=sim_instruments(),
                      incremental=incremental)
        bt.run()
        logs.append(bt.decision_log)
    assert len(logs[0]) > 100
    assert logs[1] == logs[0]
