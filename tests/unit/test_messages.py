"""The parsers on every recorded Bybit V5 payload in tests/fixtures/bybit_v5/."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.bybit.records import (
    AuthResult,
    BadFrame,
    Execution,
    FastExecution,
    Kline,
    OrderUpdate,
    Pong,
    PositionSnapshot,
    SubscribeResult,
    Ticker,
    WalletSnapshot,
)
from shared.bybit.attribution import derive_close_reason, parse_order_link_id
from shared.bybit.fields import datetime_to_ms, ms_to_datetime
from shared.bybit.parse_rows import (
    parse_execution,
    parse_execution_page,
    parse_execution_rows,
    parse_instrument_page,
    parse_kline_result,
    parse_order_page,
    parse_position_page,
    parse_public_trade,
    parse_wallet_result,
)
from shared.bybit.frames import classify_frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bybit_v5"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(name: str) -> Any:
    return json.loads(text(name))


def records(name: str) -> list[Any]:
    parsed = classify_frame(text(name))
    assert not isinstance(parsed, BadFrame), parsed
    assert not any(isinstance(r, BadFrame) for r in parsed), parsed
    return parsed


def utc_ms(ms: int) -> datetime:
    return ms_to_datetime(ms)


def test_every_fixture_is_covered_by_a_test_in_this_module() -> None:
    source = Path(__file__).read_text()
    missing = [p.name for p in FIXTURES.glob("*.json") if f'"{p.name}"' not in source]
    assert missing == []


# ---- WebSocket private topics ----------------------------------------------------------------

def test_ws_execution_trade() -> None:
    [e] = records("ws_account_execution.json")
    assert isinstance(e, Execution)
    assert e.category == "linear" and e.symbol == "BTCUSDT"
    assert e.exec_id == "0ab1bdf7-4219-438b-b30a-32ec863018f7"
    assert e.order_id == "9aac161b-8ed6-450d-9cab-c5cc67c21784"
    assert e.order_link_id == "test-order-link-001"
    assert e.side == "Sell" and e.exec_type == "Trade" and e.is_trade
    assert e.exec_price == Decimal("95900.1") and e.exec_qty == Decimal("0.5")
    assert e.exec_value == Decimal("47950.05") and e.exec_fee == Decimal("26.3725275")
    assert e.fee_rate == Decimal("0.00055") and e.fee_currency is None
    assert e.closed_size == Decimal("0.5") and e.leaves_qty == Decimal("0")
    assert e.mark_price == Decimal("95901.48") and e.order_price == Decimal("94942.5")
    assert e.order_type == "Market" and e.stop_order_type == "UNKNOWN" and e.is_maker is False
    assert e.seq == 140612148849382
    assert e.exec_time == datetime(2025, 5, 3, 11, 6, 40, 353000, tzinfo=UTC)
    assert isinstance(e.exec_price, Decimal) and e.exec_time.tzinfo is UTC
    # "test-order-link-001" has the shape of a tag but names no bot of this connection.
    assert e.close_reason(frozenset({"shortseller_001"})) == "manual"


def test_ws_execution_adl_is_not_a_trade() -> None:
    [e] = records("ws_account_execution_adl.json")
    assert e.exec_type == "AdlTrade" and not e.is_trade
    assert e.exec_fee == Decimal("0") and e.order_link_id == ""
    assert e.close_reason() == "adl"


def test_ws_execution_funding_is_not_a_trade() -> None:
    [e] = records("ws_account_execution_funding.json")
    assert e.exec_type == "Funding" and not e.is_trade
    assert e.exec_fee == Decimal("0.7506234") and e.fee_currency == "USDT"
    assert e.exec_time == datetime(2026, 9, 4, 8, 0, tzinfo=UTC)
    assert e.close_reason() == "funding"


def test_ws_execution_spot_keeps_category_and_empty_mark_price() -> None:
    [e] = records("ws_account_execution_spot.json")
    assert e.category == "spot" and e.mark_price is None
    assert e.exec_fee == Decimal("0.000025") and e.seq == 2270000001384586812


def test_ws_execution_fast_is_a_separate_record() -> None:
    [e] = records("ws_account_execution_fast.json")
    assert isinstance(e, FastExecution)
    assert e.symbol == "ICPUSDT" and e.exec_price == Decimal("12.015") and e.exec_qty == Decimal("3000")
    assert e.exec_time == utc_ms(1716800399334)


def test_ws_order_cancelled_stop_loss() -> None:
    [o] = records("ws_account_order.json")
    assert isinstance(o, OrderUpdate)
    assert o.order_id == "abcdef123456" and o.order_link_id == "client-1"
    assert o.order_status == "Cancelled" and o.cancel_type == "CancelByUser"
    assert o.price == Decimal("30000") and o.qty == Decimal("0.010") and o.cum_exec_qty == Decimal("0")
    assert o.stop_order_type == "StopLoss" and o.reduce_only is False
    assert o.created_time == utc_ms(1700000000000) and o.updated_time == utc_ms(1700000005000)


def test_ws_order_filled() -> None:
    [o] = records("ws_account_order_filled.json")
    assert o.order_status == "Filled" and o.avg_price == Decimal("30000.50")
    assert o.cum_exec_fee == Decimal("1.650028") and o.cum_exec_value == Decimal("3000.05")
    assert o.take_profit == Decimal("31000.00") and o.stop_loss == Decimal("29000.00")


def test_ws_order_partially_filled_then_rejected() -> None:
    [o] = records("ws_account_order_partially_filled_rejected.json")
    assert o.order_status == "Rejected" and o.category == "spot"
    assert o.leaves_qty == Decimal("50.0") and o.cum_exec_qty == Decimal("50.0")
    assert o.trigger_price is None and o.reject_reason == "UNKNOWN"


@pytest.mark.parametrize("name", ["ws_account_position.json", "ws_account_position_short.json"])
def test_ws_position_short(name: str) -> None:
    [p] = records(name)
    assert isinstance(p, PositionSnapshot)
    assert p.symbol == "ETHUSDT" and p.side == "Sell" and p.size == Decimal("0.01")
    assert p.signed_size == Decimal("-0.01") and not p.is_flat
    assert p.avg_price == Decimal("3641.075") and p.mark_price == Decimal("3641.33")
    assert p.liq_price == Decimal("51764.83003276") and p.unrealised_pnl == Decimal("-0.00255")
    assert p.seq == 325852190774 and p.updated_time == utc_ms(1762199125472)


def test_ws_wallet() -> None:
    [w] = records("ws_account_wallet.json")
    assert isinstance(w, WalletSnapshot)
    assert w.total_equity == Decimal("10262.91335023") and w.total_perp_upl == Decimal("0")
    assert w.total_available_balance == Decimal("9556.6056555")
    assert [c.coin for c in w.coins] == ["BTC", "USDT"]
    assert w.coins[1].wallet_balance == Decimal("9647.75537647")
    assert w.ts == utc_ms(1700034722104)


# ---- WebSocket public topics and control frames -----------------------------------------------

def test_ws_kline() -> None:
    [k] = records("ws_kline.json")
    assert isinstance(k, Kline)
    assert k.symbol == "BTCUSDT" and k.interval == "5" and k.confirm is False
    assert (k.open, k.high, k.low, k.close) == (Decimal("16649.5"), Decimal("16677"), Decimal("16608"), Decimal("16677"))
    assert k.volume == Decimal("2.081") and k.start == utc_ms(1672324800000) and k.end == utc_ms(1672325099999)


def test_ws_ticker() -> None:
    [t] = records("ws_ticker_linear.json")
    assert isinstance(t, Ticker)
    assert t.symbol == "BTCUSDT" and t.last_price == Decimal("17216.00")
    assert t.volume_24h == Decimal("91705.276") and t.funding_rate == Decimal("-0.000212")
    assert t.ts == utc_ms(1673272861686)


def test_ticker_delta_without_prices_is_not_bad() -> None:
    [t] = classify_frame('{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":{"symbol":"BTCUSDT","bid1Price":"1.5"}}')
    assert isinstance(t, Ticker) and t.last_price is None and t.bid1_price == Decimal("1.5")


def test_ws_public_trade_topic_is_not_one_the_listener_takes_but_its_row_parses() -> None:
    frame = classify_frame(text("ws_public_trade.json"))
    assert isinstance(frame, BadFrame) and "unknown topic" in frame.reason
    trade = parse_public_trade(load("ws_public_trade.json")["data"][0])
    assert trade.side == "Buy" and trade.price == Decimal("27451.00") and trade.qty == Decimal("0.010")
    assert trade.ts == utc_ms(1709891679000) and trade.block_trade is False


def test_ws_auth_success_and_failure() -> None:
    [ok] = records("ws_auth_success.json")
    [ko] = records("ws_auth_failure.json")
    assert ok == AuthResult(success=True, ret_code=0, ret_msg="", conn_id="cejreaspqfm9se7usbrg-2xh")
    assert ko == AuthResult(success=False, ret_code=10003, ret_msg="Invalid apikey", conn_id="cejreaspqfm9se7usbrg-3ab")


def test_ws_subscription_ack_and_failure() -> None:
    [ok] = records("ws_subscription_ack.json")
    [ko] = records("ws_subscription_failure.json")
    assert ok == SubscribeResult(success=True, ret_msg="", req_id="sub-orderbook-1", conn_id="cejreaspqfm9se7usbrg-2xh")
    assert isinstance(ko, SubscribeResult) and not ko.success and "invalid.topic" in ko.ret_msg


def test_pongs_private_and_public() -> None:
    private = classify_frame('{"req_id":"p1","op":"pong","args":["1675418560633"],"conn_id":"c1"}')
    public = classify_frame('{"success":true,"ret_msg":"pong","conn_id":"c2","req_id":"","op":"ping"}')
    assert private == [Pong(req_id="p1", conn_id="c1")]
    assert public == [Pong(req_id=None, conn_id="c2")]


# ---- REST results -------------------------------------------------------------------------------

def test_rest_execution_list_gives_the_same_record_as_ws() -> None:
    page = parse_execution_page(load("http_get_executions.json")["result"])
    assert page.rejected == () and page.next_cursor == "132766%3A2%2C132766%3A2"
    first, second = page.executions
    assert first.category == "linear" and first.is_maker is True and first.fee_currency == "USDT"
    assert first.exec_qty == Decimal("0.100") and first.exec_time == utc_ms(1672282722429)
    assert second.leaves_qty == Decimal("0.500") and second.exec_fee == Decimal("0.9000")
    assert first.stop_order_type is None


def test_rest_and_ws_rows_of_one_execution_parse_equal() -> None:
    ws_row = load("ws_account_execution_funding.json")["data"][0]
    rest_row = dict(ws_row)
    rest_row.pop("category")
    assert parse_execution(rest_row, "linear") == parse_execution(ws_row)


def test_rest_execution_list_with_funding() -> None:
    page = parse_execution_page(load("http_get_executions_funding.json")["result"])
    trade, funding = page.executions
    assert trade.is_trade and not funding.is_trade and page.next_cursor == ""
    assert funding.close_reason() == "funding" and funding.exec_fee == Decimal("0.7506234")


def test_rest_execution_rows_stream_entry_shape() -> None:
    rows = load("http_get_executions.json")["result"]["list"] + [{"execId": "x"}]
    good, bad = parse_execution_rows(rows)
    assert [e.exec_id for e in good] == [r["execId"] for r in rows[:2]]
    assert len(bad) == 1 and "missing field" in bad[0].reason


def test_rest_orders_realtime_and_history() -> None:
    live, bad, cursor = parse_order_page(load("http_get_orders_realtime.json")["result"])
    assert bad == [] and cursor == "" and [o.order_id for o in live] == ["open-order-1", "open-order-2"]
    hist, bad, _ = parse_order_page(load("http_get_orders_history_with_duplicate.json")["result"])
    assert bad == [] and hist[0].avg_price is None and hist[1].order_status == "Cancelled"
    assert hist[0] == live[0]


def test_rest_positions_including_flat() -> None:
    positions, bad, _ = parse_position_page(load("http_get_positions.json")["result"])
    assert bad == []
    btc, eth, sol = positions
    assert btc.signed_size == Decimal("0.5") and btc.avg_price == Decimal("50000.00")
    assert eth.signed_size == Decimal("-5.0") and eth.liq_price == Decimal("3500.00")
    assert sol.is_flat and sol.liq_price is None and sol.side == ""


def test_rest_wallet_balance() -> None:
    [w], bad = parse_wallet_result(load("http_get_wallet_balance.json")["result"])
    assert bad == [] and w.account_type == "UNIFIED" and w.total_equity == Decimal("3.31216591")
    assert [c.coin for c in w.coins] == ["BTC", "USDT", "ETH"]
    assert w.coins[1].cum_realised_pnl == Decimal("50.25")


def test_rest_klines() -> None:
    [k], bad = parse_kline_result(load("http_get_klines_linear.json")["result"])
    assert bad == [] and k.symbol == "BTCUSDT" and k.start == utc_ms(1709891679000)
    assert k.close == Decimal("27455") and k.turnover == Decimal("3390000")


def test_rest_instruments() -> None:
    instruments, bad, cursor = parse_instrument_page(load("http_get_instruments_linear.json")["result"])
    assert bad == [] and cursor == ""
    assert instruments[0].tick_size == Decimal("0.5") and instruments[1].qty_step == Decimal("0.01")


# ---- attribution and bad input ----------------------------------------------------------------

@pytest.mark.parametrize(("exec_type", "stop", "link", "reason"), [
    ("Trade", "", "shortseller_001-entry-abc123", "entry"),
    ("Trade", "UNKNOWN", "shortseller_001-exit-a-b-c", "exit"),
    ("Trade", "", "shortseller_001-sl-1", "stop_loss"),
    ("Trade", "", "shortseller_001-tp-1", "take_profit"),
    ("Trade", "StopLoss", "shortseller_001-entry-1", "stop_loss"),
    ("Trade", "TakeProfit", "", "take_profit"),
    ("Trade", "TrailingStop", "", "trailing_stop"),
    ("Trade", "", "", "manual"),
    ("Trade", "", "my-order", "manual"),
    ("Trade", "", "lxalgo_001-entry-1", "manual"),
    ("BustTrade", "", "shortseller_001-entry-1", "liquidation"),
    ("AdlTrade", "", "", "adl"),
    ("Funding", "", "", "funding"),
    ("Settle", "", "", "settlement"),
    ("Delivery", "", "", "delivery"),
])
def test_close_reason(exec_type: str, stop: str, link: str, reason: str) -> None:
    assert derive_close_reason(exec_type, stop, link, frozenset({"shortseller_001"})) == reason


def test_order_link_id_shape() -> None:
    assert parse_order_link_id("momentum_001-entry-1700000000-7") == ("momentum_001", "entry", "1700000000-7")
    assert parse_order_link_id("Bad-entry-1") is None
    assert parse_order_link_id("momentum_001-entry-" + "x" * 30) is None


@pytest.mark.parametrize(("frame", "reason"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "frame is not an object"),
    ('{"hello": 1}', "frame has neither topic nor op"),
    ('{"topic": "nonsense", "data": []}', "unknown topic"),
    ('{"topic": "execution", "data": {}}', "data is not a list"),
    ('{"op": "auth"}', "without boolean success"),
    ('{"op": "teleport", "success": true}', "unknown op"),
])
def test_bad_frames(frame: str, reason: str) -> None:
    bad = classify_frame(frame)
    assert isinstance(bad, BadFrame) and reason in bad.reason and bad.raw == frame


def test_bad_row_inside_a_good_envelope_keeps_the_good_rows() -> None:
    good = load("ws_account_execution.json")
    row = good["data"][0]
    frame = dict(good, data=[dict(row, execPrice=1.5e400), row, dict(row, execQty="abc"), dict(row, side="Up"),
                             dict(row, execTime="99999999999999999"), dict(row, execId="a\u0000b")])
    parsed = classify_frame(json.dumps(frame))
    assert not isinstance(parsed, BadFrame)
    assert [type(r).__name__ for r in parsed] == ["BadFrame", "Execution", "BadFrame", "BadFrame", "BadFrame", "BadFrame"]


def test_numbers_never_pass_through_float() -> None:
    row = dict(load("ws_account_execution.json")["data"][0], execPrice="0.1000000000000000055511151231257827")
    assert parse_execution(row).exec_price == Decimal("0.1000000000000000055511151231257827")


def test_ms_round_trip() -> None:
    assert datetime_to_ms(ms_to_datetime(1746270400353)) == 1746270400353
