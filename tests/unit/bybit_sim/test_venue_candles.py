from __future__ import annotations

from decimal import Decimal

from services.bybit_sim.candles import CANDLE_MS, PricePath, load_candles, parse_candles
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import interval_next, interval_start

CSV = """timestamp,open,high,low,close,volume
2025-04-03 17:05:00+00:00,100.0,110.0,95.0,105.0,10.0
2025-04-03 17:10:00+00:00,105.0,106.0,90.0,92.5,20.0
2025-04-03 17:15:00+00:00,92.5,93.0,92.0,92.0,1.0
"""


def _path() -> PricePath:
    inst = INSTRUMENTS["ETHUSDT"]
    return PricePath(inst, parse_candles(CSV, inst.tick_size))


def test_parse_drops_the_unfinished_last_row_and_uses_ticks() -> None:
    candles = parse_candles(CSV, Decimal("0.01"))
    assert len(candles) == 2
    assert (candles[0].open, candles[0].high, candles[0].low, candles[0].close) == (10000, 11000, 9500, 10500)
    assert candles[0].start_ms == 1743699900000


def test_path_visits_open_extremes_close_in_order() -> None:
    p = _path()
    t0 = p.start_ms
    up = [p.price_at(t0 + k * CANDLE_MS // 3) for k in range(3)]
    assert up == [Decimal("100.00"), Decimal("95.00"), Decimal("110.00")]  # up candle: low first
    assert p.price_at(t0 + CANDLE_MS - 1) < Decimal("105.01")
    assert p.price_at(t0 + CANDLE_MS + CANDLE_MS // 3) == Decimal("106.00")  # down candle: high first


def test_full_candle_aggregates_to_recorded_ohlc_and_partial_stays_inside() -> None:
    p = _path()
    t0 = p.start_ms
    full = p.ohlcv(t0, t0 + CANDLE_MS - 1)
    assert (full.high, full.low, full.volume) == (Decimal("110.00"), Decimal("95.00"), Decimal("10.00"))
    half = p.ohlcv(t0, t0 + CANDLE_MS // 2)
    assert half.low == Decimal("95.00") and Decimal("95") < half.high < Decimal("110")
    both = p.ohlcv(t0, t0 + 2 * CANDLE_MS - 1)
    assert (both.open, both.high, both.low) == (Decimal("100.00"), Decimal("110.00"), Decimal("90.00"))


def test_path_wraps_past_the_end_of_the_data() -> None:
    p = _path()
    assert p.price_at(p.start_ms + p.span_ms + 7) == p.price_at(p.start_ms + 7)


def test_shipped_data_loads_for_every_symbol_on_tick() -> None:
    for inst in INSTRUMENTS.values():
        candles = load_candles(inst)
        assert len(candles) > 20_000
        assert all(c.low <= min(c.open, c.close) and max(c.open, c.close) <= c.high for c in candles)


def test_interval_alignment() -> None:
    t = 1_751_475_600_000 + 123_456  # 2025-07-02 17:00 UTC + a bit
    assert interval_start("15", t) == 1_751_475_600_000
    assert interval_start("D", t) == 1_751_414_400_000
    monday = interval_start("W", t)
    assert monday == 1_751_241_600_000  # 2025-06-30, a Monday
    assert interval_next("W", monday) == monday + 7 * 86_400_000
    assert interval_start("M", t) == 1_751_328_000_000  # 2025-07-01
    assert interval_next("M", 1_751_328_000_000) == 1_754_006_400_000  # 2025-08-01
