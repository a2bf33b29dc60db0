"""The scripted session end to end over REST, prices pinned through the admin API, numbers hand-computed."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.auth import sign_ws_auth
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration


async def test_open_add_partial_close_flip_close(venue: VenueProcess, admin: VenueAdmin) -> None:
    await admin.add_account("script-key", "script-secret", "100000")
    http = pybit_http(venue, "script-key", "script-secret")

    def market(side: str, qty: str, link: str, **kw: object) -> None:
        http.place_order(category="linear", symbol="BTCUSDT", side=side, orderType="Market", qty=qty,
                         orderLinkId=link, **kw)

    try:
        await admin.pin_price("BTCUSDT", "50000")
        market("Buy", "0.100", "s-open")
        await admin.pin_price("BTCUSDT", "52000")
        market("Buy", "0.100", "s-add")
        pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert (pos["size"], pos["avgPrice"], pos["unrealisedPnl"], pos["liqPrice"]) == \
               ("0.200", "51000.00", "200", "46155.00")
        wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
        assert (wallet["totalWalletBalance"], wallet["totalEquity"]) == ("99994.39", "100194.39")
        await admin.pin_price("BTCUSDT", "53000")
        http.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Limit", qty="0.050",
                         price="53500", orderLinkId="s-tp")
        await admin.pin_price("BTCUSDT", "53600")
        await admin.pin_price("BTCUSDT", "50500")
        market("Sell", "0.400", "s-flip")
        pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert (pos["side"], pos["size"], pos["avgPrice"], pos["liqPrice"]) == ("Sell", "0.250", "50500.00",
                                                                                 "55297.50")
        await admin.pin_price("BTCUSDT", "49000")
        market("Buy", "0.250", "s-close", reduceOnly=True)
    finally:
        await admin.pin_price("BTCUSDT", None)

    execs = http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
    got = [(e["orderLinkId"], e["side"], e["execPrice"], e["execQty"], e["execValue"], e["execFee"], e["feeRate"],
            e["isMaker"], e["closedSize"]) for e in reversed(execs)]
    assert got == [
        ("s-open", "Buy", "50000.00", "0.100", "5000", "2.75", "0.00055", False, "0.000"),
        ("s-add", "Buy", "52000.00", "0.100", "5200", "2.86", "0.00055", False, "0.000"),
        ("s-tp", "Sell", "53500.00", "0.050", "2675", "0.535", "0.0002", True, "0.050"),
        ("s-flip", "Sell", "50500.00", "0.400", "20200", "11.11", "0.00055", False, "0.150"),
        ("s-close", "Buy", "49000.00", "0.250", "12250", "6.7375", "0.00055", False, "0.250"),
    ]
    pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (pos["size"], pos["side"], pos["cumRealisedPnl"]) == ("0.000", "", "401.0075")
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert (wallet["totalWalletBalance"], wallet["totalEquity"], wallet["coin"][0]["cumRealisedPnl"]) == \
           ("100401.0075", "100401.0075", "401.0075")
    tp = http.get_order_history(category="linear", orderLinkId="s-tp")["result"]["list"][0]
    assert (tp["orderStatus"], tp["avgPrice"], tp["cumExecFee"]) == ("Filled", "53500", "0.535")


async def test_resting_limit_fills_in_parts_as_the_price_crosses() -> None:
    """With --partial-fills a crossed limit order fills half per price move; every state is pushed."""
    with VenueProcess([("pf-key", "pf-secret")], speed=1.0, seed=2, partial_fills=True) as venue:
        async with VenueAdmin(venue.admin_url) as admin, websockets.connect(venue.ws_private_url) as ws:
            expires = int(time.time() * 1000) + 10_000
            await ws.send(json.dumps({"op": "auth", "args": ["pf-key", expires, sign_ws_auth("pf-secret", expires)]}))
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "args": ["order", "execution"]}))
            await ws.recv()
            http = pybit_http(venue, "pf-key", "pf-secret")
            await admin.pin_price("ETHUSDT", "3000.00")
            http.place_order(category="linear", symbol="ETHUSDT", side="Sell", orderType="Limit", qty="1.00",
                             price="3001.00", orderLinkId="pf-1")
            await admin.pin_price("ETHUSDT", "3000.50")  # not crossed yet
            await admin.pin_price("ETHUSDT", "3001.50")
            await admin.pin_price("ETHUSDT", "3002.00")
            statuses, fills = [], []
            while len(fills) < 2 or statuses[-1] != "Filled":
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["topic"] == "order":
                    statuses += [o["orderStatus"] for o in frame["data"]]
                else:
                    fills += [(e["execQty"], e["execPrice"], e["isMaker"], e["leavesQty"]) for e in frame["data"]]
    assert statuses == ["New", "PartiallyFilled", "Filled"]
    assert fills == [("0.50", "3001.00", True, "0.50"), ("0.50", "3001.00", True, "0.00")]
