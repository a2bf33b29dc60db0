"""Hand-made candles and a scripted strategy for backtester tests."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from strategies.backtest.config import FillRules, RunSettings
from strategies.backtest.data import sim_instruments
from strategies.backtest.engine import Backtest
from strategies.runtime.candles import Candles, to_ms
from strategies.runtime.context import Context
from strategies.runtime.model import Bar, BotFill, Position, Rejection
from strategies.runtime.strategy import Strategy, StrategyConfig

T0 = to_ms("2025-05-01T00:00")
FIVE_MIN = 300_000


def candles(rows: Sequence[tuple[float, float, float, float]], symbol: str = "BTCUSDT", start_ms: int = T0,
            interval: str = "5m", step_ms: int = FIVE_MIN) -> Candles:
    a = np.array(rows, dtype=np.float64)
    return Candles(symbol, interval, np.arange(len(rows), dtype=np.int64) * step_ms + start_ms,
                   a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(len(rows)))


Action = Callable[[Context, Bar], Any]


class Scripted(Strategy[StrategyConfig]):
    """Runs `actions[i]` on the close of bar i of its first symbol; records every event it saw."""

    def __init__(self, actions: dict[int, Action], symbols: tuple[str, ...] = ("BTCUSDT",),
                 interval: str = "5m") -> None:
        super().__init__(StrategyConfig(bot_id="test_001", symbols=symbols, interval=interval))
        self.actions = actions
        self.seen: list[tuple[str, Any]] = []
        self._n: dict[str, int] = {}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append(("bar", (bar.symbol, bar.interval, bar.close_ms)))
        n = self._n.get(bar.symbol, 0)
        self._n[bar.symbol] = n + 1
        if bar.symbol == self.config.symbols[0] and n in self.actions:
            self.actions[n](ctx, bar)

    def on_fill(self, ctx: Context, fill: BotFill) -> None:
        self.seen.append(("fill", fill))

    def on_position(self, ctx: Context, position: Position) -> None:
        self.seen.append(("position", position))

    def on_rejected(self, ctx: Context, rejection: Rejection) -> None:
        self.seen.append(("rejected", rejection))

    def on_timer(self, ctx: Context, name: str) -> None:
        self.seen.append(("timer", (name, ctx.now_ms)))


def run(strategy: Strategy[Any], data: dict[str, Candles], **rules: Any) -> Backtest:
    settings = RunSettings(initial_balance=Decimal(rules.pop("balance", 1_000_000)), rules=FillRules(**rules))
    bt = Backtest(strategy, data, settings=settings, instruments=sim_instruments())
    bt.result = bt.run()  # type: ignore[attr-defined]
    return bt


def fills(s: Scripted) -> list[BotFill]:
    return [x for kind, x in s.seen if kind == "fill"]
