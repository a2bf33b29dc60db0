"""The REST client keeps numbers exact both ways, as the WebSocket path does: JSON numbers in an
answer become Decimal (never float), a Decimal in a request is sent as its plain string, and its
callers (trade_sync's account client, the listener's page parsers, C2's flatten) see exact values.

The peer is a real HTTP server speaking Bybit's envelope (Bybit's servers cannot run here) that
answers with JSON number literals, which Bybit may send for any field."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from services.trade_sync.exchange import AccountClient
from services.trade_sync.windows import Window
from shared.bybit.auth import sign_rest, signatures_equal
from shared.bybit.parse_rows import parse_execution_page
from shared.bybit.rest_client import BybitRestClient
from shared.queries.flatten import Flattener

pytestmark = pytest.mark.integration
KEY, SECRET = "dec-key", "dec-secret"
TINY = "0.1"
HUGE = "12345678901234567890.123456789012345678"  # 38 significant digits: no float holds them
HUGE_INT = "98765432109876543210987654321"


def _envelope(result_json: str) -> str:
    return '{"retCode":0,"retMsg":"OK","result":' + result_json + ',"retExtInfo":{},"time":1767225600000}'


EXECUTION = ('{"symbol":"BTCUSDT","orderId":"o-1","orderLinkId":"lxalgo_001-entry-1","side":"Buy",'
             f'"orderPrice":{TINY},"orderQty":{HUGE},"leavesQty":0,"createType":"CreateByUser",'
             '"orderType":"Market","stopOrderType":"","execFee":0.000001,"execId":"e-1",'
             f'"execPrice":{TINY},"execQty":{HUGE},"execType":"Trade","execValue":{HUGE},'
             '"execTime":"1767225600000","feeCurrency":"USDT","isMaker":false,"feeRate":0.00055,'
             '"tradeIv":"","markIv":"","markPrice":0.1,"indexPrice":"","underlyingPrice":"","blockTradeId":"",'
             '"closedSize":0,"seq":4521}')
POSITION = ('{"positionIdx":0,"riskId":1,"riskLimitValue":"2000000","symbol":"ETHUSDT","side":"Sell",'
            f'"size":{HUGE},"avgPrice":{TINY},"positionValue":{HUGE},"tradeMode":0,"autoAddMargin":0,'
            '"positionStatus":"Normal","leverage":10,"markPrice":0.1,"liqPrice":"","bustPrice":"",'
            '"positionIM":"","positionMM":"","tpslMode":"Full","takeProfit":"0","stopLoss":"0",'
            '"trailingStop":"0","unrealisedPnl":-0.1,"curRealisedPnl":0,"cumRealisedPnl":0,"adlRankIndicator":2,'
            '"createdTime":"1767225600000","updatedTime":"1767225600000","seq":4522}')


@dataclass
class Peer:
    url: str
    bodies: list[str] = field(default_factory=list)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    bodies: list[str] = []

    async def tickers(_: web.Request) -> web.Response:
        return web.Response(text=_envelope(
            f'{{"category":"linear","list":[{{"symbol":"BTCUSDT","lastPrice":{TINY},"volume24h":{HUGE},'
            f'"openInterest":{HUGE_INT},"bid1Price":"{TINY}"}}]}}'), content_type="application/json")

    async def executions(_: web.Request) -> web.Response:
        return web.Response(text=_envelope(f'{{"category":"linear","nextPageCursor":"","list":[{EXECUTION}]}}'),
                            content_type="application/json")

    async def positions(_: web.Request) -> web.Response:
        return web.Response(text=_envelope(f'{{"category":"linear","nextPageCursor":"","list":[{POSITION}]}}'),
                            content_type="application/json")

    async def cancel_all(request: web.Request) -> web.Response:
        bodies.append(await request.text())
        return web.Response(text=_envelope('{"list":[],"success":"1"}'), content_type="application/json")

    async def create(request: web.Request) -> web.Response:
        raw = await request.text()
        h = request.headers
        expected = sign_rest(SECRET, int(h["X-BAPI-TIMESTAMP"]), KEY, int(h["X-BAPI-RECV-WINDOW"]), raw)
        if not signatures_equal(expected, h["X-BAPI-SIGN"]):
            return web.Response(text='{"retCode":10004,"retMsg":"error sign!","result":{},"time":0}')
        bodies.append(raw)
        body = json.loads(raw)  # echo qty and price back as JSON number literals, digit for digit
        echo = ",".join(f'"{k}":{body[k]}' for k in ("qty", "price") if k in body)
        return web.Response(text=_envelope(f'{{"orderId":"o-9",{echo}}}'), content_type="application/json")

    app = web.Application()
    app.router.add_get("/v5/market/tickers", tickers)
    app.router.add_get("/v5/execution/list", executions)
    app.router.add_get("/v5/position/list", positions)
    app.router.add_post("/v5/order/cancel-all", cancel_all)
    app.router.add_post("/v5/order/create", create)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Peer(f"http://127.0.0.1:{port}", bodies)
    finally:
        await runner.cleanup()


async def test_answers_decode_json_numbers_as_exact_decimals(peer: Peer) -> None:
    async with BybitRestClient(peer.url) as client:
        row = (await client.get("/v5/market/tickers", {"category": "linear"})).result["list"][0]
    assert type(row["lastPrice"]) is Decimal and row["lastPrice"] == Decimal(TINY)
    assert type(row["volume24h"]) is Decimal and str(row["volume24h"]) == HUGE
    assert row["openInterest"] == int(HUGE_INT) and type(row["openInterest"]) is int
    assert row["bid1Price"] == TINY  # strings are left as Bybit sent them


async def test_decimals_in_a_request_go_out_as_plain_strings_and_come_back_exact(peer: Peer) -> None:
    qty, price = Decimal(HUGE), Decimal(TINY)
    async with BybitRestClient(peer.url, KEY, SECRET) as client:
        resp = await client.post("/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                                      "orderType": "Limit", "qty": qty, "price": price,
                                                      "triggerPrice": Decimal("1E+2"), "orderLinkId": None})
    sent = json.loads(peer.bodies[-1])
    assert (sent["qty"], sent["price"], sent["triggerPrice"]) == (HUGE, TINY, "100")
    assert "orderLinkId" not in sent
    assert (resp.result["qty"], resp.result["price"]) == (qty, price)
    assert type(resp.result["price"]) is Decimal


async def test_a_non_finite_decimal_is_refused_before_sending(peer: Peer) -> None:
    async with BybitRestClient(peer.url, KEY, SECRET) as client:
        with pytest.raises(ValueError, match="cannot send"):
            await client.post("/v5/order/create", {"qty": Decimal("NaN")})
    assert peer.bodies == []


async def test_trade_sync_and_the_listener_parsers_read_numeric_pages_exactly(peer: Peer) -> None:
    account = AccountClient("lxalgo_001", "LXALGO", BybitRestClient(peer.url, KEY, SECRET))
    try:
        pages = [p async for p in account.execution_pages(Window(1767225600000 - 1000, 1767225600000 + 1000))]
        positions, raw_rows = await account.positions()
    finally:
        await account.close()
    assert len(pages) == 1 and len(pages[0]) == 1
    page = parse_execution_page({"category": "linear", "list": pages[0]})
    assert page.rejected == ()
    (e,) = page.executions
    assert (e.exec_price, e.exec_qty, e.exec_value, e.exec_fee) == (
        Decimal(TINY), Decimal(HUGE), Decimal(HUGE), Decimal("0.000001"))
    (p,) = positions
    assert (p.size, p.avg_price, p.unrealised_pnl, p.leverage) == (
        Decimal(HUGE), Decimal(TINY), Decimal("-0.1"), Decimal(10))
    assert raw_rows[0]["size"] == Decimal(HUGE)


async def test_flatten_sends_the_exact_position_size(peer: Peer) -> None:
    flattener = Flattener({"lxalgo_001": BybitRestClient(peer.url, KEY, SECRET)})
    try:
        outcome = await flattener.flatten("lxalgo_001")
    finally:
        await flattener.close()
    assert outcome.errors == ()
    (closed,) = outcome.closed
    assert (closed.symbol, closed.side, closed.qty) == ("ETHUSDT", "Sell", Decimal(HUGE))
    order = json.loads(peer.bodies[-1])
    assert (order["side"], order["qty"], order["reduceOnly"]) == ("Buy", HUGE, True)
    assert order["orderLinkId"].startswith("lxalgo_001-flatten-")
