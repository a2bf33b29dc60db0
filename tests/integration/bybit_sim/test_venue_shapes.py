"""Every REST answer and WebSocket frame type has the keys and value types of its recorded sample.

Extra keys are allowed only where listed below, each a field Bybit documents but the sample lacks.
A sample value of null stands for "string or null" (Bybit sends "" or null for the same empty field).
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.auth import sign_ws_auth
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"
KEY, SECRET = "shape-key", "shape-secret"

EXTRA_EXEC = {"execPnl"}  # Bybit's closed PnL per execution
EXTRA_WALLET = {"accountType", "totalPerpUPL"}
EXTRA_WALLET_COIN = {"usdValue", "unrealisedPnl", "cumRealisedPnl", "bonus", "locked", "collateralSwitch",
                     "marginCollateral"}


def sample(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _type(v: Any) -> str:
    return "bool" if isinstance(v, bool) else type(v).__name__


def shape_errors(got: Any, want: Any, extras: dict[str, set[str]], path: str = "$") -> list[str]:
    """Differences in keys and value types; `extras` maps a path suffix to keys allowed beyond the sample."""
    if want is None:
        return [] if got is None or isinstance(got, str) else [f"{path}: {_type(got)} where sample has null"]
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {_type(got)} where sample has object"]
        allowed = set().union(*(keys for suffix, keys in extras.items() if path.endswith(suffix)))
        errors = [f"{path}: missing key {k}" for k in want.keys() - got.keys()]
        errors += [f"{path}: extra key {k}" for k in got.keys() - want.keys() - allowed]
        for k in want.keys() & got.keys():
            errors += shape_errors(got[k], want[k], extras, f"{path}.{k}")
        return errors
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{path}: {_type(got)} where sample has list"]
        if not want:
            return []
        return [e for i, item in enumerate(got) for e in shape_errors(item, want[0], extras, f"{path}[]")]
    return [] if _type(got) == _type(want) else [f"{path}: {_type(got)} where sample has {_type(want)}"]


def assert_shape(got: Any, sample_value: Any, extras: dict[str, set[str]] | None = None) -> None:
    errors = shape_errors(got, sample_value, extras or {})
    assert not errors, errors


def test_shape_checker_catches_differences() -> None:
    want = {"a": "1", "b": [{"c": 1}], "d": None}
    assert shape_errors({"a": "1", "b": [{"c": 2}], "d": ""}, want, {}) == []
    assert sorted(shape_errors({"a": 1, "b": [{"c": True}], "x": 0}, want, {})) == [
        "$.a: int where sample has str", "$.b[].c: bool where sample has int", "$: extra key x", "$: missing key d"]
    assert shape_errors({"a": "1", "b": [], "d": None, "x": 0}, want, {"$": {"x"}}) == []


class Frames:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def first(self, pred: Any) -> dict[str, Any]:
        found = [f for f in self.items if pred(f)]
        assert found, "no such frame"
        return found[0]


async def _collect(url: str, first_frames: list[str], into: Frames, stop: asyncio.Event) -> None:
    async with websockets.connect(url) as ws:
        for frame in first_frames:
            await ws.send(frame)
        while not stop.is_set():
            try:
                into.items.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
            except TimeoutError:
                continue


async def test_every_answer_and_frame_matches_its_sample(venue: VenueProcess, admin: VenueAdmin) -> None:
    await admin.add_account(KEY, SECRET, "100000")
    expires = int(time.time() * 1000) + 10_000
    private, public, failed = Frames(), Frames(), Frames()
    stop = asyncio.Event()
    auth = json.dumps({"op": "auth", "args": [KEY, expires, sign_ws_auth(SECRET, expires)]})
    sub_private = json.dumps({"op": "subscribe", "req_id": "sub-1",
                              "args": ["execution", "execution.fast", "order", "position", "wallet"]})
    sub_public = json.dumps({"op": "subscribe", "req_id": "sub-2", "args": ["kline.5.BTCUSDT", "tickers.BTCUSDT",
                                                                      "publicTrade.BTCUSDT"]})
    bad_auth = json.dumps({"op": "auth", "args": ["nobody", expires, "00"]})
    tasks = [asyncio.create_task(_collect(venue.ws_private_url, [auth, sub_private], private, stop)),
             asyncio.create_task(_collect(venue.ws_public_url, [sub_public, json.dumps(
                 {"op": "subscribe", "args": ["kline.5.NOPE"]})], public, stop)),
             asyncio.create_task(_collect(venue.ws_private_url, [bad_auth], failed, stop))]
    await asyncio.sleep(0.5)
    http = pybit_http(venue, KEY, SECRET)
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
                     orderLinkId="shape-1")
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.010",
                     price="1000.0", orderLinkId="shape-2")
    await admin.settle_funding("BTCUSDT")
    await asyncio.sleep(0.8)
    stop.set()
    await asyncio.gather(*tasks)

    # WebSocket frames
    assert_shape(failed.first(lambda f: f.get("op") == "auth"), sample("ws_auth_failure"))
    assert_shape(private.first(lambda f: f.get("op") == "auth"), sample("ws_auth_success"))
    assert_shape(private.first(lambda f: f.get("op") == "subscribe"), sample("ws_subscription_ack"))
    assert_shape(public.first(lambda f: f.get("op") == "subscribe" and not f["success"]),
                 sample("ws_subscription_failure"))
    execution = sample("ws_account_execution")
    trade_frame = private.first(lambda f: f.get("topic") == "execution" and f["data"][0]["execType"] == "Trade")
    assert_shape(trade_frame, execution, {"data[]": EXTRA_EXEC | {"feeCurrency"}})
    funding_frame = private.first(lambda f: f.get("topic") == "execution" and f["data"][0]["execType"] == "Funding")
    assert_shape(funding_frame, sample("ws_account_execution_funding"), {"data[]": EXTRA_EXEC})
    assert_shape(private.first(lambda f: f.get("topic") == "execution.fast"), sample("ws_account_execution_fast"))
    for name in ("ws_account_order", "ws_account_order_filled"):
        for frame in (f for f in private.items if f.get("topic") == "order"):
            assert_shape(frame, sample(name))
    for frame in (f for f in private.items if f.get("topic") == "position"):
        assert_shape(frame, sample("ws_account_position"))
    for frame in (f for f in private.items if f.get("topic") == "wallet"):
        assert_shape(frame, sample("ws_account_wallet"), {"data[]": EXTRA_WALLET, "coin[]": EXTRA_WALLET_COIN})
    assert_shape(public.first(lambda f: f.get("topic") == "kline.5.BTCUSDT"), sample("ws_kline"))
    assert_shape(public.first(lambda f: f.get("topic") == "tickers.BTCUSDT"), sample("ws_ticker_linear"))
    taker = public.first(lambda f: f.get("topic") == "publicTrade.BTCUSDT"
                         and len(f["data"][0]["i"]) == 36)  # the account's own taker fill
    assert_shape(taker, sample("ws_public_trade"), {"data[]": {"L"}})

    # REST answers
    executions = http.get_executions(category="linear", symbol="BTCUSDT")
    assert_shape(executions | {"result": executions["result"] | {"list": [
        e for e in executions["result"]["list"] if e["execType"] == "Trade"]}},
        sample("http_get_executions"), {"list[]": EXTRA_EXEC})
    funding_sample = sample("http_get_executions_funding")
    funding_row = next(e for e in executions["result"]["list"] if e["execType"] == "Funding")
    assert_shape(funding_row, funding_sample["result"]["list"][1], {"$": EXTRA_EXEC})
    assert_shape(http.get_instruments_info(category="linear"), sample("http_get_instruments_linear"))
    assert_shape(http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=3),
                 sample("http_get_klines_linear"))
    assert_shape(http.get_open_orders(category="linear", symbol="BTCUSDT"), sample("http_get_orders_realtime"))
    history = http.get_order_history(category="linear")
    assert len(history["result"]["list"]) == 2
    assert_shape(history, sample("http_get_orders_history_with_duplicate"))
    assert_shape(http.get_positions(category="linear", symbol="BTCUSDT"), sample("http_get_positions"))
    wallet_sample = sample("http_get_wallet_balance")
    wallet_sample["result"]["list"][0]["coin"] = wallet_sample["result"]["list"][0]["coin"][:1]  # the fullest row
    assert_shape(http.get_wallet_balance(accountType="UNIFIED"), wallet_sample)
    http.cancel_all_orders(category="linear", settleCoin="USDT")
