"""The live adapter's pure parts: listener entries and REST rows in, request bodies out, the outbox."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from strategies.backtest.book import Book
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from strategies.runtime.driver import LiveDriver
from strategies.runtime.live.parsing import (
    BadInput, bar_from_stream, bars_from_rest, fill_from_stream, bar_stream_key, position_from_rest, request_for,
)
from strategies.runtime.orders import CancelAll, Decision, PlaceOrder, TradingStop
from strategies.runtime.outbox import OUTBOX_KEY, decision_from_json, decision_to_json
from strategies.runtime.state import InMemoryStateStore

EXEC_MS = int(datetime(2026, 12, 6, 10, tzinfo=timezone.utc).timestamp()) * 1000 + 123
START = 1_746_057_600_000  # 2025-05-01 00:00 UTC
CANDLE = {"start": str(START), "open": "100.5", "high": "101", "low": "99.9", "close": "100.7", "volume": "12.5",
          "turnover": "1256", "interval": "5", "symbol": "BTCUSDT"}


def test_a_stream_candle_becomes_a_closed_bar() -> None:
    bar = bar_from_stream("BTCUSDT", "5m", f"{START}-0", CANDLE)
    assert (bar.start_ms, bar.close_ms, bar.open, bar.high, bar.low, bar.close) == (
        START, START + 300_000, 100.5, 101.0, 99.9, 100.7)
    assert bar_stream_key("BTCUSDT", "1h") == "klines:BTCUSDT:60"


@pytest.mark.parametrize("change, message", [
    ({"high": "100.6"}, "high/low"),  # high below the close
    ({"low": "-1"}, "not positive"),
    ({"close": "abc"}, "not a number"),
    ({"start": str(START + 1)}, "id does not match"),
    ({"symbol": "ETHUSDT"}, "for ETHUSDT"),
])
def test_a_malformed_candle_is_refused(change: dict[str, str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        bar_from_stream("BTCUSDT", "5m", f"{START}-0", {**CANDLE, **change})


def test_rest_klines_keep_only_closed_candles_oldest_first() -> None:
    rows = [[str(START + i * 300_000), "1", "2", "0.5", "1.5", "3", "4"] for i in (2, 1, 0)]  # newest first
    bars = bars_from_rest(rows, "BTCUSDT", "5m", last_closed_start_ms=START + 300_000)
    assert [b.start_ms for b in bars] == [START, START + 300_000]


def fill_message(**kw: object) -> str:
    base = {"bot_id": "momentum_001", "exec_id": "e1", "symbol": "BTCUSDT", "side": "Sell", "exec_type": "Trade",
            "exec_price": "100.1", "exec_qty": "0.010", "commission": "0.0055", "is_maker": False,
            "client_order_id": None, "stop_order_type": "StopLoss", "exec_time": "2026-12-06T10:00:00.123Z"}
    return json.dumps({**base, **kw})


def test_fills_from_the_feed_carry_their_reason() -> None:
    sl = fill_from_stream(fill_message(), "momentum_001")
    assert sl is not None and (sl.reason, sl.qty, sl.price, sl.time_ms) == ("sl", Decimal("0.010"), Decimal("100.1"),
                                                                             EXEC_MS)
    entry = fill_from_stream(fill_message(client_order_id="momentum_001-entry-3", stop_order_type="UNKNOWN"),
                             "momentum_001")
    assert entry is not None and entry.reason == "entry"
    assert fill_from_stream(fill_message(exec_type="Funding"), "momentum_001") is None
    with pytest.raises(BadInput):
        fill_from_stream(fill_message(), "lxalgo_001")
    with pytest.raises(BadInput):
        fill_from_stream("{not json", "momentum_001")


def test_a_short_position_row() -> None:
    pos = position_from_rest({"symbol": "ETHUSDT", "side": "Sell", "size": "1.50", "avgPrice": "2500.5",
                              "stopLoss": "2600", "takeProfit": "0", "trailingStop": "0", "leverage": "10",
                              "createdTime": "1746057600000"})
    assert (pos.qty, pos.avg_price, pos.stop_loss, pos.take_profit, pos.opened_ms) == (
        Decimal("-1.50"), Decimal("2500.5"), Decimal("2600"), Decimal(0), 1746057600000)


def test_request_bodies() -> None:
    path, body = request_for(PlaceOrder("BTCUSDT", "Buy", Decimal("0.010"), "b-entry-1", "entry",
                                        stop_loss=Decimal("99.5"), take_profit=Decimal("101.0")))
    assert path == "/v5/order/create"
    assert body == {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.010",
                    "positionIdx": 0, "orderLinkId": "b-entry-1", "timeInForce": "IOC", "tpslMode": "Full",
                    "stopLoss": "99.5", "takeProfit": "101.0"}
    path, body = request_for(TradingStop("BTCUSDT", stop_loss=Decimal(0), trailing_stop=Decimal("50")))
    assert (path, body) == ("/v5/position/trading-stop", {"category": "linear", "symbol": "BTCUSDT", "tpslMode": "Full",
                                                           "positionIdx": 0, "stopLoss": "0", "trailingStop": "50"})
    assert request_for(CancelAll())[1] == {"category": "linear", "settleCoin": "USDT"}


def test_decisions_round_trip_through_json() -> None:
    ds = [Decision(5, PlaceOrder("BTCUSDT", "Sell", Decimal("0.001"), "x-exit-2", "exit", order_type="Limit",
                                 price=Decimal("101.5"), reduce_only=True, time_in_force="PostOnly")),
          Decision(6, TradingStop("BTCUSDT", take_profit=Decimal("0"), active_price=Decimal("99"))),
          Decision(7, CancelAll("ETHUSDT"))]
    assert [decision_from_json(json.loads(json.dumps(decision_to_json(d)))) for d in ds] == ds


async def test_decisions_saved_but_not_sent_are_sent_after_a_restart() -> None:
    cfg = EmaCrossConfig(symbols=("BTCUSDT",), fast=2, slow=3, qty=Decimal("0.01"))
    store = InMemoryStateStore()
    instruments = sim_instruments()
    book = Book(cfg.bot_id, {"BTCUSDT": instruments["BTCUSDT"]}, RunSettings())

    async def die(decisions: list[Decision]) -> None:
        raise SystemExit("killed between the save and the send")

    driver = await LiveDriver.load(EmaCross(cfg), store=store, account=book, instruments=book.instruments, send=die)
    await driver.start(0)
    driver.runtime.ctx.market("BTCUSDT", "Buy", Decimal("0.01"), reason="entry")
    with pytest.raises(SystemExit):
        await driver._flush()
    assert store.data["_order_counter"] == 1 and len(store.data[OUTBOX_KEY]) == 1  # type: ignore[arg-type]

    sent: list[Decision] = []

    async def send(decisions: list[Decision]) -> None:
        sent.extend(decisions)

    again = await LiveDriver.load(EmaCross(cfg), store=store, account=book, instruments=book.instruments, send=send)
    assert await again.resend() == sent
    assert [d.intent.order_link_id for d in sent] == ["emacross_001-entry-1"]  # type: ignore[union-attr]
    assert OUTBOX_KEY not in store.data
    assert await again.resend() == []
