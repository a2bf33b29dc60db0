"""Indicators over other indicators: a leading run of NaN (the upstream warm-up) is skipped, the
warm-ups add up, and vectorised = incremental still holds (LXAlgo's volatility, Momentum's width
percentile)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.runtime.indicators import incremental, vectorised, warmup
from tests.unit.strategies.indicator_checks import assert_close, candles


def test_lxalgo_volatility_std_of_percent_returns() -> None:
    close = candles("BTCUSDT", "5m").close
    vec = vectorised.rolling_std(vectorised.pct_change(close, 1), 144, ddof=1)
    first = warmup.pct_change(1) + warmup.rolling_std(144, 1)
    assert first == 144
    returns = (close[1:] / close[:-1] - 1.0) * 100.0
    direct = np.concatenate([[np.nan], vectorised.rolling_std(returns, 144, ddof=1)])
    assert_close(vec, direct, first_valid=first, rtol=1e-12, what="chained vs sliced")
    pct, std = incremental.PctChange(1), incremental.RollingStd(144, 1)
    inc = np.array([std.update(pct.update(x)) for x in close])
    assert_close(inc, vec, first_valid=first, rtol=1e-9, what="incremental chain")
    assert std.bars == close.size - 1  # the NaN of the first bar was not counted


def test_momentum_width_percentile() -> None:
    close = candles("ETHUSDT", "4h").close
    width = vectorised.bollinger(close, 20, 2.0, ddof=1).width
    vec = vectorised.percentile_rank(width, 90)
    first = warmup.bollinger(20, 1) + warmup.percentile_rank(90)
    assert first == 108
    direct = vectorised.percentile_rank(width[19:], 90)
    assert_close(vec[19:], direct, first_valid=89, rtol=0.0, what="chained vs sliced")
    bands, rank = incremental.Bollinger(20, 2.0, 1), incremental.PercentileRank(90)
    out = []
    for x in close:
        bands.update(x)
        out.append(rank.update(bands.width))
    assert_close(np.array(out), vec, first_valid=first, rtol=0.0, what="incremental chain")


def test_hlc_indicators_start_where_all_three_have_started() -> None:
    c = candles("BTCUSDT", "1h")
    h, lo, cl = c.high[:500].copy(), c.low[:500].copy(), c.close[:500].copy()
    h[:3] = np.nan
    cl[:5] = np.nan
    got = vectorised.adx(h, lo, cl, 14)
    np.testing.assert_array_equal(got[5:], vectorised.adx(c.high[5:500], c.low[5:500], c.close[5:500], 14))
    assert np.isnan(got[: 5 + 27]).all()
    ind = incremental.ADX(14)
    inc = np.array([ind.update(a, b, x) for a, b, x in zip(h, lo, cl, strict=True)])
    np.testing.assert_array_equal(inc, got)


def test_nan_after_the_first_number_and_infinity_are_still_rejected() -> None:
    with pytest.raises(ValueError, match=r"values\[3\] is nan.*only before the first"):
        vectorised.sma([np.nan, 1.0, 2.0, np.nan, 3.0], 2)
    with pytest.raises(ValueError, match=r"values\[0\] is inf"):
        vectorised.ema([np.inf, 1.0, 2.0], 2)
    with pytest.raises(ValueError, match=r"close\[2\] is nan"):
        vectorised.atr([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [np.nan, 2.0, np.nan], 1)
    ind = incremental.SMA(2)
    assert math.isnan(ind.update(math.nan)) and ind.bars == 0
    ind.update(1.0)
    with pytest.raises(ValueError, match="finite"):
        ind.update(math.nan)
    with pytest.raises(ValueError, match="finite"):
        incremental.RSI(2).update(math.inf)
    assert np.isnan(vectorised.rsi([np.nan] * 5, 2)).all()  # nothing started: all warm-up
