"""The backtester's fill rules on hand-made candles (defaults = the simulated venue's)."""
from __future__ import annotations

from decimal import Decimal

from tests.unit.strategies.bt_helpers import FIVE_MIN, T0, Scripted, candles, fills, run

D = Decimal
BUY_1 = lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry")  # noqa: E731
UP = (100.0, 101.0, 99.0, 100.5)  # an up candle: path open -> low -> high -> close


def test_market_order_fills_at_next_open_with_taker_fee() -> None:
    s = Scripted({0: BUY_1})
    run(s, {"BTCUSDT": candles([UP, (100.2, 101.0, 99.5, 100.7), UP])})
    (f,) = fills(s)
    assert (f.side, f.qty, f.price, f.time_ms) == ("Buy", D(1), D("100.2"), T0 + FIVE_MIN)
    assert f.fee == D("100.2") * D("0.00055") and not f.is_maker
    assert f.order_link_id == "test_001-entry-1" and f.reason == "entry"


def test_slippage_is_adverse_and_on_the_tick() -> None:
    s = Scripted({0: BUY_1, 1: lambda ctx, bar: ctx.close("BTCUSDT", reason="exit")})
    run(s, {"BTCUSDT": candles([UP, (100.0, 101.0, 99.5, 100.7), (100.0, 101.0, 99.5, 100.7)])}, slippage_bps=D(3))
    buy, sell = fills(s)
    assert buy.price == D("100.1")  # 100.03 rounded up to the 0.1 tick
    assert sell.price == D("99.9")  # 99.97 rounded down


def test_stop_loss_fires_at_its_level_on_the_path() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry", stop_loss=D(98))})
    run(s, {"BTCUSDT": candles([UP, (100.0, 100.5, 97.0, 99.0), UP])})
    entry, stop = fills(s)
    assert (stop.side, stop.price, stop.reason, stop.stop_order_type) == ("Sell", D(98), "sl", "StopLoss")
    assert T0 + FIVE_MIN < stop.time_ms < T0 + 2 * FIVE_MIN


def test_gap_through_a_stop_fills_at_the_open() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry", stop_loss=D(98))})
    run(s, {"BTCUSDT": candles([UP, (100.0, 100.5, 99.0, 99.5), (96.0, 97.0, 95.0, 96.5)])})
    _, stop = fills(s)
    assert stop.price == D(96) and stop.time_ms == T0 + 2 * FIVE_MIN


def test_same_bar_order_follows_the_path_low_first_on_an_up_candle() -> None:
    both = lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry", stop_loss=D(98),  # noqa: E731
                                       take_profit=D(102))
    up = Scripted({0: both})  # bar 1 is up: low (97) comes first -> stop loss
    run(up, {"BTCUSDT": candles([UP, (100.0, 103.0, 97.0, 102.5)])})
    assert fills(up)[1].reason == "sl"
    down = Scripted({0: both})  # bar 1 is down: high (103) first -> take profit
    run(down, {"BTCUSDT": candles([UP, (100.0, 103.0, 97.0, 99.0)])})
    assert (fills(down)[1].reason, fills(down)[1].price) == ("tp", D(102))


def test_resting_limit_fills_at_its_price_as_maker_even_through_a_gap() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.limit("BTCUSDT", "Buy", D(1), D(99.5), reason="dip")})
    run(s, {"BTCUSDT": candles([UP, (100.0, 100.5, 99.8, 100.2), (98.0, 99.0, 97.5, 98.5)])})
    (f,) = fills(s)
    assert (f.price, f.is_maker, f.time_ms) == (D("99.5"), True, T0 + 2 * FIVE_MIN)
    assert f.fee == D("99.5") * D("0.0002")


def test_marketable_limit_takes_at_the_open() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.limit("BTCUSDT", "Buy", D(1), D(105), reason="chase")})
    run(s, {"BTCUSDT": candles([UP, (100.0, 100.5, 99.8, 100.2)])})
    (f,) = fills(s)
    assert (f.price, f.is_maker) == (D(100), False)


def test_trailing_stop_activates_then_trails_the_high() -> None:
    s = Scripted({0: BUY_1, 1: lambda ctx, bar: ctx.set_stops("BTCUSDT", trailing_stop=2, active_price=103)})
    rows = [UP, UP, (100.5, 106.0, 100.4, 105.5), (105.5, 105.8, 103.0, 103.5)]
    run(s, {"BTCUSDT": candles(rows)})
    _, trail = fills(s)
    # activated at 103 on bar 2's rise, best price 106, stop 104 hit on bar 3's fall
    assert (trail.reason, trail.price, trail.stop_order_type) == ("trail", D(104), "TrailingStop")


def test_funding_every_8h_longs_pay() -> None:
    start = T0 - 2 * FIVE_MIN  # 23:50; 00:00 is a settlement
    s = Scripted({0: BUY_1})
    bt = run(s, {"BTCUSDT": candles([UP, UP, UP, UP], start_ms=start)})
    (trade_fill,) = fills(s)
    assert trade_fill.time_ms == start + FIVE_MIN
    paid = [r for r in bt.book.ledger_rows if r[0] == "Funding"]
    assert len(paid) == 1 and paid[0][5] == T0 and paid[0][6] == D(100) * D("0.0001")
    assert bt.result.performance.totals.funding == D(100) * D("0.0001")


def test_trades_and_exit_reason_and_metrics() -> None:
    s = Scripted({0: BUY_1, 2: lambda ctx, bar: ctx.close("BTCUSDT", reason="exit")})
    bt = run(s, {"BTCUSDT": candles([UP, (100.0, 101, 99, 100.5), UP, (102.0, 103, 101, 102.5)])})
    (t,) = bt.result.trades
    assert (t.side, t.qty, t.entry_price, t.exit_price, t.exit_reason) == ("long", D(1), D(100), D(102), "exit")
    fees = D(100) * D("0.00055") + D(102) * D("0.00055")
    assert t.fees == fees and t.net == D(2) - fees and t.holding_s == 600
    assert bt.result.performance.totals.net == t.net  # shared/analytics agrees with the trade list
    assert bt.book.cash == D(1_000_000) + t.net


def test_reduce_only_when_flat_is_rejected_not_filled() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Sell", D(1), reason="exit", reduce_only=True)})
    run(s, {"BTCUSDT": candles([UP, UP])})
    rejected = [x for kind, x in s.seen if kind == "rejected"]
    assert not fills(s) and rejected[0].code == 110017


def test_an_order_the_wallet_cannot_margin_is_rejected() -> None:
    s = Scripted({0: BUY_1})
    run(s, {"BTCUSDT": candles([UP, UP])}, balance=5)
    assert not fills(s) and [x for k, x in s.seen if k == "rejected"][0].code == 110007


def test_stop_loss_on_the_wrong_side_is_refused_at_create() -> None:
    s = Scripted({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry", stop_loss=D(101))})
    run(s, {"BTCUSDT": candles([UP, UP])})
    assert not fills(s) and [x for k, x in s.seen if k == "rejected"][0].code == 10001


def test_moving_a_stop_and_cancelling_a_limit() -> None:
    def enter(ctx, bar):  # type: ignore[no-untyped-def]
        ctx.market("BTCUSDT", "Buy", D(1), reason="entry", stop_loss=D(97))
        ctx.limit("BTCUSDT", "Buy", D(1), D(90), reason="dip")

    def move(ctx, bar):  # type: ignore[no-untyped-def]
        assert ctx.position("BTCUSDT").stop_loss == D(97) and len(ctx.open_orders("BTCUSDT")) == 1
        ctx.set_stops("BTCUSDT", stop_loss=D("99.5"))
        ctx.cancel("BTCUSDT", ctx.open_orders("BTCUSDT")[0].order_link_id)
        ctx.cancel("BTCUSDT", "test_001-dip-zz")

    s = Scripted({0: enter, 1: move})
    rows = [UP, (100.0, 100.5, 99.8, 100.2), (100.0, 100.2, 89.0, 89.5)]
    bt = run(s, {"BTCUSDT": candles(rows)})
    entry, stop = fills(s)
    assert (stop.reason, stop.price) == ("sl", D("99.5"))  # the moved level, not 97; the limit at 90 is gone
    assert [x.code for k, x in s.seen if k == "rejected"] == [110001]  # cancelling an unknown id
    assert not bt.book.resting["BTCUSDT"] and bt.book.positions["BTCUSDT"].qty == 0
