"""Indicators one bar at a time, for live trading.

Each class has ``update(...) -> float`` (NaN until ready), ``.value`` (the last result), ``.ready``
and ``.warmup`` (the index of the first valid value, as in ``warmup.py``: ready after
``warmup + 1`` updates). Memory is bounded by the window; work per bar is O(1) or O(window).
NaN before the first number is an upstream indicator's warm-up: skipped and not counted, so
indicators chain (``std.update(pct.update(close))``). After the first number, an update with a
NaN or infinite input raises ``ValueError`` and leaves the state as it was.
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

    def _leading_nan(self, *values: float) -> bool:
        """NaN before the first number: an upstream indicator still warming up."""
        return self._bars == 0 and any(math.isnan(float(v)) for v in values)

    def _emit(self, value: float) -> float:
        self._bars += 1
        self._value = value if self._bars > self.warmup else NAN
        return self._value


class SMA(Indicator):
    """Simple moving average, amortised O(1): a compensated (Neumaier) running sum, re-summed
    exactly (``math.fsum``) every ``period`` bars. A plain running sum would keep a large value's
    rounding after the value left a window of small ones."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period)
        self.warmup = warmup.sma(self.period)
        self._window: deque[float] = deque(maxlen=self.period)
        self._sum = 0.0
        self._comp = 0.0

    def _add(self, v: float) -> None:
        t = self._sum + v
        if abs(self._sum) >= abs(v):
            self._comp += (self._sum - t) + v
        else:
            self._comp += (v - t) + self._sum
        self._sum = t

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        x = finite(value)
        if len(self._window) == self.period:
            self._add(-self._window[0])
        self._add(x)
        self._window.append(x)
        if (self._bars + 1) % self.period == 0:
            self._sum = math.fsum(self._window)
            self._comp = math.fsum([*self._window, -self._sum])  # what rounding the sum left out
        if len(self._window) < self.period:
            return self._emit(NAN)
        return self._emit((self._sum + self._comp) / self.period)


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
        if self._leading_nan(value):
            return NAN
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


def _window_std(window: deque[float], ddof: int) -> float:
    first = window[0]
    d = [v - first for v in window]
    mean = math.fsum(d) / len(d)
    return math.sqrt(math.fsum((v - mean) * (v - mean) for v in d) / (len(d) - ddof))


class RollingStd(Indicator):
    """Rolling standard deviation, ``ddof`` 1 (sample) or 0 (population); O(window) per bar."""

    def __init__(self, period: int, ddof: int) -> None:
        super().__init__()
        if ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 (population) or 1 (sample), got {ddof!r}")
        self.period = check_period(period, minimum=ddof + 1)
        self.ddof = ddof
        self.warmup = warmup.rolling_std(self.period, ddof)
        self._window: deque[float] = deque(maxlen=self.period)

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        self._window.append(finite(value))
        if len(self._window) < self.period:
            return self._emit(NAN)
        return self._emit(_window_std(self._window, self.ddof))


class Bollinger(Indicator):
    """Bollinger bands; ``update`` returns the middle band, ``.upper``, ``.lower`` and ``.width``
    hold the rest (NaN until ready)."""

    def __init__(self, period: int, k: float, ddof: int) -> None:
        super().__init__()
        kk = float(k)
        if not (math.isfinite(kk) and kk >= 0):
            raise ValueError(f"k must be a finite number >= 0, got {k!r}")
        self.k = kk
        self._sma = SMA(period)
        self._std = RollingStd(period, ddof)
        self.period = self._sma.period
        self.warmup = warmup.bollinger(self.period, ddof)
        self.upper = self.lower = self.width = NAN

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        x = finite(value)
        middle = self._sma.update(x)
        std = self._std.update(x)
        self.upper = middle + self.k * std
        self.lower = middle - self.k * std
        self.width = (self.upper - self.lower) / middle if middle != 0.0 else NAN
        return self._emit(middle)


class PercentileRank(Indicator):
    """Count of the last ``window`` values (this one included) strictly below this one, over
    ``window - 1``; O(window) per bar."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = check_period(window, "window", minimum=2)
        self.warmup = warmup.percentile_rank(self.window)
        self._values: deque[float] = deque(maxlen=self.window)

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        x = finite(value)
        self._values.append(x)
        if len(self._values) < self.window:
            return self._emit(NAN)
        below = sum(1 for v in self._values if v < x)
        return self._emit(below / (self.window - 1))


class PctChange(Indicator):
    """Percent change against the value ``period`` bars back (TA-Lib's ROC); NaN where that
    value is 0."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period)
        self.warmup = warmup.pct_change(self.period)
        self._values: deque[float] = deque(maxlen=self.period + 1)

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        self._values.append(finite(value))
        if len(self._values) <= self.period:
            return self._emit(NAN)
        base = self._values[0]
        return self._emit((self._values[-1] / base - 1.0) * 100.0 if base != 0.0 else NAN)


def _ta_is_zero(v: float) -> bool:
    return -1e-14 < v < 1e-14


class RSI(Indicator):
    """RSI with Wilder smoothing, seeded as TA-Lib (see ``vectorised.rsi``). O(1) per bar."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period, minimum=2)
        self.warmup = warmup.rsi(self.period)
        self._prev = NAN
        self._gain = 0.0
        self._loss = 0.0

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        x = finite(value)
        n = self.period
        if self._bars == 0:
            self._prev = x
            return self._emit(NAN)
        change = x - self._prev
        self._prev = x
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        if self._bars < n:
            self._gain += gain
            self._loss += loss
            return self._emit(NAN)
        if self._bars == n:
            self._gain = (self._gain + gain) / n
            self._loss = (self._loss + loss) / n
        else:
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n
        total = self._gain + self._loss
        return self._emit(0.0 if _ta_is_zero(total) else 100.0 * (self._gain / total))


class _TrueRange:
    """The previous close, for the true range of the next bar."""

    def __init__(self) -> None:
        self.prev_close = NAN

    def next(self, high: float, low: float, close: float) -> float:
        prev = self.prev_close
        self.prev_close = close
        if math.isnan(prev):
            return NAN
        return max(high - low, abs(high - prev), abs(low - prev))


def _hlc(high: float, low: float, close: float) -> tuple[float, float, float]:
    return finite(high, "high"), finite(low, "low"), finite(close, "close")


class ATR(Indicator):
    """Average true range with Wilder smoothing, seeded as TA-Lib. ``update(high, low, close)``."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period)
        self.warmup = warmup.atr(self.period)
        self._tr = _TrueRange()
        self._atr = 0.0

    def update(self, high: float, low: float, close: float) -> float:
        if self._leading_nan(high, low, close):
            return NAN
        h, lo, c = _hlc(high, low, close)
        tr = self._tr.next(h, lo, c)
        n = self.period
        if self._bars == 0:
            return self._emit(NAN)
        if self._bars < n:
            self._atr += tr
            return self._emit(NAN)
        if self._bars == n:
            self._atr = (self._atr + tr) / n
        else:
            self._atr = (self._atr * (n - 1) + tr) / n
        return self._emit(self._atr)


class ADX(Indicator):
    """ADX with Wilder smoothing, seeded as TA-Lib (see ``vectorised.adx``).
    ``update(high, low, close)``; ``.plus_di`` / ``.minus_di`` hold the last DIs."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period, minimum=2)
        self.warmup = warmup.adx(self.period)
        self._tr = _TrueRange()
        self._prev_high = self._prev_low = NAN
        self._s_plus = self._s_minus = self._s_tr = 0.0
        self._sum_dx = 0.0
        self._adx = NAN
        self.plus_di = self.minus_di = NAN

    def update(self, high: float, low: float, close: float) -> float:
        if self._leading_nan(high, low, close):
            return NAN
        h, lo, c = _hlc(high, low, close)
        n = self.period
        bar = self._bars
        tr = self._tr.next(h, lo, c)
        up, down = h - self._prev_high, self._prev_low - lo
        self._prev_high, self._prev_low = h, lo
        if bar == 0:
            return self._emit(NAN)
        plus_dm = up if up > 0 and up > down else 0.0
        minus_dm = down if down > 0 and up < down else 0.0
        if bar < n:
            self._s_plus += plus_dm
            self._s_minus += minus_dm
            self._s_tr += tr
            return self._emit(NAN)
        self._s_minus = self._s_minus - self._s_minus / n + minus_dm
        self._s_plus = self._s_plus - self._s_plus / n + plus_dm
        self._s_tr = self._s_tr - self._s_tr / n + tr
        dx = NAN
        if not _ta_is_zero(self._s_tr):
            self.minus_di = 100.0 * (self._s_minus / self._s_tr)
            self.plus_di = 100.0 * (self._s_plus / self._s_tr)
            total = self.minus_di + self.plus_di
            if not _ta_is_zero(total):
                dx = 100.0 * (abs(self.minus_di - self.plus_di) / total)
        if bar < self.warmup:
            if not math.isnan(dx):
                self._sum_dx += dx
            return self._emit(NAN)
        if bar == self.warmup:
            if not math.isnan(dx):
                self._sum_dx += dx
            self._adx = self._sum_dx / n
        elif not math.isnan(dx):
            self._adx = (self._adx * (n - 1) + dx) / n
        return self._emit(self._adx)


class _RollingExtreme(Indicator):
    """A monotonic deque of (bar, value): amortised O(1) per bar, at most ``period`` entries."""

    _keep_new: staticmethod  # (old, new) -> True when ``new`` makes ``old`` useless

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = check_period(period)
        self.warmup = warmup.rolling_extreme(self.period)
        self._candidates: deque[tuple[int, float]] = deque()

    def update(self, value: float) -> float:
        if self._leading_nan(value):
            return NAN
        x = finite(value)
        bar = self._bars
        while self._candidates and self._keep_new(self._candidates[-1][1], x):
            self._candidates.pop()
        self._candidates.append((bar, x))
        if self._candidates[0][0] <= bar - self.period:
            self._candidates.popleft()
        return self._emit(self._candidates[0][1])


class RollingMax(_RollingExtreme):
    """Highest of the last ``period`` values."""

    _keep_new = staticmethod(lambda old, new: old <= new)


class RollingMin(_RollingExtreme):
    """Lowest of the last ``period`` values."""

    _keep_new = staticmethod(lambda old, new: old >= new)
