"""Warm-up of each indicator: the index of its first valid (non-NaN) value.

An indicator with warm-up ``w`` returns NaN for bars ``0 .. w-1`` and needs ``w + 1`` bars for its
first value. The backtester sizes a strategy's history from these; the incremental classes expose
the same number as ``.warmup``.

Exponential indicators (EMA, RSI, ATR, ADX) have a value from their warm-up on, but that value
still depends on where the history started; ``ema_settle_bars`` says how many more bars make that
dependence smaller than a relative tolerance.
"""
from __future__ import annotations

import math
from typing import Literal

from strategies.runtime.indicators._checks import check_period

EmaSeed = Literal["sma", "first"]


def sma(period: int) -> int:
    return check_period(period) - 1


rolling_mean = sma


def ema(period: int, seed: EmaSeed = "sma") -> int:
    n = check_period(period)
    if seed == "sma":
        return n - 1
    if seed == "first":
        return 0
    raise ValueError(f"seed must be 'sma' or 'first', got {seed!r}")


def rolling_std(period: int, ddof: int) -> int:
    return check_period(period, minimum=ddof + 1) - 1


def bollinger(period: int, ddof: int) -> int:
    return rolling_std(period, ddof)


def percentile_rank(window: int) -> int:
    return check_period(window, "window", minimum=2) - 1


def rsi(period: int) -> int:
    return check_period(period, minimum=2)


def atr(period: int) -> int:
    return check_period(period)


def adx(period: int) -> int:
    return 2 * check_period(period, minimum=2) - 1


def pct_change(period: int) -> int:
    return check_period(period)


def ema_settle_bars(period: int, rel_tol: float = 1e-9) -> int:
    """Bars after which an EMA's dependence on its seed has decayed below ``rel_tol``.

    The seed's weight after k updates is (1 - alpha)^k with alpha = 2/(N+1).
    """
    n = check_period(period)
    if not 0.0 < rel_tol < 1.0:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol!r}")
    if n == 1:
        return 0
    decay = 1.0 - 2.0 / (n + 1)
    return math.ceil(math.log(rel_tol) / math.log(decay))


def rolling_extreme(period: int) -> int:
    """Rolling max or min."""
    return check_period(period) - 1


rolling_max = rolling_min = rolling_extreme
