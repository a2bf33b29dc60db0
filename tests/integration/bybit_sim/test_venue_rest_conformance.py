"""pybit's own HTTP client against the venue: every answer accepted, errors with Bybit's codes."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import aiohttp
import pytest
from pybit.exceptions import InvalidRequestError

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.auth import rest_headers
from tests.integration.bybit_sim.conftest import (HIST_END_MS, HIST_EXECUTIONS, HIST_KEY, HIST_SECRET, KEY,
                                                  POOR_KEY, POOR_SECRET, SECRET, pybit_http)

pytestmark = pytest.mark.integration
WEEK_MS = 7 * 86_400_000


def test_market_endpoints(http) -> None:
    server = http.get_server_time()["result"]
    assert abs(int(server["timeSecond"]) - time.time()) < 5
    kline = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=10)["result"]
    starts = [int(row[0]) for row in kline["list"]]
    assert len(starts) == 10 and starts == sorted(starts, reverse=True)
    assert all(b - a == 300_000 for a, b in zip(starts[1:], starts[:-1]))
    for row in kline["list"]:
        o, h, low, c = (Decimal(x) for x in row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
    tickers = http.get_tickers(category="linear")["result"]["list"]
    assert {t["symbol"] for t in tickers} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    info = http.get_instruments_info(category="linear", symbol="SOLUSDT")["result"]["list"][0]
    assert info["priceFilter"]["tickSize"] == "0.010" and info["lotSizeFilter"]["qtyStep"] == "0.1"


def test_kline_window_by_start_and_end(http) -> None:
    first = http.get_kline(category="linear", symbol="ETHUSDT", interval="60", limit=5)["result"]["list"]
    end = int(first[2][0])
    rows = http.get_kline(category="linear", symbol="ETHUSDT", interval="60", end=end, limit=3)["result"]["list"]
    assert [r[0] for r in rows] == [r[0] for r in first[2:5]]
    assert rows[1:] == first[3:5]  # closed candles do not change


def test_market_order_fills_and_reports(http) -> None:
    placed = http.place_order(category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty="0.5",
                              orderLinkId="conf-mkt-1")["result"]
    assert placed["orderLinkId"] == "conf-mkt-1"
    execs = http.get_executions(category="linear", orderId=placed["orderId"])["result"]["list"]
    assert len(execs) == 1
    e = execs[0]
    assert e["execType"] == "Trade" and e["execQty"] == "0.50" and e["isMaker"] is False
    assert Decimal(e["execFee"]) == Decimal(e["execValue"]) * Decimal("0.00055")
    order = http.get_order_history(category="linear", orderId=placed["orderId"])["result"]["list"][0]
    assert order["orderStatus"] == "Filled" and order["cumExecQty"] == "0.50"
    pos = http.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert pos["side"] == "Buy" and Decimal(pos["size"]) >= Decimal("0.5")
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert Decimal(wallet["totalWalletBalance"]) < Decimal(100000)
    http.place_order(category="linear", symbol="ETHUSDT", side="Sell", orderType="Market", qty=pos["size"],
                     reduceOnly=True)
    flat = http.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert flat["size"] == "0.00" and flat["side"] == ""


def test_limit_order_rests_then_cancels(http) -> None:
    placed = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                              price="1000.0", orderLinkId="conf-lim-1")["result"]
    open_orders = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [o["orderLinkId"] for o in open_orders if o["orderId"] == placed["orderId"]] == ["conf-lim-1"]
    http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="conf-lim-1")
    hist = http.get_order_history(category="linear", orderLinkId="conf-lim-1")["result"]["list"]
    assert hist[0]["orderStatus"] == "Cancelled" and hist[0]["cancelType"] == "CancelByUser"
    with pytest.raises(InvalidRequestError) as err:
        http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="conf-lim-1")
    assert err.value.status_code == 110001


def test_cancel_all(http) -> None:
    for n in range(3):
        http.place_order(category="linear", symbol="SOLUSDT", side="Sell", orderType="Limit", qty="0.1",
                         price="9999.000", orderLinkId=f"conf-ca-{n}")
    result = http.cancel_all_orders(category="linear", symbol="SOLUSDT")["result"]
    assert sorted(o["orderLinkId"] for o in result["list"]) == ["conf-ca-0", "conf-ca-1", "conf-ca-2"]
    assert http.get_open_orders(category="linear", symbol="SOLUSDT")["result"]["list"] == []


def test_wrong_secret_and_unknown_key_are_refused(venue: VenueProcess) -> None:
    with pytest.raises(InvalidRequestError) as err:
        pybit_http(venue, KEY, "not-the-secret").get_positions(category="linear", symbol="BTCUSDT")
    assert err.value.status_code == 10004
    with pytest.raises(InvalidRequestError) as err:
        pybit_http(venue, "nobody", "x").get_wallet_balance(accountType="UNIFIED")
    assert err.value.status_code == 10003


async def test_stale_timestamp_is_refused(venue: VenueProcess) -> None:
    query = "accountType=UNIFIED"
    stale = int(time.time() * 1000) - 60_000
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{venue.rest_url}/v5/account/wallet-balance?{query}",
                         headers=rest_headers(KEY, SECRET, stale, query)) as resp:
            body = await resp.json()
    assert body["retCode"] == 10002


def test_business_errors(venue: VenueProcess, http) -> None:
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                     price="1000.0", orderLinkId="conf-dup")
    with pytest.raises(InvalidRequestError) as err:
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                         price="1000.0", orderLinkId="conf-dup")
    assert err.value.status_code == 110072
    poor = pybit_http(venue, POOR_KEY, POOR_SECRET)
    with pytest.raises(InvalidRequestError) as err:
        poor.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="1")
    assert err.value.status_code == 110007
    bad_params = [dict(qty="0.0005"), dict(qty="abc"), dict(symbol="DOGEUSDT"), dict(side="Long"),
                  dict(orderType="Limit", price="1000.05"), dict(orderLinkId="x" * 37), dict(category="spot")]
    for override in bad_params:
        params = dict(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001") | override
        with pytest.raises(InvalidRequestError) as err:
            http.place_order(**params)
        assert err.value.status_code == 10001, override
    with pytest.raises(InvalidRequestError) as err:
        poor.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.001",
                         reduceOnly=True)
    assert err.value.status_code == 110017
    http.cancel_all_orders(category="linear", settleCoin="USDT")


def test_set_leverage(http) -> None:
    http.set_leverage(category="linear", symbol="SOLUSDT", buyLeverage="3", sellLeverage="3")
    pos = http.get_positions(category="linear", symbol="SOLUSDT")["result"]["list"][0]
    assert pos["leverage"] == "3"
    with pytest.raises(InvalidRequestError) as err:
        http.set_leverage(category="linear", symbol="SOLUSDT", buyLeverage="3", sellLeverage="3")
    assert err.value.status_code == 110043


def test_execution_list_rules(venue: VenueProcess) -> None:
    hist = pybit_http(venue, HIST_KEY, HIST_SECRET)
    for params in (dict(limit=101), dict(startTime=HIST_END_MS - 8 * 86_400_000, endTime=HIST_END_MS),
                   dict(startTime=HIST_END_MS, endTime=HIST_END_MS - 1), dict(cursor="garbage")):
        with pytest.raises(InvalidRequestError) as err:
            hist.get_executions(category="linear", **params)
        assert err.value.status_code == 10001, params
    only_start = hist.get_executions(category="linear", startTime=HIST_END_MS - WEEK_MS, limit=100)["result"]
    times = [int(e["execTime"]) for e in only_start["list"]]
    assert times == sorted(times, reverse=True) and len(times) == 100 and only_start["nextPageCursor"]


async def test_pagination_across_7_day_windows(venue: VenueProcess, admin: VenueAdmin) -> None:
    """Walking back week by week with cursors yields exactly the venue's ground truth, newest first."""
    hist = pybit_http(venue, HIST_KEY, HIST_SECRET)
    truth = await admin.executions(HIST_KEY)
    assert len(truth) == HIST_EXECUTIONS
    assert {"Trade", "Funding"} <= {e["execType"] for e in truth}
    seen: list[dict] = []
    end = HIST_END_MS
    oldest = min(int(e["execTime"]) for e in truth)
    pages = 0
    while end >= oldest:
        start = end - WEEK_MS
        cursor = None
        while True:
            result = hist.get_executions(category="linear", startTime=start, endTime=end, limit=100,
                                         cursor=cursor)["result"]
            pages += 1
            assert len(result["list"]) <= 100
            seen += result["list"]
            cursor = result["nextPageCursor"]
            if not cursor:
                break
        end = start - 1
    assert pages > 4 * 5
    assert [e["execId"] for e in seen] == [e["execId"] for e in reversed(truth)]
    assert len({e["execId"] for e in seen}) == HIST_EXECUTIONS
    times = [int(e["execTime"]) for e in seen]
    assert times == sorted(times, reverse=True)
    assert json.dumps(seen[0], sort_keys=True) == json.dumps(truth[-1], sort_keys=True)
