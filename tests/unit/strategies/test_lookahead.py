"""The look-ahead guard passes ema_cross on real candles and catches strategies that peek."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.feeds import IndicatorSpec, Subscription
from strategies.runtime.indicators import incremental
from strategies.testing.lookahead import LookaheadError, assert_no_lookahead, check_warmup, decisions

WINDOW = (to_ms("2025-05-06T00:00"), to_ms("2025-05-06T08:00"))  # 96 cuts of 5m


@pytest.fixture(scope="module")
def btc() -> dict:
    return {"BTCUSDT": load_shipped("BTCUSDT", "5m").select(to_ms("2025-04-20"), to_ms("2025-05-08"))}


def ema_cross(**kw):  # type: ignore[no-untyped-def]
    return lambda: EmaCross(EmaCrossConfig(symbols=("BTCUSDT",), **kw))


def test_ema_cross_passes_at_every_candle_of_the_window(btc) -> None:
    make = ema_cross(fast=5, slow=13, stop_loss_pct=1, take_profit_pct=1)
    made = [d for d in decisions(make, btc, WINDOW[0]) if d.time_ms < WINDOW[1]]
    assert len(made) >= 4  # the window has trades: the check compares real decisions
    assert assert_no_lookahead(make, btc, *WINDOW) == 96


class PeekingCross(EmaCross):
    """Trades on the next candle's close: an indicator computed with the future (shifted back one)."""

    def subscriptions(self) -> Sequence[Subscription]:
        nxt = IndicatorSpec("next_close", 0, lambda: incremental.SMA(1), lambda ind, bar: ind.update(bar.close),
                            lambda c: np.append(c.close[1:], np.nan))
        return [Subscription(s, "5m", history=300, indicators=(("next", nxt),)) for s in self.config.symbols]

    def on_bar(self, ctx, bar):  # type: ignore[no-untyped-def]
        nxt = ctx.value(bar.symbol, bar.interval, "next")
        if math.isnan(nxt):
            return
        pos = ctx.position(bar.symbol)
        if nxt > bar.close and pos.qty <= 0:
            ctx.market(bar.symbol, "Buy", ctx.floor_qty(bar.symbol, 0.01) + abs(pos.qty), reason="entry")
        elif nxt < bar.close and pos.qty >= 0:
            ctx.market(bar.symbol, "Sell", ctx.floor_qty(bar.symbol, 0.01) + abs(pos.qty), reason="entry")


def test_the_guard_catches_a_strategy_that_reads_the_next_candle(btc) -> None:
    make = lambda: PeekingCross(EmaCrossConfig(symbols=("BTCUSDT",)))  # noqa: E731
    with pytest.raises(LookaheadError, match="cut at"):
        assert_no_lookahead(make, btc, *WINDOW)


class ShortWarmup(EmaCross):
    """Declares far too little history for its slow EMA seeded from the first candles."""

    def subscriptions(self) -> Sequence[Subscription]:
        return [Subscription(s, sub.interval, history=2, indicators=sub.indicators)
                for s, sub in zip(self.config.symbols, super().subscriptions())]


def test_the_guard_catches_a_warmup_that_is_too_short(btc) -> None:
    from strategies.runtime.feeds import ema
    make = lambda: ShortWarmup(EmaCrossConfig(symbols=("BTCUSDT",), fast=3, slow=200))  # noqa: E731
    sub = make().subscriptions()[0]
    assert sub.indicators[1][1].label == ema(200).label and sub.warmup == 199  # the seed only, not settled
    problems = check_warmup(make, btc, to_ms("2025-05-06"))
    assert problems and problems[0].check == "warmup"
