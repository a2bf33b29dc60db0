"""A strategy that orders on every candle (for latency benchmarks and smoke runs): flat -> buy
`qty`, long -> close it. Its subscription keeps `history` candles and an EMA of `ema_period`, so a
warm-up is as long as a real bot's."""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import Field

from strategies.runtime.context import Context
from strategies.runtime.feeds import Subscription, ema
from strategies.runtime.model import Bar
from strategies.runtime.strategy import Strategy, StrategyConfig


class AlternateConfig(StrategyConfig):
    bot_id: str = "alternate_001"
    qty: Decimal = Field(Decimal("0.001"), gt=0)
    history: int = Field(1000, ge=2)
    ema_period: int = Field(200, ge=1)


class Alternate(Strategy[AlternateConfig]):
    config_class = AlternateConfig

    def subscriptions(self) -> Sequence[Subscription]:
        c = self.config
        return [Subscription(s, c.interval, history=c.history, indicators=(("ema", ema(c.ema_period)),))
                for s in c.symbols]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if ctx.position(bar.symbol).is_flat:
            ctx.market(bar.symbol, "Buy", self.config.qty, reason="entry")
        else:
            ctx.close(bar.symbol, reason="exit")
