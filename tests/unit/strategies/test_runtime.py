"""Runtime behaviour: event order, containment of a raising strategy, control, guards, timers, ids."""
from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.runtime.model import Control
from strategies.runtime.orders import PlaceOrder
from strategies.runtime.timers import daily
from tests.unit.strategies.bt_helpers import FIVE_MIN, T0, Scripted, candles, fills, run

D = Decimal
UP = (100.0, 101.0, 99.0, 100.5)


class Boom(Scripted):
    """Raises on bar 2 of BTCUSDT after writing state and deciding an order."""

    def on_bar(self, ctx, bar):  # type: ignore[no-untyped-def]
        super().on_bar(ctx, bar)
        if bar.symbol == "BTCUSDT" and bar.close_ms == T0 + 3 * FIVE_MIN:
            ctx.state.set("half_done", True)
            ctx.market("BTCUSDT", "Buy", D(1), reason="entry")
            raise RuntimeError("bug in the bot")
        if bar.symbol == "ETHUSDT":
            ctx.market("ETHUSDT", "Buy", D("0.01"), reason="entry") if not ctx.position("ETHUSDT").qty else None


def test_a_raising_strategy_is_contained_and_only_that_symbol_halts() -> None:
    s = Boom({}, symbols=("BTCUSDT", "ETHUSDT"))
    data = {"BTCUSDT": candles([UP] * 6), "ETHUSDT": candles([UP] * 6, symbol="ETHUSDT")}
    bt = run(s, data)
    btc_bars = [x for k, x in s.seen if k == "bar" and x[0] == "BTCUSDT"]
    eth_bars = [x for k, x in s.seen if k == "bar" and x[0] == "ETHUSDT"]
    assert len(btc_bars) == 3 and len(eth_bars) == 6  # BTC halted after the error, ETH ran on
    assert "half_done" not in bt.ctx.state  # the failed handler's state write is undone
    assert all(f.symbol == "ETHUSDT" for f in fills(s))  # ... and its order dropped
    assert bt.ctx.halted == {"BTCUSDT"} and bt.runtime.errors == 1
    (notice,) = [n for n in bt.ctx.notices if n.kind == "strategy_error"]
    assert notice.data["symbol"] == "BTCUSDT" and "bug in the bot" in notice.data["error"]
    assert bt.result.errors == 1


def test_bars_closing_together_come_by_symbol_then_interval() -> None:
    from strategies.runtime.feeds import Subscription

    class Multi(Scripted):
        def subscriptions(self):  # type: ignore[no-untyped-def]
            return [Subscription(s, iv) for s in ("SOLUSDT", "BTCUSDT") for iv in ("15m", "5m")]

    s = Multi({}, symbols=("SOLUSDT", "BTCUSDT"))
    data = {sym: candles([UP] * 6, symbol=sym) for sym in ("BTCUSDT", "SOLUSDT")}
    run(s, data)
    at_15 = [x[:2] for k, x in s.seen if k == "bar" and x[2] == T0 + 3 * FIVE_MIN]
    assert at_15 == [("BTCUSDT", "5m"), ("BTCUSDT", "15m"), ("SOLUSDT", "5m"), ("SOLUSDT", "15m")]


def test_timers_fire_on_the_clock_before_the_bars_of_that_instant() -> None:
    class Timed(Scripted):
        def timers(self):  # type: ignore[no-untyped-def]
            return [daily("midnight", "00:00"), daily("summary", "00:10")]

    s = Timed({})
    run(s, {"BTCUSDT": candles([UP] * 4, start_ms=T0 - 2 * FIVE_MIN)})  # bars close 23:55 .. 00:10
    seq = [(k, x[0] if k == "timer" else x[2]) for k, x in s.seen if k in ("timer", "bar")]
    assert seq == [("bar", T0 - FIVE_MIN), ("timer", "midnight"), ("bar", T0), ("bar", T0 + FIVE_MIN),
                   ("timer", "summary"), ("bar", T0 + 2 * FIVE_MIN)]


class NoEntries:
    def check_entry(self, order: PlaceOrder, ctx) -> str | None:  # type: ignore[no-untyped-def]
        return "max_open_positions"


def test_guards_refuse_entries_with_a_reason_and_never_exits() -> None:
    from strategies.backtest.data import sim_instruments
    from strategies.backtest.engine import Backtest

    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry"),
                  1: lambda ctx, bar: ctx.market("BTCUSDT", "Sell", D(1), reason="exit", reduce_only=True)})
    bt = Backtest(s, {"BTCUSDT": candles([UP] * 3)}, instruments=sim_instruments(), guards=[NoEntries()])
    bt.run()
    assert bt.ctx.refusals == {"max_open_positions": 1}
    assert [n.data["refusal"] for n in bt.ctx.notices if n.kind == "order_refused"] == ["max_open_positions"]
    decided = [d.intent for d in bt.decision_log]
    assert len(decided) == 1 and decided[0].reduce_only  # the exit went out (and was rejected: flat)


def test_pause_refuses_entries_flatten_closes_and_pauses() -> None:
    def pause(ctx, bar):  # type: ignore[no-untyped-def]
        ctx.paused = True
        assert ctx.market("BTCUSDT", "Buy", D(1), reason="entry") is None

    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry"), 2: pause})
    bt = run(s, {"BTCUSDT": candles([UP] * 4)})
    assert bt.ctx.refusals == {"paused": 1}
    bt.runtime.control(Control.RESUME, T0 + 4 * FIVE_MIN)
    assert not bt.ctx.paused
    bt.runtime.control(Control.FLATTEN, T0 + 4 * FIVE_MIN)
    out = bt.runtime.drain()
    assert bt.ctx.paused
    close = [d.intent for d in out if isinstance(d.intent, PlaceOrder)]
    assert close[0].reduce_only and close[0].side == "Sell" and close[0].qty == D(1)
    assert close[0].order_link_id.startswith("test_001-flatten-")


def test_order_ids_count_on_from_persisted_state() -> None:
    from strategies.backtest.data import sim_instruments
    from strategies.backtest.engine import Backtest

    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry")})
    bt = Backtest(s, {"BTCUSDT": candles([UP] * 2)}, instruments=sim_instruments(), state={"_order_counter": 41})
    bt.run()
    assert bt.decision_log[0].intent.order_link_id == "test_001-entry-16"  # 42 in base 36
    assert bt.ctx.state.get("_order_counter") == 42


def test_quantity_is_floored_to_the_step_and_zero_is_an_error() -> None:
    got = []
    s = Scripted({0: lambda ctx, bar: got.append(ctx.market("BTCUSDT", "Buy", D("0.0019"), reason="entry")),
                  1: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D("0.0009"), reason="entry")})
    bt = run(s, {"BTCUSDT": candles([UP] * 3)})
    assert bt.decision_log[0].intent.qty == D("0.001")
    assert bt.runtime.errors == 1  # the 0-quantity order raised inside the handler: contained
    with pytest.raises(ValueError, match="rounds to 0"):
        bt.ctx.market("BTCUSDT", "Buy", D("0.0001"), reason="entry")


def test_an_order_for_a_data_only_symbol_is_a_contained_strategy_error() -> None:
    from strategies.runtime.feeds import Subscription

    class DataOnly(Scripted):
        def subscriptions(self):  # type: ignore[no-untyped-def]
            return [Subscription("BTCUSDT", "5m"), Subscription("ETHUSDT", "5m", trade=False)]

    s = DataOnly({0: lambda ctx, bar: ctx.market("ETHUSDT", "Buy", D(1), reason="entry")})
    bt = run(s, {"BTCUSDT": candles([UP] * 3), "ETHUSDT": candles([UP] * 3, symbol="ETHUSDT")})
    (err,) = [n for n in bt.ctx.notices if n.kind == "strategy_error"]
    assert "ETHUSDT is not traded by test_001" in err.data["error"]
    assert not fills(s) and bt.result.errors == 1 and bt.ctx.halted == {"BTCUSDT"}
