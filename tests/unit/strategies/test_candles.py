"""Candle loading, validation, selection and resampling on the shipped real candles and hand-made rows."""
from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from strategies.runtime.candles import (
    CandleError, load_csv, load_shipped, parse_csv, shipped_files, to_ms,
)

HEADER = "timestamp,open,high,low,close,volume\n"


def rows(*lines: str) -> str:
    return HEADER + "\n".join(lines) + "\n"


GOOD = rows(
    "2025-04-03 17:05:00+00:00,100.0,101.0,99.0,100.5,10",
    "2025-04-03 17:10:00+00:00,100.5,102.0,100.0,101.0,5",
    "2025-04-03 17:15:00+00:00,101.0,101.5,100.5,101.2,0",
)


def test_parse_good_rows_and_infer_interval() -> None:
    c = parse_csv(GOOD, symbol="BTCUSDT")
    assert c.interval == "5m" and len(c) == 3
    assert c.start_ms[0] == to_ms("2025-04-03T17:05:00")
    assert list(c.close) == [100.5, 101.0, 101.2]
    assert c.close_ms[0] == c.start_ms[1]


def test_naive_timestamps_are_utc() -> None:
    c = parse_csv(rows("2021-01-01 00:00:00,1,2,0.5,1.5,1", "2021-01-01 01:00:00,1.5,2,1,1.8,1"), symbol="X")
    assert c.interval == "1h" and c.start_ms[0] == 1609459200000


@pytest.mark.parametrize("bad_row, why", [
    ("2025-04-03 17:10:00+00:00,100.5,100.9,100.0,101.0,5", "high below max(open, close)"),
    ("2025-04-03 17:10:00+00:00,100.5,102.0,100.6,101.0,5", "low above min(open, close)"),
    ("2025-04-03 17:10:00+00:00,0,102.0,0,101.0,5", "non-positive price"),
    ("2025-04-03 17:10:00+00:00,-1,102.0,-2,101.0,5", "non-positive price"),
    ("2025-04-03 17:10:00+00:00,100.5,102.0,100.0,101.0,-5", "negative or missing volume"),
    ("2025-04-03 17:05:00+00:00,100.5,102.0,100.0,101.0,5", "not after the previous one"),
    ("2025-04-03 17:11:00+00:00,100.5,102.0,100.0,101.0,5", "not aligned to 5m"),
])
def test_malformed_candle_is_rejected(bad_row: str, why: str) -> None:
    text = rows("2025-04-03 17:05:00+00:00,100.0,101.0,99.0,100.5,10", bad_row,
                "2025-04-03 17:20:00+00:00,101.0,101.5,100.5,101.2,1")
    with pytest.raises(CandleError, match=re.escape(why)):
        parse_csv(text, symbol="BTCUSDT", interval="5m", source="t.csv")


def test_error_names_the_row_and_file() -> None:
    text = rows("2025-04-03 17:05:00+00:00,100.0,101.0,99.0,100.5,10",
                "2025-04-03 17:10:00+00:00,100.5,100.9,100.0,101.0,5")
    with pytest.raises(CandleError) as err:
        parse_csv(text, symbol="BTCUSDT", interval="5m", source="my.csv")
    assert str(err.value).startswith("my.csv: candle 1 (2025-04-03T17:10:00+00:00)")


def test_text_in_a_price_and_missing_columns_are_rejected() -> None:
    with pytest.raises(CandleError, match="row 3: close 'abc' is not a number"):
        parse_csv(rows("2025-04-03 17:05:00+00:00,1,2,0.5,1,1", "2025-04-03 17:10:00+00:00,1,2,0.5,abc,1"),
                  symbol="X")
    with pytest.raises(CandleError, match="missing column"):
        parse_csv("timestamp,open,high,low,close\n2025-04-03 17:05:00,1,2,0.5,1\n", symbol="X")
    with pytest.raises(CandleError, match="bad timestamp"):
        parse_csv(rows("yesterday,1,2,0.5,1,1", "2025-04-03 17:10:00,1,2,0.5,1,1"), symbol="X")


def test_load_csv_plain_and_gzip(tmp_path) -> None:
    plain = tmp_path / "bybit_ETHUSDT_5m_x.csv"
    plain.write_text(GOOD)
    packed = tmp_path / "bybit_ETHUSDT_5m_x.csv.gz"
    packed.write_bytes(gzip.compress(GOOD.encode()))
    a, b = load_csv(plain), load_csv(packed)
    assert a.symbol == b.symbol == "ETHUSDT"
    assert np.array_equal(a.close, b.close)
    with pytest.raises(CandleError, match="cannot read"):
        load_csv(tmp_path / "nope.csv")


def test_shipped_files_cover_the_product() -> None:
    files = shipped_files()
    for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        for interval in ("5m", "15m", "1h"):
            assert (sym, interval) in files


def test_shipped_5m_drops_the_unfinished_last_row() -> None:
    c = load_shipped("BTCUSDT", "5m")
    assert len(c) == 25_919
    assert c.start_ms[0] == to_ms("2025-04-03T17:05:00")
    assert c.start_ms[-1] == to_ms("2025-07-02T16:55:00")


def test_select_is_half_open() -> None:
    c = load_shipped("BTCUSDT", "5m")
    s = c.select(to_ms("2025-05-01"), to_ms("2025-05-02"))
    assert len(s) == 288
    assert s.start_ms[0] == to_ms("2025-05-01") and s.start_ms[-1] == to_ms("2025-05-01T23:55")


def test_resample_5m_to_4h_equals_1h_to_4h_on_real_candles() -> None:
    five = load_shipped("ETHUSDT", "5m").resample("4h")
    fifteen = load_shipped("ETHUSDT", "15m").resample("4h")
    n = min(len(five), len(fifteen))
    assert n > 500
    assert five.start_ms[0] == to_ms("2025-04-03T20:00")  # the partial 16:00 bucket is dropped
    assert np.array_equal(five.start_ms[:n], fifteen.start_ms[:n])
    for col in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(five, col)[:n], getattr(fifteen, col)[:n]), col
    assert (five.start_ms % 14_400_000 == 0).all()


def test_resample_hand_made() -> None:
    lines = []
    prices = [(10, 12, 9, 11), (11, 15, 10, 14), (14, 14, 8, 9), (9, 10, 9, 10)]
    for hour, (o, h, lo, c) in enumerate(prices):
        lines.append(f"2024-01-01 {hour:02d}:00:00,{o},{h},{lo},{c},{hour + 1}")
    day = parse_csv(rows(*lines), symbol="X").resample("4h")
    assert len(day) == 1
    assert (day.open[0], day.high[0], day.low[0], day.close[0], day.volume[0]) == (10, 15, 8, 10, 10)
    assert len(parse_csv(rows(*lines[:3]), symbol="X").resample("4h")) == 0
    with pytest.raises(CandleError, match="cannot resample"):
        parse_csv(rows(*lines), symbol="X").resample("5m")


def test_daily_from_1h_on_utc_days() -> None:
    d = load_shipped("BTCUSDT", "1d")
    assert d.interval == "1d" and (d.start_ms % 86_400_000 == 0).all()
    assert d.start_ms[0] == to_ms("2021-01-01")
    hourly = load_shipped("BTCUSDT", "1h").select(to_ms("2021-01-01"), to_ms("2021-01-02"))
    assert d.high[0] == hourly.high.max() and d.close[0] == hourly.close[-1]
