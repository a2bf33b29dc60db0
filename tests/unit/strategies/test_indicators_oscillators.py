"""Rolling std, Bollinger, percentile rank, RSI, ATR, ADX, percent change: vectorised =
incremental (1e-9 relative) on every bar of real candles after the warm-up, and = a reference
(TA-Lib, exact fractions, pandas or a brute-force loop); no look-ahead; edge cases."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.runtime.indicators import incremental, vectorised, warmup
from tests.unit.strategies.indicator_checks import (
    SERIES, assert_close, assert_no_lookahead, candles, run_incremental,
)


def assert_std_matches_talib(ours: np.ndarray, talib_std: np.ndarray, x: np.ndarray,
                             first_valid: int, what: str) -> None:
    """TA-Lib's STDDEV/BBANDS compute the variance as E[x^2] - E[x]^2 from running sums of
    squares, so their variance is off by a few ulps of x^2 (2e-5 seen on BTC, x^2 ~ 1e10), and
    where the true deviation is 0 theirs is sqrt of that (0.004). Ours is two-pass and is held to
    exact rational arithmetic at 1e-12 (below); against TA-Lib the variances must agree to 1e-9
    relative plus 1e-13 x the largest x^2."""
    assert_close(ours**2, talib_std**2, first_valid=first_valid, rtol=1e-9,
                 atol=1e-13 * float(np.max(x**2)), what=what)


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("period", [2, 20, 144])
def test_rolling_std(symbol: str, interval: str, ddof: int, period: int) -> None:
    close = candles(symbol, interval).close
    vec = vectorised.rolling_std(close, period, ddof=ddof)
    inc = run_incremental(incremental.RollingStd(period, ddof), close)
    first = warmup.rolling_std(period, ddof)
    assert first == period - 1
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="std incremental")
    population = talib.STDDEV(close, period, 1.0)
    ref = population * math.sqrt(period / (period - 1)) if ddof else population
    assert_std_matches_talib(vec, ref, close, first, what="std talib")


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("period", [2, 20])
def test_rolling_std_against_exact_arithmetic(ddof: int, period: int) -> None:
    close = candles("BTCUSDT", "5m").close
    vec = vectorised.rolling_std(close, period, ddof=ddof)
    exact = statistics.stdev if ddof else statistics.pstdev  # exact fractions, rounded once
    for i in range(period - 1, close.size, 97):
        ref = exact(close[i - period + 1 : i + 1].tolist())
        assert abs(vec[i] - ref) <= 1e-12 * ref, i


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("ddof", [0, 1])
def test_bollinger(symbol: str, interval: str, ddof: int) -> None:
    close = candles(symbol, interval).close
    period, k = 20, 2.0
    bands = vectorised.bollinger(close, period, k, ddof=ddof)
    ind = incremental.Bollinger(period, k, ddof)
    first = warmup.bollinger(period, ddof)
    assert first == ind.warmup == period - 1
    rows = []
    for x in close:
        ind.update(x)
        rows.append((ind.value, ind.upper, ind.lower, ind.width))
    inc = np.array(rows)
    for col, name in enumerate(("middle", "upper", "lower", "width")):
        assert_close(inc[:, col], getattr(bands, name), first_valid=first, rtol=1e-9, what=name)
    # TA-Lib's bands use the population deviation; scale k for the sample one.
    k_ta = k * math.sqrt(period / (period - 1)) if ddof else k
    upper, middle, lower = talib.BBANDS(close, period, k_ta, k_ta, 0)
    assert_close(bands.middle, middle, first_valid=first, rtol=1e-9, what="talib middle")
    ours_std = vectorised.rolling_std(close, period, ddof=ddof)
    np.testing.assert_array_equal(bands.upper, bands.middle + k * ours_std)
    np.testing.assert_array_equal(bands.lower, bands.middle - k * ours_std)
    np.testing.assert_array_equal(bands.width, (bands.upper - bands.lower) / bands.middle)
    # upper - middle = k_ta x population std = k x sample std (ddof 1) or k x population std.
    assert_std_matches_talib(k * ours_std, upper - middle, k * close, first, what="talib upper band")
    assert_std_matches_talib(k * ours_std, middle - lower, k * close, first, what="talib lower band")


def test_bollinger_width_by_hand() -> None:
    bands = vectorised.bollinger([1.0, 3.0], 2, 2.0, ddof=1)
    std = math.sqrt(2.0)
    assert bands.middle[1] == 2.0
    assert bands.upper[1] == 2.0 + 2 * std and bands.lower[1] == 2.0 - 2 * std
    assert bands.width[1] == pytest.approx(4 * std / 2.0, rel=1e-15)


def _brute_rank(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(x.size, np.nan)
    for i in range(w - 1, x.size):
        win = x[i - w + 1 : i + 1]
        out[i] = sum(1 for v in win if v < x[i]) / (w - 1)
    return out


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("window", [2, 90])
def test_percentile_rank(symbol: str, interval: str, window: int) -> None:
    c = candles(symbol, interval)
    width = vectorised.bollinger(c.close, 20, 2.0, ddof=1).width[19:]  # Momentum's input
    for x in (c.close, width, np.round(c.close, -2)):  # the rounded one has many ties
        vec = vectorised.percentile_rank(x, window)
        inc = run_incremental(incremental.PercentileRank(window), x)
        first = warmup.percentile_rank(window)
        assert first == window - 1
        assert_close(inc, vec, first_valid=first, rtol=0.0, what="rank incremental")
        pandas_rank = pd.Series(x).rolling(window).rank(method="min").to_numpy()
        assert_close(vec, (pandas_rank - 1) / (window - 1), first_valid=first, rtol=1e-12,
                     what="rank pandas")
    short = c.close[:2000]
    assert_close(vectorised.percentile_rank(short, window), _brute_rank(short, window),
                 first_valid=window - 1, rtol=0.0, what="rank brute force")


def test_percentile_rank_by_hand() -> None:
    got = vectorised.percentile_rank([5.0, 1.0, 5.0, 9.0, 2.0], 3)
    assert np.isnan(got[:2]).all()
    assert list(got[2:]) == [0.5, 1.0, 0.0]  # 5 over (5,1,5): one below; 9 highest; 2 lowest


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", [2, 14, 84])
def test_rsi(symbol: str, interval: str, period: int) -> None:
    close = candles(symbol, interval).close
    vec = vectorised.rsi(close, period)
    inc = run_incremental(incremental.RSI(period), close)
    first = warmup.rsi(period)
    assert first == period
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="RSI incremental")
    assert_close(vec, talib.RSI(close, period), first_valid=first, rtol=1e-9, what="RSI talib")


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", [1, 2, 14])
def test_atr(symbol: str, interval: str, period: int) -> None:
    c = candles(symbol, interval)
    vec = vectorised.atr(c.high, c.low, c.close, period)
    inc = run_incremental(incremental.ATR(period), c.high, c.low, c.close)
    first = warmup.atr(period)
    assert first == period
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="ATR incremental")
    ref = talib.ATR(c.high, c.low, c.close, period)
    assert_close(vec, ref, first_valid=first, rtol=1e-9, what="ATR talib")
    tr = talib.TRANGE(c.high, c.low, c.close)
    assert_close(vectorised.true_range(c.high, c.low, c.close), tr, first_valid=1, rtol=0.0,
                 what="TRANGE")


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx(symbol: str, interval: str, period: int) -> None:
    c = candles(symbol, interval)
    vec = vectorised.adx(c.high, c.low, c.close, period)
    ind = incremental.ADX(period)
    inc = run_incremental(ind, c.high, c.low, c.close)
    first = warmup.adx(period)
    assert first == 2 * period - 1
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="ADX incremental")
    ref = talib.ADX(c.high, c.low, c.close, period)
    assert_close(vec, ref, first_valid=first, rtol=1e-9, what="ADX talib")
    assert ind.plus_di == pytest.approx(talib.PLUS_DI(c.high, c.low, c.close, period)[-1], rel=1e-9)
    assert ind.minus_di == pytest.approx(talib.MINUS_DI(c.high, c.low, c.close, period)[-1], rel=1e-9)


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", [1, 12, 144])
def test_pct_change(symbol: str, interval: str, period: int) -> None:
    c = candles(symbol, interval)
    for x in (c.close, c.volume[c.volume > 0]):
        vec = vectorised.pct_change(x, period)
        inc = run_incremental(incremental.PctChange(period), x)
        first = warmup.pct_change(period)
        assert first == period
        assert_close(inc, vec, first_valid=first, rtol=1e-9, what="pct incremental")
        assert_close(vec, talib.ROC(x, period), first_valid=first, rtol=1e-9, atol=1e-12,
                     what="pct talib")


def test_pct_change_from_zero_is_nan() -> None:
    got = vectorised.pct_change([0.0, 5.0, 10.0], 1)
    assert np.isnan(got[:2]).all() and got[2] == 100.0
    ind = incremental.PctChange(1)
    ind.update(0.0)
    assert math.isnan(ind.update(5.0)) and ind.ready
    assert ind.update(10.0) == 100.0


HLC_FNS = {
    "rolling_std": lambda h, lo, c: vectorised.rolling_std(c, 20, ddof=1),
    "bollinger_width": lambda h, lo, c: vectorised.bollinger(c, 20, 2.0, ddof=1).width,
    "percentile_rank": lambda h, lo, c: vectorised.percentile_rank(c, 90),
    "rsi": lambda h, lo, c: vectorised.rsi(c, 14),
    "atr": lambda h, lo, c: vectorised.atr(h, lo, c, 14),
    "adx": lambda h, lo, c: vectorised.adx(h, lo, c, 14),
    "pct_change": lambda h, lo, c: vectorised.pct_change(c, 12),
    "rolling_max": lambda h, lo, c: vectorised.rolling_max(h, 20),
    "rolling_min": lambda h, lo, c: vectorised.rolling_min(lo, 20),
}


@pytest.mark.parametrize("name", HLC_FNS)
def test_no_lookahead(name: str) -> None:
    c = candles("BTCUSDT", "5m")
    inputs = [c.high[:3000], c.low[:3000], c.close[:3000]]
    assert_no_lookahead(HLC_FNS[name], inputs, cuts=[0, 12, 13, 26, 27, 89, 500, 2998])


def test_constant_series() -> None:
    x = np.full(300, 42.5)
    assert (vectorised.rolling_std(x, 20, ddof=1)[19:] == 0.0).all()
    assert (run_incremental(incremental.RollingStd(20, 0), x)[19:] == 0.0).all()
    bands = vectorised.bollinger(x, 20, 2.0, ddof=1)
    assert (bands.width[19:] == 0.0).all() and (bands.upper[19:] == 42.5).all()
    assert (vectorised.percentile_rank(x, 90)[89:] == 0.0).all()  # nothing strictly below
    # TA-Lib's conventions: RSI 0 with no gains and no losses; ATR and ADX 0 with no range.
    assert (vectorised.rsi(x, 14)[14:] == 0.0).all()
    assert (run_incremental(incremental.RSI(14), x)[14:] == 0.0).all()
    np.testing.assert_array_equal(vectorised.rsi(x, 14), talib.RSI(x, 14))
    assert (vectorised.atr(x, x, x, 14)[14:] == 0.0).all()
    np.testing.assert_array_equal(vectorised.adx(x, x, x, 14), talib.ADX(x, x, x, 14))
    assert (run_incremental(incremental.ADX(14), x, x, x)[27:] == 0.0).all()
    assert (vectorised.pct_change(x, 5)[5:] == 0.0).all()


def test_short_input_is_all_nan() -> None:
    short = [1.0, 2.0, 3.0]
    assert np.isnan(vectorised.rolling_std(short, 4, ddof=1)).all()
    assert np.isnan(vectorised.percentile_rank(short, 4)).all()
    assert np.isnan(vectorised.rsi(short, 3)).all()
    assert np.isnan(vectorised.atr(short, short, short, 3)).all()
    five = [1.0, 2.0, 3.0, 2.0, 1.0]
    assert np.isnan(vectorised.adx(five, five, five, 3)).all()  # needs 6 bars
    assert np.isnan(vectorised.pct_change(short, 3)).all()
    assert vectorised.adx([], [], [], 3).size == 0
    ind = incremental.ADX(3)
    assert all(math.isnan(ind.update(1.0 + i, 0.5, 1.0)) for i in range(5)) and not ind.ready
    assert not math.isnan(ind.update(7.0, 0.5, 1.0)) and ind.ready


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"low\[1\] is"):
        vectorised.adx([2.0, 2.0], [1.0, bad], [1.5, 1.5], 2)
    with pytest.raises(ValueError, match=r"values\[1\] is"):
        vectorised.rsi([1.0, bad], 2)
    for ind, good, bad_bar in (
        (incremental.ATR(2), (2.0, 1.0, 1.5), (2.0, 1.0, bad)),
        (incremental.ADX(2), (2.0, 1.0, 1.5), (bad, 1.0, 1.5)),
        (incremental.RSI(2), (1.0,), (bad,)),
        (incremental.RollingStd(2, 1), (1.0,), (bad,)),
        (incremental.PercentileRank(2), (1.0,), (bad,)),
        (incremental.Bollinger(2, 2.0, 1), (1.0,), (bad,)),
        (incremental.PctChange(1), (1.0,), (bad,)),
    ):
        ind.update(*good)
        with pytest.raises(ValueError, match="finite"):
            ind.update(*bad_bar)
        assert ind.bars == 1, type(ind).__name__


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="ddof"):
        vectorised.rolling_std([1.0, 2.0], 2, ddof=2)
    with pytest.raises(ValueError, match="period must be an integer >= 2"):
        vectorised.rolling_std([1.0, 2.0], 1, ddof=1)  # a sample of one has no deviation
    with pytest.raises(ValueError, match="window"):
        incremental.PercentileRank(1)
    with pytest.raises(ValueError, match="period"):
        incremental.RSI(1)
    with pytest.raises(ValueError, match="k must be"):
        vectorised.bollinger([1.0, 2.0], 2, math.nan, ddof=0)
    with pytest.raises(ValueError, match="differ in length"):
        vectorised.atr([1.0, 2.0], [1.0], [1.0, 2.0], 1)


@pytest.mark.parametrize(("symbol", "interval"), SERIES)
@pytest.mark.parametrize("period", [1, 5, 20, 200])
def test_rolling_max_and_min(symbol: str, interval: str, period: int) -> None:
    c = candles(symbol, interval)
    first = warmup.rolling_max(period)
    assert first == period - 1 == incremental.RollingMax(period).warmup
    for vec_fn, cls, ta_fn, x in ((vectorised.rolling_max, incremental.RollingMax, talib.MAX, c.high),
                                  (vectorised.rolling_min, incremental.RollingMin, talib.MIN, c.low),
                                  (vectorised.rolling_max, incremental.RollingMax, talib.MAX,
                                   np.round(c.close, -2))):  # ties
        vec = vec_fn(x, period)
        assert_close(run_incremental(cls(period), x), vec, first_valid=first, rtol=0.0, what="incremental")
        if period > 1:  # TA-Lib takes >= 2
            assert_close(vec, ta_fn(x, period), first_valid=first, rtol=0.0, what="talib")
        else:
            np.testing.assert_array_equal(vec, x)
