"""pybit's own WebSocket client against the venue: private auth + all four topics, public kline/tickers."""
from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pybit.unified_trading as ut
import pytest
from pybit.unified_trading import WebSocket

from services.bybit_sim.handle import VenueProcess
from tests.integration.bybit_sim.conftest import FAST_KEY, FAST_SECRET, KEY, SECRET, pybit_http

pytestmark = pytest.mark.integration
WAIT_S = 10


def _point_pybit_at(monkeypatch: pytest.MonkeyPatch, venue: VenueProcess) -> None:
    monkeypatch.setattr(ut, "PRIVATE_WSS", venue.ws_private_url)
    monkeypatch.setattr(ut, "PUBLIC_WSS", venue.ws_private_url.replace("/v5/private", "/v5/public/{CHANNEL_TYPE}"))


def _collector() -> tuple[queue.Queue, Any]:
    q: queue.Queue = queue.Queue()
    return q, q.put


def _next(q: queue.Queue, pred: Any = lambda m: True) -> dict[str, Any]:
    while True:
        msg = q.get(timeout=WAIT_S)
        if pred(msg):
            return msg


@pytest.fixture
def private_ws(venue: VenueProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebSocket]:
    _point_pybit_at(monkeypatch, venue)
    ws = WebSocket("private", testnet=False, api_key=KEY, api_secret=SECRET, private_auth_expire=5)
    yield ws
    ws.exit()


def test_private_topics_through_pybit(venue: VenueProcess, private_ws: WebSocket) -> None:
    queues = {name: _collector() for name in ("execution", "order", "position", "wallet")}
    private_ws.execution_stream(queues["execution"][1])
    private_ws.order_stream(queues["order"][1])
    private_ws.position_stream(queues["position"][1])
    private_ws.wallet_stream(queues["wallet"][1])
    http = pybit_http(venue, KEY, SECRET)
    placed = http.place_order(category="linear", symbol="SOLUSDT", side="Buy", orderType="Market", qty="1.0",
                              orderLinkId="ws-conf-1")["result"]
    execution = _next(queues["execution"][0])
    assert execution["topic"] == "execution" and {"id", "creationTime", "data"} <= execution.keys()
    row = execution["data"][0]
    assert row["orderId"] == placed["orderId"] and row["orderLinkId"] == "ws-conf-1"
    rest_row = http.get_executions(category="linear", orderId=placed["orderId"])["result"]["list"][0]
    assert row["execId"] == rest_row["execId"] and row["execPrice"] == rest_row["execPrice"]
    order = _next(queues["order"][0], lambda m: m["data"][0]["orderId"] == placed["orderId"])
    assert order["data"][0]["orderStatus"] == "Filled"
    position = _next(queues["position"][0], lambda m: m["data"][0]["symbol"] == "SOLUSDT")
    assert position["data"][0]["side"] == "Buy"
    wallet = _next(queues["wallet"][0])
    assert wallet["data"][0]["coin"][0]["coin"] == "USDT"
    http.place_order(category="linear", symbol="SOLUSDT", side="Sell", orderType="Market", qty="1.0", reduceOnly=True)
    closed = _next(queues["position"][0], lambda m: m["data"][0]["size"] == "0.0")
    assert closed["data"][0]["side"] == ""


def test_public_kline_and_tickers_through_pybit(fast_venue: VenueProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_pybit_at(monkeypatch, fast_venue)
    ws = WebSocket("linear", testnet=False)
    try:
        klines, on_kline = _collector()
        tickers, on_ticker = _collector()
        ws.kline_stream(interval=1, symbol="BTCUSDT", callback=on_kline)
        ws.ticker_stream(symbol="ETHUSDT", callback=on_ticker)
        confirmed = [_next(klines, lambda m: m["data"][0]["confirm"])["data"][0] for _ in range(3)]
        starts = [c["start"] for c in confirmed]
        assert all(b - a == 60_000 for a, b in zip(starts, starts[1:]))
        assert all(c["end"] == c["start"] + 59_999 and c["interval"] == "1" for c in confirmed)
        ticker = _next(tickers)
        assert ticker["topic"] == "tickers.ETHUSDT" and ticker["data"]["symbol"] == "ETHUSDT"
    finally:
        ws.exit()


def test_fast_execution_stream(fast_venue: VenueProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_pybit_at(monkeypatch, fast_venue)
    ws = WebSocket("private", testnet=False, api_key=FAST_KEY, api_secret=FAST_SECRET, private_auth_expire=5)
    try:
        fast, on_fast = _collector()
        ws.fast_execution_stream(on_fast)
        http = pybit_http(fast_venue, FAST_KEY, FAST_SECRET)
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                         orderLinkId="fast-1")
        row = _next(fast)["data"][0]
        assert row["orderLinkId"] == "fast-1" and row["execQty"] == "0.001"
        http.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.001",
                         reduceOnly=True)
    finally:
        ws.exit()
