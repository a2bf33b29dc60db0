"""Matching and accounting against hand-computed numbers (maker 0.02 %, taker 0.055 %, leverage 10)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.bybit_sim.engine import Engine, OrderRequest
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.models import SimAccount, VenueError

T = 1_790_000_000_000


class Prices:
    def __init__(self) -> None:
        self.now = {"BTCUSDT": D("50000"), "ETHUSDT": D("3000"), "SOLUSDT": D("150")}

    def __call__(self, symbol: str) -> D:
        return self.now[symbol]


def _engine(partial: bool = False, balance: str = "100000") -> tuple[Engine, Prices]:
    prices = Prices()
    engine = Engine(1, prices, partial_fills=partial)
    for key in ("a", "b"):
        engine.accounts[key] = SimAccount(key, "s", D(balance))
    return engine, prices


def _mkt(side: str, qty: str, link: str = "", reduce: bool = False, symbol: str = "BTCUSDT") -> OrderRequest:
    return OrderRequest(symbol, side, "Market", D(qty), None, "IOC", reduce, link)


def _lmt(side: str, qty: str, price: str, link: str = "", symbol: str = "BTCUSDT") -> OrderRequest:
    return OrderRequest(symbol, side, "Limit", D(qty), D(price), "GTC", False, link)


def _execs(engine: Engine, key: str = "a") -> list:
    return [e for e in engine.accounts[key].executions.rows if e.exec_type == "Trade"]


def test_scripted_session() -> None:
    engine, prices = _engine()
    acct = engine.accounts["a"]
    pos = acct.position("BTCUSDT")
    inst = INSTRUMENTS["BTCUSDT"]

    engine.create_order("a", _mkt("Buy", "0.100", "open"), T)                       # open long
    prices.now["BTCUSDT"] = D("52000")
    engine.create_order("a", _mkt("Buy", "0.100", "add"), T + 1)                    # add
    assert (pos.size, pos.avg_price) == (D("0.200"), D("51000"))
    assert engine.unrealised(pos) == D("200")
    assert engine.liq_price(pos, inst) == D("46155.0")
    prices.now["BTCUSDT"] = D("53000")
    order, _ = engine.create_order("a", _lmt("Sell", "0.050", "53500", "tp"), T + 2)  # resting partial close
    assert order.status == "New" and engine.on_price("BTCUSDT", D("53000"), T + 3) == []
    prices.now["BTCUSDT"] = D("53600")
    engine.on_price("BTCUSDT", D("53600"), T + 4)
    assert order.status == "Filled" and pos.size == D("0.150") and pos.avg_price == D("51000")
    prices.now["BTCUSDT"] = D("50500")
    engine.create_order("a", _mkt("Sell", "0.400", "flip"), T + 5)                  # flip short
    assert (pos.size, pos.avg_price, pos.side) == (D("-0.250"), D("50500"), "Sell")
    assert engine.liq_price(pos, inst) == D("55297.5")
    prices.now["BTCUSDT"] = D("49000")
    engine.create_order("a", _mkt("Buy", "0.250", "close", reduce=True), T + 6)    # close

    rows = [(e.order_link_id, e.side, e.exec_price, e.exec_qty, e.exec_value, e.exec_fee, e.fee_rate, e.is_maker,
             e.closed_size, e.exec_pnl) for e in _execs(engine)]
    assert rows == [
        ("open", "Buy", D("50000"), D("0.100"), D("5000"), D("2.75"), D("0.00055"), False, D("0"), D("0")),
        ("add", "Buy", D("52000"), D("0.100"), D("5200"), D("2.86"), D("0.00055"), False, D("0"), D("0")),
        ("tp", "Sell", D("53500"), D("0.050"), D("2675"), D("0.535"), D("0.0002"), True, D("0.050"), D("125")),
        ("flip", "Sell", D("50500"), D("0.400"), D("20200"), D("11.11"), D("0.00055"), False, D("0.150"), D("-75")),
        ("close", "Buy", D("49000"), D("0.250"), D("12250"), D("6.7375"), D("0.00055"), False, D("0.250"), D("375")),
    ]
    assert pos.size == 0 and pos.side == "" and pos.avg_price == 0
    assert pos.cum_realised == D("401.0075")  # 425 PnL - 23.9925 fees
    assert acct.balance == D("100401.0075")
    seqs = [e.seq for e in _execs(engine)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert len({e.exec_id for e in _execs(engine)}) == 5


def test_price_time_priority() -> None:
    engine, prices = _engine()
    first, _ = engine.create_order("a", _lmt("Buy", "0.001", "49000"), T)
    second, _ = engine.create_order("b", _lmt("Buy", "0.001", "49000"), T + 1)
    better, _ = engine.create_order("b", _lmt("Buy", "0.001", "49500"), T + 2)
    events = engine.on_price("BTCUSDT", D("48900"), T + 3)
    filled = [e.obj.order_id for e in events if e.topic == "execution"]
    assert filled == [better.order_id, first.order_id, second.order_id]


def test_marketable_limit_takes_at_the_market_and_post_only_is_cancelled() -> None:
    engine, _ = _engine()
    order, _ = engine.create_order("a", _lmt("Buy", "0.001", "51000"), T)
    e = _execs(engine)[0]
    assert (order.status, e.exec_price, e.is_maker) == ("Filled", D("50000"), False)
    post = OrderRequest("BTCUSDT", "Buy", "Limit", D("0.001"), D("51000"), "PostOnly", False, "")
    order, _ = engine.create_order("a", post, T)
    assert order.status == "Cancelled" and order.reject_reason == "EC_PostOnlyWillTakeLiquidity"


def test_partial_fills_mode() -> None:
    engine, prices = _engine(partial=True)
    order, _ = engine.create_order("a", _mkt("Buy", "0.010"), T)
    assert [e.exec_qty for e in _execs(engine)] == [D("0.005"), D("0.005")]
    assert [e.leaves_qty for e in _execs(engine)] == [D("0.005"), D("0")]
    resting, _ = engine.create_order("a", _lmt("Sell", "0.010", "50100"), T)
    engine.on_price("BTCUSDT", D("50100"), T + 1)
    assert resting.status == "PartiallyFilled" and resting.cum_qty == D("0.005")
    engine.on_price("BTCUSDT", D("50200"), T + 2)
    assert resting.status == "Filled"


def test_reduce_only_is_capped_and_refused_when_flat() -> None:
    engine, _ = _engine()
    with pytest.raises(VenueError) as err:
        engine.create_order("a", _mkt("Sell", "0.001", reduce=True), T)
    assert err.value.ret_code == 110017
    engine.create_order("a", _mkt("Buy", "0.100"), T)
    order, _ = engine.create_order("a", _mkt("Sell", "0.300", reduce=True), T)
    assert order.cum_qty == D("0.100") and order.status == "PartiallyFilledCanceled"
    assert order.cancel_type == "CancelByReduceOnly" and engine.accounts["a"].position("BTCUSDT").size == 0


def test_resting_reduce_only_is_cancelled_once_the_position_flipped() -> None:
    engine, _ = _engine()
    engine.create_order("a", _mkt("Buy", "0.100"), T)
    req = OrderRequest("BTCUSDT", "Sell", "Limit", D("0.100"), D("51000"), "GTC", True, "ro")
    resting, _ = engine.create_order("a", req, T)
    engine.create_order("a", _mkt("Sell", "0.300"), T + 1)  # flips to short 0.2
    events = engine.on_price("BTCUSDT", D("51000"), T + 2)
    assert resting.status == "Cancelled" and resting.cancel_type == "CancelByReduceOnly"
    assert [e.topic for e in events] == ["order"] and resting.order_id not in engine.accounts["a"].resting


def test_duplicate_link_id_and_insufficient_balance() -> None:
    engine, _ = _engine(balance="100")
    engine.create_order("a", _mkt("Buy", "0.001", "x-1"), T)
    with pytest.raises(VenueError) as err:
        engine.create_order("a", _mkt("Buy", "0.001", "x-1"), T)
    assert err.value.ret_code == 110072
    with pytest.raises(VenueError) as err:
        engine.create_order("a", _mkt("Buy", "1.000"), T)
    assert err.value.ret_code == 110007


def test_funding_longs_pay_shorts_receive() -> None:
    engine, _ = _engine()
    engine.create_order("a", _mkt("Buy", "0.100"), T)
    engine.create_order("b", _mkt("Sell", "0.100"), T)
    before = {k: engine.accounts[k].balance for k in "ab"}
    events = engine.settle_funding("BTCUSDT", D("50000"), D("0.0001"), T + 10)
    rows = {e.api_key: e.obj for e in events if e.topic == "execution"}
    assert rows["a"].exec_type == "Funding" and rows["a"].exec_fee == D("0.5") and rows["a"].side == "Buy"
    assert rows["b"].exec_fee == D("-0.5") and rows["b"].side == "Sell"
    assert engine.accounts["a"].balance == before["a"] - D("0.5")
    assert engine.accounts["b"].balance == before["b"] + D("0.5")


def test_same_seed_same_orders_same_executions() -> None:
    def run() -> list[tuple]:
        engine, prices = _engine()
        engine.create_order("a", _mkt("Buy", "0.010", "d-1"), T)
        prices.now["BTCUSDT"] = D("50500")
        engine.create_order("a", _lmt("Sell", "0.010", "50600", "d-2"), T + 1)
        engine.on_price("BTCUSDT", D("50700"), T + 2)
        return [(e.exec_id, e.order_id, e.exec_price, e.exec_fee, e.seq) for e in _execs(engine)]
    assert run() == run()
