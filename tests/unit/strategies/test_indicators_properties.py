"""Vectorised = incremental on generated series: wide magnitudes, ties, flat runs, short input."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strategies.runtime.indicators import incremental, vectorised
from tests.unit.strategies.indicator_checks import assert_close, run_incremental

prices = st.lists(
    st.one_of(st.floats(1e-3, 1e6), st.sampled_from([1.0, 100.0, 100.5])),  # ties and flat runs
    min_size=0, max_size=120,
).map(lambda v: np.array(v, dtype=np.float64))
periods = st.integers(2, 25)


def _agree(vec: np.ndarray, inc: np.ndarray, first: int, scale: float, what: str) -> None:
    if vec.size <= first:
        assert np.isnan(vec).all() and np.isnan(inc).all(), what
        return
    assert_close(inc, vec, first_valid=first, rtol=1e-9, atol=1e-12 * scale, what=what)


@settings(max_examples=300, deadline=None)
@given(x=prices, n=periods)
@example(x=np.array([1e6] + [1e-3] * 6), n=2)  # a large value leaving a window of small ones
def test_single_series_indicators_agree(x: np.ndarray, n: int) -> None:
    # Relative agreement only (no absolute slack) where values are positive or exactly 0.
    cases = [
        ("sma", vectorised.sma(x, n), incremental.SMA(n), 0.0),
        ("ema", vectorised.ema(x, n), incremental.EMA(n), 0.0),
        ("ema first", vectorised.ema(x, n, seed="first"), incremental.EMA(n, seed="first"), 0.0),
        ("std1", vectorised.rolling_std(x, n, ddof=1), incremental.RollingStd(n, 1), 0.0),
        ("std0", vectorised.rolling_std(x, n, ddof=0), incremental.RollingStd(n, 0), 0.0),
        ("rank", vectorised.percentile_rank(x, n), incremental.PercentileRank(n), 1.0),
        ("rsi", vectorised.rsi(x, n), incremental.RSI(n), 100.0),
        ("pct", vectorised.pct_change(x, n), incremental.PctChange(n), 0.0),
        ("max", vectorised.rolling_max(x, n), incremental.RollingMax(n), 0.0),
        ("min", vectorised.rolling_min(x, n), incremental.RollingMin(n), 0.0),
    ]
    for what, vec, ind, sc in cases:
        _agree(vec, run_incremental(ind, x), ind.warmup, sc, what)
    bands = vectorised.bollinger(x, n, 2.0, ddof=1)
    ind = incremental.Bollinger(n, 2.0, 1)
    widths = []
    for v in x:
        ind.update(v)
        widths.append(ind.width)
    _agree(bands.width, np.array(widths), ind.warmup, 1.0, "width")


@settings(max_examples=200, deadline=None)
@given(x=prices, spread=st.lists(st.floats(0.0, 0.2), min_size=120, max_size=120), n=periods)
def test_high_low_close_indicators_agree(x: np.ndarray, spread: list[float], n: int) -> None:
    s = np.array(spread[: x.size])
    high, low, close = x * (1 + s), x * (1 - s / 2), x
    for what, vec, ind, sc in (
        ("atr", vectorised.atr(high, low, close, n), incremental.ATR(n), 0.0),
        ("adx", vectorised.adx(high, low, close, n), incremental.ADX(n), 100.0),
    ):
        _agree(vec, run_incremental(ind, high, low, close), ind.warmup, sc, what)
