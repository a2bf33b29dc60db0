"""Bar history and indicator values per (symbol, interval), as the context serves them.

A strategy declares its indicators as `IndicatorSpec`s (both forms of one indicator from
`strategies.runtime.indicators`). Two feeds serve them the same way:
- `ArrayFeed` (backtests): the whole history is known, so each indicator is computed once,
  vectorised, and the feed only moves an index forward as bars close. Values at bar i depend on
  bars 0..i only (the look-ahead guard checks that this holds for every indicator a strategy uses).
- `IncrementalFeed` (live): bars arrive one at a time; each indicator is updated incrementally
  after a warm-up through the same `update` path.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from strategies.runtime.candles import Candles
from strategies.runtime.indicators import incremental, vectorised
from strategies.runtime.model import Bar

Key = tuple[str, str]  # (symbol, interval)
_SOURCES = ("open", "high", "low", "close", "volume")
NAN = float("nan")


@dataclass(frozen=True)
class IndicatorSpec:
    label: str
    warmup: int  # index of the first valid value (as strategies.runtime.indicators.warmup)
    make: Callable[[], Any]  # a fresh incremental indicator
    feed: Callable[[Any, Bar], float]  # update it with one closed bar, return the value
    vector: Callable[[Candles], np.ndarray]  # the same over a whole history


def _source(name: str) -> int:
    if name not in _SOURCES:
        raise ValueError(f"indicator source must be one of {_SOURCES}, got {name!r}")
    return Bar._fields.index(name)


def ema(period: int, source: str = "close", seed: str = "sma") -> IndicatorSpec:
    col = _source(source)
    return IndicatorSpec(
        f"ema({period},{source},{seed})", incremental.EMA(period, seed).warmup,  # type: ignore[arg-type]
        lambda: incremental.EMA(period, seed),  # type: ignore[arg-type]
        lambda ind, bar: ind.update(bar[col]),
        lambda c: vectorised.ema(getattr(c, source), period, seed=seed))  # type: ignore[arg-type]


def sma(period: int, source: str = "close") -> IndicatorSpec:
    col = _source(source)
    return IndicatorSpec(
        f"sma({period},{source})", incremental.SMA(period).warmup, lambda: incremental.SMA(period),
        lambda ind, bar: ind.update(bar[col]), lambda c: vectorised.sma(getattr(c, source), period))


@dataclass(frozen=True)
class Subscription:
    """Closed bars of (symbol, interval) the strategy wants, how many to keep, and its indicators."""

    symbol: str
    interval: str
    history: int = 200
    indicators: tuple[tuple[str, IndicatorSpec], ...] = ()
    trade: bool = True  # False: data only (e.g. BTC daily bars for a regime filter)

    @property
    def key(self) -> Key:
        return (self.symbol, self.interval)

    @property
    def warmup(self) -> int:
        return max([self.history - 1] + [spec.warmup for _, spec in self.indicators])


class HistoryView(Sequence[Bar]):
    """The last `n` closed bars of a stream, oldest first, without copying."""

    __slots__ = ("_bars", "_lo", "_hi")

    def __init__(self, bars: Sequence[Bar], lo: int, hi: int) -> None:
        self._bars, self._lo, self._hi = bars, lo, hi

    def __len__(self) -> int:
        return self._hi - self._lo

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self._bars[self._lo + j] for j in range(*i.indices(len(self)))]
        n = self._hi - self._lo
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("bar history index out of range")
        return self._bars[self._lo + i]


class ArrayFeed:
    """Backtest feed: bars and vectorised indicator arrays per stream, and the current index."""

    def __init__(self) -> None:
        self.bars: dict[Key, list[Bar]] = {}
        self.values: dict[tuple[str, str, str], list[float]] = {}
        self.pos: dict[Key, int] = {}
        self.keep: dict[Key, int] = {}

    def add(self, sub: Subscription, candles: Candles) -> list[Bar]:
        sym, iv = sub.key
        n = len(candles)
        bars = list(map(Bar._make, zip(
            repeat(sym, n), repeat(iv, n), candles.start_ms.tolist(), candles.close_ms.tolist(),
            candles.open.tolist(), candles.high.tolist(), candles.low.tolist(), candles.close.tolist(),
            candles.volume.tolist())))
        self.bars[sub.key] = bars
        for name, spec in sub.indicators:
            self.values[(sym, iv, name)] = spec.vector(candles).tolist()
        self.pos[sub.key] = -1
        self.keep[sub.key] = sub.history
        return bars

    def history(self, key: Key) -> HistoryView:
        hi = self.pos[key] + 1
        return HistoryView(self.bars[key], max(0, hi - self.keep[key]), hi)

    def value(self, symbol: str, interval: str, name: str, ago: int = 0) -> float:
        i = self.pos[(symbol, interval)] - ago
        return self.values[(symbol, interval, name)][i] if i >= 0 else NAN


class IncrementalFeed:
    """Live feed: `push(bar)` appends a closed bar and updates each indicator once."""

    def __init__(self, subs: Sequence[Subscription], keep_values: int = 3) -> None:
        self.subs = {s.key: s for s in subs}
        self._bars: dict[Key, deque[Bar]] = {s.key: deque(maxlen=s.history) for s in subs}
        self._inds = {s.key: [(n, spec, spec.make()) for n, spec in s.indicators] for s in subs}
        self._vals: dict[Key, dict[str, deque[float]]] = {
            s.key: {n: deque(maxlen=max(keep_values, 1)) for n, _ in s.indicators} for s in subs}

    def push(self, bar: Bar) -> None:
        key = (bar.symbol, bar.interval)
        bars = self._bars[key]
        if bars and bar.start_ms <= bars[-1].start_ms:
            raise ValueError(f"{key}: bar {bar.start_ms} is not after {bars[-1].start_ms}")
        bars.append(bar)
        vals = self._vals[key]
        for name, spec, ind in self._inds[key]:
            vals[name].append(spec.feed(ind, bar))

    def history(self, key: Key) -> Sequence[Bar]:
        return self._bars[key]

    def value(self, symbol: str, interval: str, name: str, ago: int = 0) -> float:
        vals = self._vals[(symbol, interval)][name]
        return vals[-1 - ago] if ago < len(vals) else NAN
