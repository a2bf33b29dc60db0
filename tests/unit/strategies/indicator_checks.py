"""Helpers for the indicator tests: real candles and the agreement checks."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from strategies.runtime.candles import Candles, load_shipped

# Real Bybit candles: 5m (Apr-Jul 2025, ~26k bars), 1h (2021-2024, ~35k bars), 4h resampled.
SERIES = (("BTCUSDT", "5m"), ("BTCUSDT", "1h"), ("ETHUSDT", "4h"))


@functools.cache
def candles(symbol: str, interval: str) -> Candles:
    return load_shipped(symbol, interval)


def assert_close(actual: np.ndarray, expected: np.ndarray, *, first_valid: int, rtol: float,
                 atol: float = 0.0, what: str = "") -> None:
    """NaN exactly before ``first_valid``, finite and within tolerance on every bar from it."""
    assert actual.shape == expected.shape, what
    assert np.isnan(actual[:first_valid]).all(), f"{what}: a value during the warm-up"
    a, e = actual[first_valid:], expected[first_valid:]
    assert a.size > 0, f"{what}: nothing to compare"
    assert np.isfinite(a).all(), f"{what}: NaN after the warm-up at {first_valid + int(np.argmax(~np.isfinite(a)))}"
    err = np.abs(a - e)
    bound = rtol * np.maximum(np.abs(a), np.abs(e)) + atol
    bad = ~(err <= bound)
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(f"{what}: bar {first_valid + i}: {a[i]!r} vs {e[i]!r} "
                             f"({int(bad.sum())} bars out of tolerance)")


def run_incremental(indicator, *inputs: Sequence[float]) -> np.ndarray:
    """Feed bars one at a time; checks that ``update`` returns ``.value`` and ``.ready`` flips at
    the warm-up."""
    out = np.empty(len(inputs[0]))
    for i, bar in enumerate(zip(*inputs, strict=True)):
        v = indicator.update(*bar)
        assert (v == indicator.value) or (math.isnan(v) and math.isnan(indicator.value))
        assert indicator.ready == (i >= indicator.warmup)
        out[i] = v
    return out


def assert_no_lookahead(fn: Callable[..., np.ndarray], inputs: Sequence[np.ndarray],
                        cuts: Sequence[int]) -> None:
    """Values up to each cut are identical whether later data is changed or absent."""
    full = fn(*inputs)
    rng = np.random.default_rng(7)
    for k in cuts:
        altered = [x.copy() for x in inputs]
        for x in altered:
            x[k + 1:] = x[k + 1:] * rng.uniform(0.5, 1.5, size=x.size - k - 1)
        changed = fn(*altered)
        cut = fn(*[x[: k + 1] for x in inputs])
        np.testing.assert_array_equal(changed[: k + 1], full[: k + 1])
        np.testing.assert_array_equal(cut, full[: k + 1])
