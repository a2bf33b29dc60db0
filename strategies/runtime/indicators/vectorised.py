"""Indicators over whole float64 arrays, for backtests and warm-up.

Every function returns an array as long as its input, NaN during the warm-up (see ``warmup``), and
the value at bar ``i`` depends only on inputs ``0 .. i`` (no look-ahead). Inputs must be finite:
NaN or infinity anywhere raises ``ValueError`` naming the first bad index, because a NaN carried
silently through a recursive indicator poisons every later bar.

Recursive indicators (EMA, RSI, ATR, ADX) follow TA-Lib's arithmetic and seeding exactly, so they
agree with TA-Lib to rounding; the incremental classes in ``incremental.py`` are a separate
implementation of the same definitions.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from strategies.runtime.indicators import warmup
from strategies.runtime.indicators._checks import FloatArray, as_series, check_period
from strategies.runtime.indicators.warmup import EmaSeed

# Rows of a sliding window processed at once: bounds temporaries to ~8 MB whatever the window.
_CHUNK_ELEMENTS = 1 << 20


def _chunks(rows: int, width: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _nans(size: int) -> FloatArray:
    return np.full(size, np.nan, dtype=np.float64)


def sma(values: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average of the last ``period`` values. Warm-up: ``period - 1``."""
    x = as_series(values)
    n = check_period(period)
    out = _nans(x.size)
    if x.size >= n:
        out[n - 1 :] = sliding_window_view(x, n).mean(axis=1)
    return out


rolling_mean = sma


def ema(values: npt.ArrayLike, period: int, *, seed: EmaSeed = "sma") -> FloatArray:
    """Exponential moving average, alpha = 2 / (period + 1).

    ``seed="sma"`` (TA-Lib's EMA): the value at bar ``period - 1`` is the mean of the first
    ``period`` values. Warm-up ``period - 1``.
    ``seed="first"``: the value at bar 0 is the first value. Warm-up 0.
    After the seed: ``ema = (x - prev) * alpha + prev``.
    """
    x = as_series(values)
    n = check_period(period)
    start = warmup.ema(n, seed)
    out = _nans(x.size)
    if x.size <= start:
        return out
    alpha = 2.0 / (n + 1)
    xs = x.tolist()
    prev = math.fsum(xs[:n]) / n if seed == "sma" else xs[0]
    res = [prev]
    for v in xs[start + 1 :]:
        prev = (v - prev) * alpha + prev
        res.append(prev)
    out[start:] = res
    return out
