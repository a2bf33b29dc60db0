"""Input checks shared by both implementations: one clear error, nothing half-updated."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def check_period(value: int, name: str = "period", minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_series(values: Sequence[float] | npt.ArrayLike, name: str = "values") -> FloatArray:
    """A one-dimensional float64 array of finite numbers (NaN and infinities are rejected)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {arr[i]}: indicators take finite numbers only")
    return arr


def as_hlc(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    h, lo, c = as_series(high, "high"), as_series(low, "low"), as_series(close, "close")
    if not h.size == lo.size == c.size:
        raise ValueError(f"high, low and close differ in length: {h.size}, {lo.size}, {c.size}")
    return h, lo, c


def finite(value: float, name: str = "value") -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} is {x}: indicators take finite numbers only")
    return x
