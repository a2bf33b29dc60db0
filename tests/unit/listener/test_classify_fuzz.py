"""Hypothesis: arbitrary frames never crash the classifier, and every malformed row becomes a BadFrame."""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bybit.records import BadFrame, Execution
from shared.bybit.frames import classify_frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"
WS_FIXTURES = sorted(p.read_text() for p in FIXTURES.glob("ws_*.json"))
EXECUTION = json.loads((FIXTURES / "ws_account_execution.json").read_text())

KEYS = ["topic", "op", "data", "success", "ret_msg", "retCode", "conn_id", "req_id", "creationTime", "ts",
        "symbol", "execId", "orderId", "orderLinkId", "side", "execType", "execPrice", "execQty", "execValue",
        "execFee", "execTime", "seq", "isMaker", "size", "entryPrice", "orderStatus", "qty", "cumExecQty",
        "createdTime", "updatedTime", "coin", "lastPrice", "start", "end", "interval", "open", "close",
        "high", "low", "volume", "turnover", "category"]
TOPICS = ["execution", "order", "position", "wallet", "execution.fast", "kline.5.BTCUSDT", "tickers.BTCUSDT",
          "publicTrade.BTCUSDT", "execution.linear", "kline.5", "kline", "tickers", ""]
OPS = ["auth", "subscribe", "unsubscribe", "ping", "pong", "other"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "0", "1.5", "-3", "NaN", "Infinity", "1e999", "1E-99", "0x10", " 7 ", "\x00", "\ud800",
                     "Buy", "Sell", "Trade", "Funding", "1700000000000", "99999999999999999999"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=8),
    ),
    max_leaves=30,
)
envelopes = st.fixed_dictionaries(
    {}, optional={"topic": st.sampled_from(TOPICS), "op": st.sampled_from(OPS), "data": json_values,
                  "success": scalars, "ret_msg": scalars, "retCode": scalars, "creationTime": scalars,
                  "ts": scalars},
)


def _dump(value: Any) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    json_values.map(_dump),
    envelopes.map(_dump),
    st.sampled_from(WS_FIXTURES).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
)


def assert_storable(record: Any) -> None:
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, Decimal):
            assert value.is_finite()
        elif isinstance(value, datetime):
            assert value.tzinfo is UTC
        elif isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")
        elif isinstance(value, float):
            raise AssertionError(f"{field.name} is a float")
        elif isinstance(value, tuple):
            for item in value:
                assert_storable(item)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_any_frame_classifies_without_raising(frame: str | bytes) -> None:
    result = classify_frame(frame)
    if isinstance(result, BadFrame):
        assert result.reason and isinstance(result.raw, str)
        return
    assert isinstance(result, list)
    for item in result:
        if isinstance(item, BadFrame):
            assert item.reason and item.raw
        else:
            assert_storable(item)


REQUIRED = ["symbol", "execId", "orderId", "side", "execType", "execPrice", "execQty", "execValue", "execFee",
            "execTime"]
wrong_values = st.one_of(
    st.none(), st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["abc", "NaN", "Infinity", "1e999", "--1", "Up", "\x00"]),
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(REQUIRED), value=wrong_values, drop=st.booleans(), position=st.integers(0, 2))
def test_every_malformed_execution_row_is_a_bad_frame(field: str, value: Any, drop: bool, position: int) -> None:
    row = dict(EXECUTION["data"][0])
    if drop:
        del row[field]
    else:
        row[field] = value
    parsed_ok = {"execId", "orderId", "symbol", "execType"}
    if not drop and field in parsed_ok and isinstance(value, str) and value not in ("", "\x00"):
        return  # any non-empty string is a valid id, symbol or execType
    good = EXECUTION["data"][0]
    rows = [good, good]
    rows.insert(position, row)
    result = classify_frame(json.dumps(dict(EXECUTION, data=rows)))
    assert isinstance(result, list)
    bad = [r for r in result if isinstance(r, BadFrame)]
    assert len(bad) == 1 and json.loads(bad[0].raw) == json.loads(json.dumps(row))
    assert [type(r) for r in result].index(BadFrame) == position
    assert sum(isinstance(r, Execution) for r in result) == 2
