"""SMA and EMA: vectorised = incremental (1e-9) = TA-Lib on real candles; warm-up; edges."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.runtime.indicators import incremental, vectorised, warmup
from tests.unit.strategies.indicator_checks import (
    SERIES, assert_close, assert_no_lookahead, candles, run_incremental,
)

PERIODS = (2, 20, 240, 600)  # TA-Lib takes >= 2; period 1 is tested on its own below


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", PERIODS)
def test_sma_matches_incremental_and_talib(symbol: str, interval: str, period: int) -> None:
    close = candles(symbol, interval).close
    vec = vectorised.sma(close, period)
    inc = run_incremental(incremental.SMA(period), close)
    first = warmup.sma(period)
    assert first == period - 1 == incremental.SMA(period).warmup
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="SMA incremental")
    assert_close(vec, talib.SMA(close, period), first_valid=first, rtol=1e-9, what="SMA talib")


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", PERIODS)
def test_ema_sma_seeded_matches_incremental_and_talib(symbol: str, interval: str, period: int) -> None:
    close = candles(symbol, interval).close
    vec = vectorised.ema(close, period)
    inc = run_incremental(incremental.EMA(period), close)
    first = warmup.ema(period, "sma")
    assert first == period - 1 == incremental.EMA(period).warmup
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="EMA incremental")
    assert_close(vec, talib.EMA(close, period), first_valid=first, rtol=1e-9, what="EMA talib")


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", PERIODS)
def test_ema_first_seeded_matches_incremental_and_pandas(symbol: str, interval: str, period: int) -> None:
    close = candles(symbol, interval).close
    vec = vectorised.ema(close, period, seed="first")
    inc = run_incremental(incremental.EMA(period, seed="first"), close)
    assert warmup.ema(period, "first") == 0 == incremental.EMA(period, seed="first").warmup
    assert_close(inc, vec, first_valid=0, rtol=1e-9, what="EMA(first) incremental")
    ref = pd.Series(close).ewm(span=period, adjust=False).mean().to_numpy()
    assert_close(vec, ref, first_valid=0, rtol=1e-9, what="EMA(first) pandas")


def test_ema_seed_is_the_mean_of_the_first_values() -> None:
    x = np.array([1.0, 2.0, 6.0, 10.0, 4.0])
    got = vectorised.ema(x, 3)
    assert np.isnan(got[:2]).all()
    assert got[2] == 3.0
    assert got[3] == 3.0 + 0.5 * (10.0 - 3.0)
    assert got[4] == 6.5 + 0.5 * (4.0 - 6.5)
    first = vectorised.ema(x, 3, seed="first")
    assert first[0] == 1.0 and first[1] == 1.5 and first[2] == 3.75


def test_sma_by_hand() -> None:
    got = vectorised.sma([1.0, 2.0, 3.0, 4.0], 2)
    assert np.isnan(got[0]) and list(got[1:]) == [1.5, 2.5, 3.5]


def test_ema_dependence_on_the_start_decays_within_the_settle_bars() -> None:
    close = candles("BTCUSDT", "1h").close
    n = 240
    settle = warmup.ema_settle_bars(n, 1e-9)
    start = 1000
    from_first = vectorised.ema(close, n)
    from_later = vectorised.ema(close[start:], n)
    i = start + (n - 1) + settle
    rel = abs(from_first[i] - from_later[i - start]) / from_first[i]
    assert rel < 1e-9
    early = abs(from_first[start + n] - from_later[n]) / from_first[start + n]
    assert early > 1e-9  # the check above is not vacuous


@pytest.mark.parametrize("fn", [
    lambda x: vectorised.sma(x, 20),
    lambda x: vectorised.ema(x, 20),
    lambda x: vectorised.ema(x, 20, seed="first"),
])
def test_no_lookahead(fn) -> None:
    close = candles("BTCUSDT", "5m").close[:3000]
    assert_no_lookahead(fn, [close], cuts=[0, 5, 18, 19, 20, 100, 2500, 2998])


@pytest.mark.parametrize("make", [lambda: incremental.SMA(5), lambda: incremental.EMA(5),
                                  lambda: incremental.EMA(5, seed="first")])
def test_constant_series_gives_the_constant(make) -> None:
    ind = make()
    vals = run_incremental(ind, [7.25] * 50)
    assert (vals[ind.warmup:] == 7.25).all()
    assert (vectorised.sma([7.25] * 50, 5)[4:] == 7.25).all()
    assert (vectorised.ema([7.25] * 50, 5)[4:] == 7.25).all()


def test_period_one_is_the_input() -> None:
    x = candles("BTCUSDT", "5m").close[:500]
    np.testing.assert_array_equal(vectorised.sma(x, 1), x)
    np.testing.assert_array_equal(vectorised.ema(x, 1), x)
    np.testing.assert_array_equal(run_incremental(incremental.EMA(1), x), x)
    np.testing.assert_array_equal(run_incremental(incremental.SMA(1), x), x)


def test_short_input_is_all_nan() -> None:
    assert np.isnan(vectorised.sma([1.0, 2.0], 3)).all()
    assert np.isnan(vectorised.ema([1.0, 2.0], 3)).all()
    assert vectorised.sma([], 3).size == 0
    assert vectorised.ema([], 3, seed="first").size == 0
    ind = incremental.EMA(3)
    assert math.isnan(ind.update(1.0)) and math.isnan(ind.update(2.0)) and not ind.ready
    assert ind.update(3.0) == 2.0 and ind.ready


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"values\[2\] is"):
        vectorised.sma([1.0, 2.0, bad, 4.0], 2)
    with pytest.raises(ValueError, match="finite"):
        vectorised.ema([1.0, 2.0, bad], 2)
    ind = incremental.EMA(2)
    ind.update(1.0)
    ind.update(2.0)
    before = ind.value
    with pytest.raises(ValueError, match="finite"):
        ind.update(bad)
    assert ind.value == before and ind.bars == 2  # the bad bar changed nothing
    assert ind.update(3.0) == (3.0 - 1.5) * (2 / 3) + 1.5


@pytest.mark.parametrize("period", [0, -1, 2.5, True, "3"])
def test_bad_period_is_rejected(period) -> None:
    with pytest.raises(ValueError, match="period"):
        vectorised.sma([1.0], period)
    with pytest.raises(ValueError, match="period"):
        incremental.EMA(period)


def test_bad_seed_and_shape_are_rejected() -> None:
    with pytest.raises(ValueError, match="seed"):
        vectorised.ema([1.0, 2.0], 2, seed="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one-dimensional"):
        vectorised.sma([[1.0, 2.0]], 1)


def test_sma_stays_exact_when_a_large_value_leaves_the_window() -> None:
    """A plain running sum keeps the rounding of a large value after it leaves (4.7e-8 relative)."""
    x = [1e6] + [1e-3] * 6
    for period in (2, 3):
        inc = run_incremental(incremental.SMA(period), x)
        np.testing.assert_allclose(inc[period:], 1e-3, rtol=1e-15, atol=0)
        assert (vectorised.sma(x, period)[period:] == 1e-3).all()
