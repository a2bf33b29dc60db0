"""The base class every bot derives from: typed config in, decisions out through the context.

Handlers run on the runtime's events, never on a forming candle:

- `on_start(ctx)`           once, after the venue adapter reconciled positions and open orders
- `on_bar(ctx, bar)`        a closed candle of a subscribed (symbol, interval)
- `on_fill(ctx, fill)`      one of the bot's own executions
- `on_position(ctx, pos)`   the position of a symbol changed (after the fills that changed it)
- `on_timer(ctx, name)`     a declared timer fired (`timers()`), on the runtime's clock
- `on_control(ctx, cmd)`    pause / resume / flatten (the runtime already obeyed it)
- `on_rejected(ctx, rej)`   an order or stop change was refused

Events of one instant come in this order: fills and position changes, timers due, then closed bars
sorted by symbol, then by interval length (5m before 1h). A strategy does no IO: it reads the
context and asks it for orders; a venue adapter executes them after the handler returns.
Persistent facts (cooldowns, counters, entry plans) belong in `ctx.state`, not on `self`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from strategies.runtime.feeds import Subscription
from strategies.runtime.risk import RiskConfig
from strategies.runtime.model import Bar, Control, BotFill, Position, Rejection
from strategies.runtime.timers import Timer

if TYPE_CHECKING:
    from strategies.runtime.context import Context


class StrategyConfig(BaseModel):
    """Frozen, typed, unknown keys refused (so `--set typo=1` fails loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = "example_001"
    symbols: tuple[str, ...] = ("BTCUSDT",)
    interval: str = "5m"


C = TypeVar("C", bound=StrategyConfig)


class Strategy(Generic[C]):
    config_class: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: C) -> None:
        self.config = config

    def subscriptions(self) -> Sequence[Subscription]:
        return [Subscription(s, self.config.interval) for s in self.config.symbols]

    def timers(self) -> Sequence[Timer]:
        return ()

    def risk_config(self) -> RiskConfig | None:
        """The bot's risk guards (strategies/runtime/risk), applied to every entry; None = none."""
        return None

    def on_start(self, ctx: Context) -> None:
        pass

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        pass

    def on_fill(self, ctx: Context, fill: BotFill) -> None:
        pass

    def on_position(self, ctx: Context, position: Position) -> None:
        pass

    def on_timer(self, ctx: Context, name: str) -> None:
        pass

    def on_control(self, ctx: Context, command: Control) -> None:
        pass

    def on_rejected(self, ctx: Context, rejection: Rejection) -> None:
        pass
