"""Reference strategy: EMA cross, long and short.

fast EMA crosses above slow EMA (on closes): close a short, go long; crosses below: close a long,
go short (or only exit when `allow_short` is off). Orders are market orders decided on the closed
candle, so they fill at the next candle's open. Optional exchange-side stop-loss and take-profit,
a percentage of the decision candle's close.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from pydantic import Field, model_validator

from strategies.runtime.context import Context
from strategies.runtime.feeds import Subscription, ema
from strategies.runtime.indicators.warmup import ema_settle_bars
from strategies.runtime.model import Bar
from strategies.runtime.strategy import Strategy, StrategyConfig


class EmaCrossConfig(StrategyConfig):
    bot_id: str = "emacross_001"
    fast: int = Field(12, ge=1)
    slow: int = Field(26, ge=2)
    qty: Decimal = Field(Decimal(0), ge=0)  # fixed quantity per entry; 0 = size from notional_usdt
    notional_usdt: Decimal = Field(Decimal(1000), gt=0)
    allow_short: bool = True
    stop_loss_pct: Decimal = Field(Decimal(0), ge=0, lt=100)  # 0 = none
    take_profit_pct: Decimal = Field(Decimal(0), ge=0)  # 0 = none
    settle_tol: float = Field(1e-9, gt=0, lt=1)  # warm-up: bars until the EMA seed weighs less than this

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EmaCrossConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


def cross(prev_fast: float, prev_slow: float, fast: float, slow: float) -> int:
    """+1 when fast goes from at-or-below slow to above it, -1 for the opposite, else 0."""
    if prev_fast <= prev_slow and fast > slow:
        return 1
    if prev_fast >= prev_slow and fast < slow:
        return -1
    return 0


class EmaCross(Strategy[EmaCrossConfig]):
    config_class = EmaCrossConfig

    def subscriptions(self) -> Sequence[Subscription]:
        c = self.config
        history = c.slow + ema_settle_bars(c.slow, c.settle_tol)
        return [Subscription(s, c.interval, history=history,
                             indicators=(("fast", ema(c.fast)), ("slow", ema(c.slow)))) for s in c.symbols]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        sym, iv = bar.symbol, bar.interval
        f, s = ctx.value(sym, iv, "fast"), ctx.value(sym, iv, "slow")
        f1, s1 = ctx.value(sym, iv, "fast", 1), ctx.value(sym, iv, "slow", 1)
        if math.isnan(s1):
            return
        signal = cross(f1, s1, f, s)
        if signal == 0:
            return
        pos = ctx.position(sym)
        if (signal > 0 and pos.qty < 0) or (signal < 0 and pos.qty > 0):
            ctx.close(sym, reason="exit")
        elif (signal > 0 and pos.qty > 0) or (signal < 0 and pos.qty < 0):
            return
        if signal < 0 and not self.config.allow_short:
            return
        self._enter(ctx, bar, "Buy" if signal > 0 else "Sell")

    def _enter(self, ctx: Context, bar: Bar, side: str) -> None:
        c = self.config
        px = Decimal(repr(bar.close))
        qty = c.qty if c.qty > 0 else ctx.qty_for_notional(bar.symbol, c.notional_usdt, px)
        if qty <= 0:
            return
        sign = 1 if side == "Buy" else -1
        sl = px * (1 - sign * c.stop_loss_pct / 100) if c.stop_loss_pct else Decimal(0)
        tp = px * (1 + sign * c.take_profit_pct / 100) if c.take_profit_pct else Decimal(0)
        ctx.market(bar.symbol, side, qty, reason="entry", stop_loss=sl, take_profit=tp)
