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


def as_array(values: Sequence[float] | npt.ArrayLike, name: str = "values") -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_series(values: Sequence[float] | npt.ArrayLike, name: str = "values") -> FloatArray:
    """A one-dimensional float64 array of finite numbers (NaN and infinities are rejected)."""
    arr = as_array(values, name)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {arr[i]}: indicators take finite numbers only")
    return arr


def first_number(arr: FloatArray, name: str = "values") -> int:
    """Index of the first non-NaN value. NaN before it is an upstream indicator's warm-up; NaN
    after it, or an infinity anywhere, raises."""
    nan = np.isnan(arr)
    k = arr.size if nan.all() else int(np.argmin(nan))
    bad = ~np.isfinite(arr[k:])
    if bad.any():
        i = k + int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {arr[i]}: indicators take finite numbers "
                         "(NaN only before the first one, as an upstream indicator's warm-up)")
    return k


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
