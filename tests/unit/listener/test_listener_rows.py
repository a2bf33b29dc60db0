"""Pure parts of the listener: row shaping, the position cross-check, catch-up windows, backoff, throttling."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shared.bybit.records import Execution, PositionSnapshot
from shared.bybit.fields import ms_to_datetime
from shared.bybit.frames import classify_frame
from services.websocket_listener.catchup import WINDOW_MS, PassRequests, windows
from services.websocket_listener.dispatch import WalletThrottle
from services.websocket_listener.rows import (
    FILL_COLUMNS, MESSAGE_COLUMNS, ListenerFill, PositionCrossCheck, message_from_row, order_progress, position_value,
)
from services.websocket_listener.streams import backoff_delay, public_topics

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"


def fixture_record(name: str) -> object:
    [record] = classify_frame((FIXTURES / name).read_text())
    return record


EXEC = fixture_record("ws_account_execution.json")
POS = fixture_record("ws_account_position.json")
ORDER = fixture_record("ws_account_order_filled.json")


def execution(exec_id: str, side: str, qty: str, seq: int, exec_type: str = "Trade") -> Execution:
    assert isinstance(EXEC, Execution)
    return replace(EXEC, exec_id=exec_id, side=side, exec_qty=Decimal(qty), seq=seq, exec_type=exec_type,
                   symbol="ETHUSDT")


def position(side: str, size: str, seq: int) -> PositionSnapshot:
    assert isinstance(POS, PositionSnapshot)
    return replace(POS, side=side, size=Decimal(size), seq=seq)


def test_fill_row_matches_columns_and_keeps_decimals() -> None:
    fill = ListenerFill("shortseller_001", EXEC, "ws")  # type: ignore[arg-type]
    row = fill.row()
    assert len(row) == len(FILL_COLUMNS)
    values = dict(zip(FILL_COLUMNS, row))
    assert values["exec_price"] == Decimal("95900.1") and values["commission"] == Decimal("26.3725275")
    assert values["client_order_id"] == "test-order-link-001" and values["close_reason"] == "manual"
    assert values["source"] == "ws" and values["exec_time"].tzinfo is not None


def test_fill_message_is_json_with_decimal_strings() -> None:
    message = json.loads(ListenerFill("shortseller_001", EXEC, "sync").message())  # type: ignore[arg-type]
    assert message["exec_price"] == "95900.1" and message["exec_qty"] == "0.5"
    assert message["exec_time"] == "2025-05-03T11:06:40.353000Z" and message["is_trade"] is True
    assert message["bot_id"] == "shortseller_001" and message["source"] == "sync"


def test_position_value_signed_and_flat() -> None:
    now = ms_to_datetime(0)
    value = json.loads(position_value(position("Sell", "0.5", 1), now) or "")
    assert value["size"] == "-0.5" and value["side"] == "Sell" and value["avg_price"] == "3641.075"
    assert set(value) >= {"size", "side", "avg_price", "unrealized_pnl", "mark_price", "liq_price", "updated_at"}
    assert position_value(position("", "0", 2), now) is None


def test_cross_check_agrees_when_fills_explain_the_snapshot() -> None:
    check = PositionCrossCheck()
    assert check.check("b", position("Buy", "1", 10)) is None  # first snapshot anchors
    for f in (execution("e1", "Buy", "0.5", 11), execution("e2", "Sell", "2", 12),
              execution("f1", "Buy", "9", 13, exec_type="Funding")):
        check.add_fill(ListenerFill("b", f, "ws"))
    assert check.check("b", position("Sell", "0.5", 12)) is None


def test_cross_check_reports_a_missing_fill() -> None:
    check = PositionCrossCheck()
    check.check("b", position("Buy", "1", 10))
    check.add_fill(ListenerFill("b", execution("e1", "Buy", "0.5", 11), "ws"))
    assert check.check("b", position("Buy", "2", 12)) == Decimal("1.5")
    # Re-anchored on the exchange's figure: the next consistent snapshot is fine again.
    assert check.check("b", position("Buy", "2", 13)) is None


def test_cross_check_ignores_late_snapshots_and_late_fills() -> None:
    check = PositionCrossCheck()
    check.check("b", position("Buy", "1", 10))
    check.add_fill(ListenerFill("b", execution("e0", "Buy", "5", 9), "ws"))  # older than the anchor: already in it
    assert check.check("b", position("Buy", "7", 8)) is None
    assert check.check("b", position("Buy", "1", 10)) is None


def test_order_progress_orders_the_lifecycle() -> None:
    assert order_progress(replace(ORDER, order_status="New")) < order_progress(ORDER)  # type: ignore[type-var]
    assert order_progress(replace(ORDER, order_status="PartiallyFilled")) < order_progress(ORDER)  # type: ignore[type-var]


def test_windows_cover_the_range_without_gaps_or_overlap() -> None:
    start, end = 1_700_000_000_000, 1_700_000_000_000 + 20 * 86_400_000 + 5
    ws = windows(start, end)
    assert ws[0][0] == start and ws[-1][1] == end and len(ws) == 3
    assert all(hi - lo <= WINDOW_MS for lo, hi in ws)
    assert all(ws[i][1] + 1 == ws[i + 1][0] for i in range(len(ws) - 1))
    assert windows(5, 5) == [(5, 5)]


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, 0.5, 30.0, rng) for a in range(12)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert delays[0] <= 0.5 and max(delays[8:]) > 10
    assert len({round(backoff_delay(10, 0.5, 30.0, rng), 6) for _ in range(5)}) > 1


def test_wallet_throttle_keeps_the_latest_for_later() -> None:
    now = [0.0]
    throttle = WalletThrottle(60.0, lambda: now[0])
    wallet = fixture_record("ws_account_wallet.json")
    t0 = ms_to_datetime(0)
    assert throttle.offer("b", wallet, t0) is True  # type: ignore[arg-type]
    assert throttle.offer("b", wallet, t0) is False  # type: ignore[arg-type]
    assert throttle.due() == []
    now[0] = 61.0
    assert [d[0] for d in throttle.due()] == ["b"] and throttle.due() == []


def test_public_topics() -> None:
    assert public_topics(("BTCUSDT",), ("5",)) == ("kline.5.BTCUSDT", "tickers.BTCUSDT")
    assert public_topics(("BTCUSDT", "ETHUSDT"), ("5", "D")) == (
        "kline.5.BTCUSDT", "kline.D.BTCUSDT", "tickers.BTCUSDT", "kline.5.ETHUSDT", "kline.D.ETHUSDT", "tickers.ETHUSDT")


def test_catchup_requests_coalesce_to_the_earliest_gap_and_remember_a_from_db_pass() -> None:
    requests = PassRequests()
    t1, t2 = ms_to_datetime(2_000), ms_to_datetime(1_000)
    requests.add(t1)
    requests.add(t2)
    requests.add(t1)
    taken = requests.take()
    assert (taken.from_db, taken.since) == (False, t2)
    requests.add(None)
    assert requests.take() == PassRequests(True, None) and requests.take() == PassRequests(False, None)


_odd_text = st.text(min_size=1, max_size=20)
_odd_decimal = st.decimals(allow_nan=False, allow_infinity=False, places=None)


@given(bot_id=_odd_text, exec_id=_odd_text, fee_currency=st.none() | _odd_text, order_link_id=st.text(max_size=20),
       stop_order_type=st.none() | _odd_text, price=_odd_decimal, fee_rate=st.none() | _odd_decimal,
       is_maker=st.none() | st.booleans(), seq=st.none() | st.integers(-2**63, 2**63 - 1),
       exec_type=st.sampled_from(["Trade", "Funding", "BustTrade"]))
def test_fill_message_text_equals_the_json_encoding_of_its_fields(
        bot_id: str, exec_id: str, fee_currency: str | None, order_link_id: str, stop_order_type: str | None,
        price: Decimal, fee_rate: Decimal | None, is_maker: bool | None, seq: int | None, exec_type: str) -> None:
    execution = replace(EXEC, exec_id=exec_id, fee_currency=fee_currency, order_link_id=order_link_id,  # type: ignore[type-var]
                        stop_order_type=stop_order_type, exec_price=price, fee_rate=fee_rate, is_maker=is_maker,
                        seq=seq, exec_type=exec_type)
    fill = ListenerFill(bot_id, execution, "ws")
    assert fill.message() == json.dumps(fill.message_fields(), separators=(",", ":"))
    assert json.loads(fill.message())["exec_price"] == str(price)


@given(fee_rate=st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=6)),
       maker=st.one_of(st.none(), st.booleans()), link=st.sampled_from(["", "momentum_001-entry-x\"1", "ü"]),
       seq=st.one_of(st.none(), st.integers(0, 2**62)), exec_type=st.sampled_from(["Trade", "Funding"]))
def test_a_stored_fill_is_announced_again_with_its_first_message(fee_rate: Decimal | None, maker: bool | None,
                                                                 link: str, seq: int | None, exec_type: str) -> None:
    assert isinstance(EXEC, Execution)
    fill = ListenerFill("momentum_001", replace(EXEC, fee_rate=fee_rate, is_maker=maker, order_link_id=link, seq=seq,
                                        exec_type=exec_type), "sync")
    row = dict(zip(FILL_COLUMNS, fill.row()))  # what psycopg returns for the stored row
    assert set(MESSAGE_COLUMNS) <= set(row)
    assert message_from_row(row) == fill.message()
