"""Indicators over whole float64 arrays, for backtests and warm-up.

Every function returns an array as long as its input, NaN during the warm-up (see ``warmup``), and
the value at bar ``i`` depends only on inputs ``0 .. i`` (no look-ahead). Inputs must be finite,
except for a leading run of NaN (another indicator's warm-up, so indicators chain: the
indicator starts at the first number and the warm-ups add up). A NaN after the first number, or
an infinity anywhere, raises ``ValueError`` naming its index, because a NaN carried silently
through a recursive indicator poisons every later bar.

Recursive indicators (EMA, RSI, ATR, ADX) follow TA-Lib's arithmetic and seeding exactly, so they
agree with TA-Lib to rounding; the incremental classes in ``incremental.py`` are a separate
implementation of the same definitions.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from strategies.runtime.indicators import warmup
from strategies.runtime.indicators._checks import (
    FloatArray, as_array, as_hlc, as_series, check_period, first_number,
)
from strategies.runtime.indicators.warmup import EmaSeed

# Rows of a sliding window processed at once: bounds temporaries to ~8 MB whatever the window.
_CHUNK_ELEMENTS = 1 << 20


def _chunks(rows: int, width: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _nans(size: int) -> FloatArray:
    return np.full(size, np.nan, dtype=np.float64)


def _series_input(fn: Callable[..., FloatArray]) -> Callable[..., FloatArray]:
    """Let ``fn`` (finite input) take a series with a leading run of NaN: NaN there in the output."""

    @functools.wraps(fn)
    def wrapper(values: npt.ArrayLike, *args: object, **kwargs: object) -> FloatArray:
        x = as_array(values)
        k = first_number(x)
        if k == 0:
            return fn(x, *args, **kwargs)
        out = _nans(x.size)
        out[k:] = fn(x[k:], *args, **kwargs)
        return out

    return wrapper


def _hlc_input(fn: Callable[..., FloatArray]) -> Callable[..., FloatArray]:
    """As ``_series_input`` for (high, low, close): starts where all three have started."""

    @functools.wraps(fn)
    def wrapper(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                *args: object, **kwargs: object) -> FloatArray:
        h, lo, c = as_array(high, "high"), as_array(low, "low"), as_array(close, "close")
        if not h.size == lo.size == c.size:
            raise ValueError(f"high, low and close differ in length: {h.size}, {lo.size}, {c.size}")
        k = max(first_number(h, "high"), first_number(lo, "low"), first_number(c, "close"))
        if k == 0:
            return fn(h, lo, c, *args, **kwargs)
        out = _nans(h.size)
        out[k:] = fn(h[k:], lo[k:], c[k:], *args, **kwargs)
        return out

    return wrapper


@_series_input
def sma(values: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average of the last ``period`` values. Warm-up: ``period - 1``."""
    x = as_series(values)
    n = check_period(period)
    out = _nans(x.size)
    if x.size >= n:
        out[n - 1 :] = sliding_window_view(x, n).mean(axis=1)
    return out


rolling_mean = sma


@_series_input
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


@_series_input
def rolling_std(values: npt.ArrayLike, period: int, *, ddof: int) -> FloatArray:
    """Standard deviation of the last ``period`` values: ``ddof=1`` sample, ``ddof=0`` population.

    Warm-up ``period - 1``; ``period`` must exceed ``ddof``. Computed two-pass on values shifted by
    the window's first value, so a constant window gives exactly 0 and large prices lose nothing to
    a sum of squares.
    """
    x = as_series(values)
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample), got {ddof!r}")
    n = check_period(period, minimum=ddof + 1)
    out = _nans(x.size)
    if x.size < n:
        return out
    windows = sliding_window_view(x, n)
    res = np.empty(windows.shape[0])
    for sl in _chunks(windows.shape[0], n):
        d = windows[sl] - windows[sl, :1]
        d -= d.mean(axis=1, keepdims=True)
        res[sl] = np.sqrt(np.einsum("ij,ij->i", d, d) / (n - ddof))
    out[n - 1 :] = res
    return out


class Bands(NamedTuple):
    middle: FloatArray
    upper: FloatArray
    lower: FloatArray
    width: FloatArray


def bollinger(values: npt.ArrayLike, period: int, k: float, *, ddof: int) -> Bands:
    """Bollinger bands: middle = SMA, upper/lower = middle +/- k x rolling std (``ddof`` as in
    ``rolling_std``: TA-Lib uses 0, Momentum 1), width = (upper - lower) / middle (NaN where the
    middle is 0). Warm-up ``period - 1``."""
    kk = float(k)
    if not (math.isfinite(kk) and kk >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    middle = sma(values, period)
    std = rolling_std(values, period, ddof=ddof)
    upper = middle + kk * std
    lower = middle - kk * std
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(middle != 0.0, (upper - lower) / middle, np.nan)
    return Bands(middle, upper, lower, width)


@_series_input
def percentile_rank(values: npt.ArrayLike, window: int) -> FloatArray:
    """Among the last ``window`` values including this one, the count strictly below this one,
    divided by ``window - 1`` (0 = the lowest, 1 = strictly the highest). Warm-up ``window - 1``."""
    x = as_series(values)
    w = check_period(window, "window", minimum=2)
    out = _nans(x.size)
    if x.size < w:
        return out
    windows = sliding_window_view(x, w)
    res = np.empty(windows.shape[0])
    for sl in _chunks(windows.shape[0], w):
        res[sl] = np.count_nonzero(windows[sl] < windows[sl, -1:], axis=1)
    out[w - 1 :] = res / (w - 1)
    return out


@_series_input
def pct_change(values: npt.ArrayLike, period: int) -> FloatArray:
    """Percent change against the value ``period`` bars back: (x / x[i - period] - 1) x 100, as
    TA-Lib's ROC. Warm-up ``period``. Where the old value is 0 the result is NaN (undefined;
    TA-Lib returns 0 there)."""
    x = as_series(values)
    n = check_period(period)
    out = _nans(x.size)
    if x.size <= n:
        return out
    base = x[:-n]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n:] = np.where(base != 0.0, (x[n:] / base - 1.0) * 100.0, np.nan)
    return out


def _is_zero(v: float) -> bool:
    """TA-Lib's TA_IS_ZERO."""
    return -1e-14 < v < 1e-14


@_series_input
def rsi(values: npt.ArrayLike, period: int) -> FloatArray:
    """Relative strength index with Wilder smoothing, as TA-Lib's RSI.

    Seed: the average gain and loss are the plain means of the first ``period`` changes; the first
    value is at bar ``period`` (warm-up ``period``). Then avg = (avg x (period - 1) + change) /
    period. RSI = 100 x gain / (gain + loss), and 0 when both are 0 (TA-Lib's convention).
    """
    x = as_series(values)
    n = check_period(period, minimum=2)
    out = _nans(x.size)
    if x.size <= n:
        return out
    change = np.diff(x)
    gains = np.where(change > 0, change, 0.0).tolist()
    losses = np.where(change < 0, -change, 0.0).tolist()
    gain = loss = 0.0
    for i in range(n):
        gain += gains[i]
        loss += losses[i]
    gain /= n
    loss /= n
    res = []
    total = gain + loss
    res.append(0.0 if _is_zero(total) else 100.0 * (gain / total))
    for g, lo in zip(gains[n:], losses[n:], strict=True):
        gain = (gain * (n - 1) + g) / n
        loss = (loss * (n - 1) + lo) / n
        total = gain + loss
        res.append(0.0 if _is_zero(total) else 100.0 * (gain / total))
    out[n:] = res
    return out


@_hlc_input
def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """max(high - low, |high - previous close|, |low - previous close|); NaN at bar 0."""
    h, lo, c = as_hlc(high, low, close)
    out = _nans(h.size)
    if h.size > 1:
        prev = c[:-1]
        out[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    return out


@_hlc_input
def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int) -> FloatArray:
    """Average true range with Wilder smoothing, as TA-Lib's ATR.

    Seed: the mean of the true ranges of bars 1 .. period (bar 0 has none), at bar ``period``
    (warm-up ``period``). Then atr = (atr x (period - 1) + tr) / period.
    """
    tr = true_range(high, low, close)
    n = check_period(period)
    out = _nans(tr.size)
    if tr.size <= n:
        return out
    trs = tr.tolist()
    prev = 0.0
    for v in trs[1 : n + 1]:
        prev += v
    prev /= n
    res = [prev]
    for v in trs[n + 1 :]:
        prev = (prev * (n - 1) + v) / n
        res.append(prev)
    out[n:] = res
    return out


@_hlc_input
def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int) -> FloatArray:
    """Average directional index with Wilder smoothing, as TA-Lib's ADX. Warm-up ``2 x period - 1``.

    +DM = up move if it is positive and larger than the down move, -DM likewise; TR the true range.
    TA-Lib's seeding: the smoothed +DM, -DM and TR start as the plain sums over bars 1 .. period-1;
    from bar ``period`` on each is s = s - s / period + new. DX = 100 x |+DI - -DI| / (+DI + -DI)
    with DI = 100 x DM / TR. The first ADX (bar 2 x period - 1) is the sum of the DX of bars
    period .. 2 x period - 1 divided by period; then adx = (adx x (period - 1) + dx) / period.
    A bar whose TR or DI sum is 0 adds no DX to the seed and leaves the ADX unchanged.
    """
    h, lo, c = as_hlc(high, low, close)
    n = check_period(period, minimum=2)
    first = 2 * n - 1
    out = _nans(h.size)
    if h.size <= first:
        return out
    up = np.diff(h)
    down = -np.diff(lo)
    plus_dm = np.where((up > 0) & (up > down), up, 0.0).tolist()
    minus_dm = np.where((down > 0) & (up < down), down, 0.0).tolist()
    trs = true_range(h, lo, c)[1:].tolist()
    # Index j of these lists is bar j + 1.
    s_plus = s_minus = s_tr = 0.0
    for j in range(n - 1):
        s_plus += plus_dm[j]
        s_minus += minus_dm[j]
        s_tr += trs[j]

    def smooth(j: int) -> float | None:
        nonlocal s_plus, s_minus, s_tr
        s_minus = s_minus - s_minus / n + minus_dm[j]
        s_plus = s_plus - s_plus / n + plus_dm[j]
        s_tr = s_tr - s_tr / n + trs[j]
        if _is_zero(s_tr):
            return None
        minus_di = 100.0 * (s_minus / s_tr)
        plus_di = 100.0 * (s_plus / s_tr)
        total = minus_di + plus_di
        if _is_zero(total):
            return None
        return 100.0 * (abs(minus_di - plus_di) / total)

    sum_dx = 0.0
    for j in range(n - 1, 2 * n - 1):
        dx = smooth(j)
        if dx is not None:
            sum_dx += dx
    prev = sum_dx / n
    res = [prev]
    for j in range(2 * n - 1, len(trs)):
        dx = smooth(j)
        if dx is not None:
            prev = (prev * (n - 1) + dx) / n
        res.append(prev)
    out[first:] = res
    return out


@_series_input
def rolling_max(values: npt.ArrayLike, period: int) -> FloatArray:
    """Highest of the last ``period`` values (TA-Lib's MAX; e.g. Momentum's 5- and 20-day highs).
    Warm-up ``period - 1``."""
    x = as_series(values)
    n = check_period(period)
    out = _nans(x.size)
    if x.size >= n:
        out[n - 1 :] = sliding_window_view(x, n).max(axis=1)
    return out


@_series_input
def rolling_min(values: npt.ArrayLike, period: int) -> FloatArray:
    """Lowest of the last ``period`` values (TA-Lib's MIN). Warm-up ``period - 1``."""
    x = as_series(values)
    n = check_period(period)
    out = _nans(x.size)
    if x.size >= n:
        out[n - 1 :] = sliding_window_view(x, n).min(axis=1)
    return out
