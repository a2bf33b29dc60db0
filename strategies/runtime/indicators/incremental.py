"""Indicators one bar at a time, for live trading.

Each class has ``update(...) -> float`` (NaN until ready), ``.value`` (the last result), ``.ready``
and ``.warmup`` (the index of the first valid value, as in ``warmup.py``: ready after
``warmup + 1`` updates). Memory is bounded by the window; work per bar is O(1) or O(window).
An update with a NaN or infinite input raises ``ValueError`` and leaves the state as it was.
The results equal ``vectorised.py`` bar for bar (tests hold them to 1e-9 relative).
"""
from __future__ import annotations

import math
from collections import deque

from strategies.runtime.indicators import warmup
from strategies.runtime.indicators._checks import check_period, finite
from strategies.runtime.indicators.warmup import EmaSeed

NAN = math.nan


class Indicator:
    """Common bookkeeping: bar count, last value, readiness."""

    warmup: int

    def __init__(self) -> None:
        self._bars = 0
        self._value = NAN

    @property
    def value(self) -> float:
        return self._value

    @property
    def ready(self) -> bool:
        return self._bars > self.warmup

    @property
    def bars(self) -> int:
        """Updates seen so far."""
        return self._bars

    def _emit(self, value: float) -> float:
        self._bars += 1
        self._value = value if self._bars > self.warmup else NAN
        return self._value


class SMA(Indicator):
    """Simple moving average. A running sum, re-added exactly every ``period`` bars so rounding
    cannot accumulate (amortised O(1))."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period)
        self.warmup = warmup.sma(self.period)
        self._window: deque[float] = deque(maxlen=self.period)
        self._sum = 0.0

    def update(self, value: float) -> float:
        x = finite(value)
        if len(self._window) == self.period:
            self._sum += x - self._window[0]
        else:
            self._sum += x
        self._window.append(x)
        if (self._bars + 1) % self.period == 0:
            self._sum = math.fsum(self._window)
        return self._emit(self._sum / self.period)


RollingMean = SMA


class EMA(Indicator):
    """Exponential moving average; ``seed`` as in ``vectorised.ema``."""

    def __init__(self, period: int, seed: EmaSeed = "sma") -> None:
        super().__init__()
        self.period = check_period(period)
        self.seed = seed
        self.warmup = warmup.ema(self.period, seed)
        self.alpha = 2.0 / (self.period + 1)
        self._seed_values: list[float] = []
        self._ema = NAN

    def update(self, value: float) -> float:
        x = finite(value)
        if self._bars < self.warmup:
            self._seed_values.append(x)
        elif self._bars == self.warmup:
            if self.seed == "sma":
                self._seed_values.append(x)
                self._ema = math.fsum(self._seed_values) / self.period
                self._seed_values = []
            else:
                self._ema = x
        else:
            self._ema = (x - self._ema) * self.alpha + self._ema
        return self._emit(self._ema)
