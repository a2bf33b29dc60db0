"""TP/SL on order create, trading-stop with a trailing stop, conditional orders: through pybit's own HTTP
client and the private WebSocket, every answer and push shaped like Bybit's recorded samples."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.auth import sign_ws_auth
from tests.integration.bybit_sim.conftest import pybit_http
from tests.integration.bybit_sim.test_venue_shapes import Frames, _collect, assert_shape, sample

pytestmark = pytest.mark.integration
KEY, SECRET = "stops-key", "stops-secret"
SYM = "SOLUSDT"


async def _until(pred, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_tpsl_trading_stop_and_conditional_orders_through_pybit(venue: VenueProcess, admin: VenueAdmin) -> None:
    await admin.add_account(KEY, SECRET, "100000")
    expires = int(time.time() * 1000) + 10_000
    private, stop = Frames(), asyncio.Event()
    auth = json.dumps({"op": "auth", "args": [KEY, expires, sign_ws_auth(SECRET, expires)]})
    sub = json.dumps({"op": "subscribe", "args": ["execution", "order", "position"]})
    collector = asyncio.create_task(_collect(venue.ws_private_url, [auth, sub], private, stop))
    http = pybit_http(venue, KEY, SECRET)
    try:
        await admin.pin_price(SYM, "150.000")
        await asyncio.sleep(0.3)
        placed = http.place_order(category="linear", symbol=SYM, side="Buy", orderType="Market", qty="10",
                                  stopLoss="140", takeProfit="170", tpslMode="Full", slTriggerBy="LastPrice",
                                  orderLinkId="stops-entry-1")
        assert placed["retCode"] == 0
        pos = http.get_positions(category="linear", symbol=SYM)["result"]["list"][0]
        assert (pos["size"], pos["stopLoss"], pos["takeProfit"], pos["trailingStop"]) == (
            "10.0", "140.000", "170.000", "0")
        entry = http.get_order_history(category="linear", orderLinkId="stops-entry-1")["result"]["list"][0]
        assert (entry["stopLoss"], entry["takeProfit"], entry["tpslMode"], entry["slTriggerBy"]) == (
            "140", "170", "Full", "LastPrice")
        stops = http.get_open_orders(category="linear", symbol=SYM, orderFilter="StopOrder")["result"]["list"]
        assert sorted((o["stopOrderType"], o["orderStatus"], o["triggerPrice"], o["side"], o["reduceOnly"],
                       o["orderType"], o["triggerDirection"]) for o in stops) == [
            ("StopLoss", "Untriggered", "140.000", "Sell", True, "Market", 2),
            ("TakeProfit", "Untriggered", "170.000", "Sell", True, "Market", 1)]
        assert http.get_open_orders(category="linear", symbol=SYM, orderFilter="Order")["result"]["list"] == []

        answer = http.set_trading_stop(category="linear", symbol=SYM, tpslMode="Full", positionIdx=0,
                                       stopLoss="145", trailingStop="3", activePrice="155")
        assert (answer["retCode"], answer["result"]) == (0, {})
        with pytest.raises(InvalidRequestError) as err:
            http.set_trading_stop(category="linear", symbol=SYM, tpslMode="Full", positionIdx=0, stopLoss="145")
        assert err.value.status_code == 34040
        with pytest.raises(InvalidRequestError) as err:
            http.set_trading_stop(category="linear", symbol=SYM, tpslMode="Full", positionIdx=0, stopLoss="151")
        assert err.value.status_code == 10001
        pos = http.get_positions(category="linear", symbol=SYM)["result"]["list"][0]
        assert (pos["stopLoss"], pos["trailingStop"]) == ("145.000", "3.000")

        await admin.pin_price(SYM, "144.500")  # a gap through the stop loss: it fills at the first price past it
        execs = http.get_executions(category="linear", symbol=SYM)["result"]["list"]
        sl_exec = execs[0]
        assert (sl_exec["stopOrderType"], sl_exec["execPrice"], sl_exec["execQty"], sl_exec["side"],
                sl_exec["orderType"], sl_exec["isMaker"], sl_exec["createType"], sl_exec["orderLinkId"]) == (
            "StopLoss", "144.500", "10.0", "Sell", "Market", False, "CreateByStopLoss", "")
        assert Decimal(sl_exec["execFee"]) == Decimal("1445") * Decimal("0.00055")
        pos = http.get_positions(category="linear", symbol=SYM)["result"]["list"][0]
        assert (pos["size"], pos["stopLoss"], pos["takeProfit"], pos["trailingStop"]) == ("0.0", "0", "0", "0")
        history = {o["stopOrderType"]: o for o in http.get_order_history(category="linear", symbol=SYM)["result"]["list"]}
        assert (history["StopLoss"]["orderStatus"], history["TakeProfit"]["orderStatus"],
                history["TrailingStop"]["orderStatus"], history["TakeProfit"]["cancelType"]) == (
            "Filled", "Deactivated", "Deactivated", "CancelByTpSlTsClear")

        with pytest.raises(InvalidRequestError) as err:
            http.place_order(category="linear", symbol=SYM, side="Sell", orderType="Market", qty="5",
                             triggerPrice="146", triggerDirection=2)
        assert err.value.status_code == 110093
        cond = http.place_order(category="linear", symbol=SYM, side="Sell", orderType="Market", qty="5",
                                triggerPrice="144", triggerDirection=2, triggerBy="MarkPrice",
                                orderLinkId="stops-cond-1")["result"]
        row = http.get_open_orders(category="linear", symbol=SYM, orderId=cond["orderId"])["result"]["list"][0]
        assert (row["orderStatus"], row["stopOrderType"], row["triggerPrice"], row["triggerBy"]) == (
            "Untriggered", "Stop", "144.000", "MarkPrice")
        await admin.pin_price(SYM, "143.990")
        filled = http.get_order_history(category="linear", orderLinkId="stops-cond-1")["result"]["list"][0]
        assert (filled["orderStatus"], filled["avgPrice"]) == ("Filled", "143.99")
        http.place_order(category="linear", symbol=SYM, side="Buy", orderType="Market", qty="5", reduceOnly=True)

        await _until(lambda: any(f.get("topic") == "execution" and f["data"][0]["stopOrderType"] == "Stop"
                                 for f in private.items))
    finally:
        await admin.pin_price(SYM, None)
        stop.set()
        await collector

    orders = [r for f in private.items if f.get("topic") == "order" for r in f["data"]]
    assert ("StopLoss", "Triggered") in {(r["stopOrderType"], r["orderStatus"]) for r in orders}
    assert ("Stop", "Untriggered") in {(r["stopOrderType"], r["orderStatus"]) for r in orders}
    for frame in (f for f in private.items if f.get("topic") == "order"):
        assert_shape(frame, sample("ws_account_order"))
    positions = [r for f in private.items if f.get("topic") == "position" for r in f["data"]]
    assert {"140.000", "145.000"} <= {r["stopLoss"] for r in positions}
    assert "3.000" in {r["trailingStop"] for r in positions}
    for frame in (f for f in private.items if f.get("topic") == "position"):
        assert_shape(frame, sample("ws_account_position"))
    stop_rows = [r for f in private.items if f.get("topic") == "execution" for r in f["data"]
                 if r["stopOrderType"] in ("StopLoss", "Stop")]
    assert [(r["stopOrderType"], r["execPrice"]) for r in stop_rows] == [("StopLoss", "144.500"), ("Stop", "143.990")]
    for frame in (f for f in private.items if f.get("topic") == "execution"):
        assert_shape(frame, sample("ws_account_execution"), {"data[]": {"execPnl", "feeCurrency"}})
