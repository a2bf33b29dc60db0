"""TP/SL, trading-stop, trailing and conditional orders in the engine, walked along hand-made candles."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.bybit_sim.engine import Engine, OrderRequest
from services.bybit_sim.models import SimAccount, VenueError
from services.bybit_sim.triggers import Move, candle_moves

T = 1_790_000_000_000
SYM = "BTCUSDT"


class Prices:
    def __init__(self) -> None:
        self.now = {"BTCUSDT": D("50000"), "ETHUSDT": D("3000"), "SOLUSDT": D("150")}

    def __call__(self, symbol: str) -> D:
        return self.now[symbol]


def _engine(slippage: str = "0") -> tuple[Engine, Prices]:
    prices = Prices()
    engine = Engine(1, prices, slippage_bps=D(slippage))
    engine.accounts["a"] = SimAccount("a", "s", D("100000"))
    return engine, prices


def _walk(engine: Engine, prices: Prices, moves: list[Move]) -> list:
    events = engine.walker.walk(SYM, moves, T + 10)
    prices.now[SYM] = moves[-1].end
    return events


def _mkt(side: str, qty: str, **kw: object) -> OrderRequest:
    return OrderRequest(SYM, side, "Market", D(qty), None, "IOC", False, "", **kw)


def _trades(engine: Engine) -> list[tuple[str, D, D, bool, str]]:
    return [(e.side, e.exec_price, e.exec_qty, e.is_maker, e.stop_order_type)
            for e in engine.accounts["a"].executions.rows if e.exec_type == "Trade"]


def test_attached_stop_loss_fills_at_its_level_inside_a_candle_and_clears_the_take_profit() -> None:
    engine, prices = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49500"), take_profit=D("51000")), T)
    pos = engine.accounts["a"].position(SYM)
    assert (pos.stop_loss, pos.take_profit) == (D("49500"), D("51000"))
    sl = engine.accounts["a"].orders[pos.sl_order_id]
    assert (sl.status, sl.stop_order_type, sl.trigger_direction, sl.reduce_only, sl.qty) == (
        "Untriggered", "StopLoss", 2, True, D(0))
    _walk(engine, prices, candle_moves(D("50000"), D("50000"), D("50200"), D("49000"), D("49100")))
    assert _trades(engine)[1] == ("Sell", D("49500"), D("0.100"), False, "StopLoss")
    stop_exec = engine.accounts["a"].executions.rows[-1]
    assert stop_exec.exec_fee == D("49500") * D("0.100") * D("0.00055") and stop_exec.order_type == "Market"
    tp = engine.accounts["a"].orders[next(o.order_id for o in engine.accounts["a"].orders.values()
                                          if o.stop_order_type == "TakeProfit")]
    assert (tp.status, tp.cancel_type) == ("Deactivated", "CancelByTpSlTsClear")
    assert (pos.size, pos.stop_loss, pos.take_profit, pos.sl_order_id) == (0, 0, 0, "")


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    engine, prices = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49500")), T)
    _walk(engine, prices, candle_moves(D("50000"), D("50000"), D("50100"), D("49900"), D("50050")))
    assert len(_trades(engine)) == 1
    _walk(engine, prices, candle_moves(D("50050"), D("49200"), D("49300"), D("48000"), D("48100")))
    assert _trades(engine)[1] == ("Sell", D("49200"), D("0.100"), False, "StopLoss")


def test_stop_fill_slips_and_take_profit_gaps_in_the_traders_favour() -> None:
    engine, prices = _engine(slippage="10")
    engine.create_order("a", _mkt("Sell", "0.100", take_profit=D("49000")), T)
    assert _trades(engine)[0][1] == D("49950.0")  # the market order itself slipped 10 bps
    _walk(engine, prices, [Move(D("50000"), D("48800"), True)])
    assert _trades(engine)[1] == ("Buy", D("48848.8"), D("0.100"), False, "TakeProfit")  # 48800 + 10 bps, ceil tick


def test_trading_stop_sets_moves_and_cancels_with_bybit_errors() -> None:
    engine, prices = _engine()
    stops = engine.stops
    with pytest.raises(VenueError) as err:
        stops.set_trading_stop("a", SYM, None, D("49000"), None, None, "", "", T)
    assert err.value.ret_code == 10001 and "zero position" in err.value.ret_msg
    engine.create_order("a", _mkt("Buy", "0.100"), T)
    with pytest.raises(VenueError) as err:
        stops.set_trading_stop("a", SYM, None, D("50100"), None, None, "", "", T)
    assert err.value.ret_code == 10001 and "should lower" in err.value.ret_msg
    stops.set_trading_stop("a", SYM, D("52000"), D("49000"), None, None, "MarkPrice", "", T)
    pos = engine.accounts["a"].position(SYM)
    sl_id = pos.sl_order_id
    with pytest.raises(VenueError) as err:
        stops.set_trading_stop("a", SYM, D("52000"), D("49000"), None, None, "", "", T)
    assert err.value.ret_code == 34040
    stops.set_trading_stop("a", SYM, None, D("49800"), None, None, "", "", T + 1)   # moved: the same order
    assert pos.sl_order_id == sl_id and engine.accounts["a"].orders[sl_id].trigger_price == D("49800")
    assert engine.accounts["a"].orders[pos.tp_order_id].trigger_by == "MarkPrice"
    events = stops.set_trading_stop("a", SYM, D("0"), None, None, None, "", "", T + 2)  # "0" cancels
    assert pos.take_profit == 0 and pos.tp_order_id == ""
    assert [e.obj.status for e in events if e.topic == "order"] == ["Deactivated"]
    _walk(engine, prices, [Move(D("50000"), D("49700"), False)])
    assert _trades(engine)[-1] == ("Sell", D("49800"), D("0.100"), False, "StopLoss")


def test_cancelling_a_stop_loss_order_clears_the_position_field() -> None:
    engine, _ = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49000")), T)
    pos = engine.accounts["a"].position(SYM)
    order, _ = engine.cancel_order("a", SYM, pos.sl_order_id, None, T + 1)
    assert (order.status, order.cancel_type, pos.stop_loss) == ("Deactivated", "CancelByUser", 0)


def test_trailing_stop_on_a_short() -> None:
    engine, prices = _engine()
    engine.create_order("a", _mkt("Sell", "0.100"), T)
    engine.stops.set_trading_stop("a", SYM, None, None, D("100"), D("49500"), "", "", T)
    pos = engine.accounts["a"].position(SYM)
    ts = engine.accounts["a"].orders[pos.ts_order_id]
    assert (pos.trailing_stop, ts.stop_order_type, ts.trail_active) == (D("100"), "TrailingStop", False)
    _walk(engine, prices, [Move(D("50000"), D("49300"), False), Move(D("49300"), D("49390"), False)])
    assert ts.trail_active and ts.trail_extreme == D("49300") and ts.trigger_price == D("49400")
    assert len(_trades(engine)) == 1
    _walk(engine, prices, [Move(D("49390"), D("49200"), False), Move(D("49200"), D("49350"), False)])
    assert _trades(engine)[1] == ("Buy", D("49300"), D("0.100"), False, "TrailingStop")
    assert pos.size == 0 and pos.trailing_stop == 0


def test_conditional_orders_validate_direction_trigger_and_fill() -> None:
    engine, prices = _engine()

    def cond(side: str, kind: str, trigger: str, direction: int, price: str | None = None) -> OrderRequest:
        return OrderRequest(SYM, side, kind, D("0.010"), D(price) if price else None, "GTC", False, "",
                            trigger_price=D(trigger), trigger_direction=direction)

    with pytest.raises(VenueError) as err:
        engine.create_order("a", cond("Buy", "Market", "49900", 1), T)
    assert err.value.ret_code == 110092
    with pytest.raises(VenueError) as err:
        engine.create_order("a", cond("Sell", "Market", "50100", 2), T)
    assert err.value.ret_code == 110093
    breakout, _ = engine.create_order("a", cond("Buy", "Market", "50500", 1), T)
    dip, _ = engine.create_order("a", cond("Buy", "Limit", "49800", 2, "49700"), T)
    assert (breakout.status, breakout.stop_order_type, breakout.time_in_force) == ("Untriggered", "Stop", "IOC")
    events = _walk(engine, prices, candle_moves(None, D("50000"), D("50600"), D("49600"), D("49650")))
    # down candle: high first (breakout fills at 50500), then the dip triggers at 49800 and rests at 49700,
    # which the fall to 49600 then fills as a maker
    assert _trades(engine) == [("Buy", D("50500"), D("0.010"), False, "Stop"),
                               ("Buy", D("49700"), D("0.010"), True, "Stop")]
    statuses = [e.obj.status for e in events if e.topic == "order" and e.obj.order_id == dip.order_id]
    assert statuses[0] == "Triggered" and dip.status == "Filled"
    later, _ = engine.create_order("a", cond("Sell", "Market", "49000", 2), T)
    cancelled, _ = engine.cancel_all("a", SYM, T + 1, "StopOrder")
    assert [o.order_id for o in cancelled] == [later.order_id] and later.status == "Deactivated"


def test_orders_reached_on_one_move_fire_in_path_order_then_older_first() -> None:
    engine, prices = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49500")), T)
    limit, _ = engine.create_order("a", OrderRequest(SYM, "Buy", "Limit", D("0.050"), D("49700"), "GTC", False, ""),
                                   T)
    _walk(engine, prices, [Move(D("50000"), D("49000"), False)])
    # the limit (49700) is reached before the stop (49500); the stop then closes all 0.150
    assert _trades(engine)[1:] == [("Buy", D("49700"), D("0.050"), True, "UNKNOWN"),
                                   ("Sell", D("49500"), D("0.150"), False, "StopLoss")]
    assert limit.status == "Filled"


def test_a_flip_clears_the_old_stops_and_attaches_the_new_ones() -> None:
    engine, _ = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49000")), T)
    engine.create_order("a", _mkt("Sell", "0.300", stop_loss=D("51000"), take_profit=D("48000")), T + 1)
    pos = engine.accounts["a"].position(SYM)
    assert (pos.size, pos.stop_loss, pos.take_profit) == (D("-0.200"), D("51000"), D("48000"))
    stop_losses = [o for o in engine.accounts["a"].orders.values() if o.stop_order_type == "StopLoss"]
    assert [(o.status, o.side) for o in stop_losses] == [("Deactivated", "Sell"), ("Untriggered", "Buy")]


def test_attached_levels_on_the_wrong_side_are_refused() -> None:
    engine, _ = _engine()
    with pytest.raises(VenueError) as err:
        engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("50100")), T)
    assert err.value.ret_code == 10001 and "StopLoss" in err.value.ret_msg
    with pytest.raises(VenueError):
        engine.create_order("a", OrderRequest(SYM, "Sell", "Limit", D("0.1"), D("51000"), "GTC", False, "",
                                              take_profit=D("51500")), T)
    assert engine.accounts["a"].orders == {}


def test_across_symbols_stops_fire_in_venue_time_order_then_symbol_order() -> None:
    engine, prices = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49900")), T)               # BTC: 50000 -> 49000
    engine.create_order("a", OrderRequest("ETHUSDT", "Buy", "Market", D("1.00"), None, "IOC", False, "",
                                          stop_loss=D("2970")), T)                         # ETH: 3000 -> 2900
    # BTC reaches 49900 a tenth of the way down its leg, ETH 2970 three tenths in: BTC fires first even
    # though ETH's leg is walked in the same call, whatever order the dict lists them in
    walks = {"ETHUSDT": [Move(D("3000"), D("2900"), False, 0, 1000)],
             "BTCUSDT": [Move(D("50000"), D("49000"), False, 0, 1000)]}
    engine.walker.walk_all(walks, T + 5)
    assert [(e.symbol, e.exec_price) for e in engine.accounts["a"].executions.rows[2:]] == [
        ("BTCUSDT", D("49900")), ("ETHUSDT", D("2970"))]
    engine2, _ = _engine()
    engine2.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49500")), T)               # half way: later
    engine2.create_order("a", OrderRequest("ETHUSDT", "Buy", "Market", D("1.00"), None, "IOC", False, "",
                                           stop_loss=D("2970")), T)
    engine2.walker.walk_all({"BTCUSDT": walks["BTCUSDT"], "ETHUSDT": walks["ETHUSDT"]}, T + 5)
    assert [e.symbol for e in engine2.accounts["a"].executions.rows[2:]] == ["ETHUSDT", "BTCUSDT"]
    engine3, _ = _engine()                                                                  # a gap: same instant
    engine3.create_order("a", OrderRequest("ETHUSDT", "Buy", "Market", D("1.00"), None, "IOC", False, "",
                                           stop_loss=D("2970")), T)
    engine3.create_order("a", _mkt("Buy", "0.100", stop_loss=D("49500")), T)
    engine3.walker.walk_all({"ETHUSDT": [Move(D("3000"), D("2900"), True, 500, 500)],
                             "BTCUSDT": [Move(D("50000"), D("49000"), True, 500, 500)]}, T + 5)
    assert [e.symbol for e in engine3.accounts["a"].executions.rows[2:]] == ["BTCUSDT", "ETHUSDT"]


def test_stops_survive_a_restart_through_the_state_file_format() -> None:
    import json

    from services.bybit_sim.state import account_from_doc, account_to_doc
    engine, _ = _engine()
    engine.create_order("a", _mkt("Buy", "0.100", take_profit=D("51000"), stop_loss=D("49000")), T)
    engine.stops.set_trading_stop("a", SYM, None, None, D("100"), None, "", "", T + 1)
    before = engine.accounts["a"]
    after = account_from_doc(json.loads(json.dumps(account_to_doc(before))))
    assert after.positions == before.positions and after.orders == before.orders
    ts = after.orders[after.position(SYM).ts_order_id]
    assert (ts.trail_active, ts.trail_extreme, ts.trail_distance) == (True, D("50000"), D("100"))
