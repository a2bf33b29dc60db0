"""Closed OHLCV candles: load (CSV, validated), select by time, resample to 4h / 1d on UTC boundaries.

A candle is `start_ms` (its open time, UTC epoch ms) and open/high/low/close/volume. Prices are held
as float64 arrays (indicators and the bar loop read them); the ledger turns a price into a Decimal
only when something fills at it (`Decimal(repr(x))` gives back the CSV's digits).
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000,
}
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "klines"
# Files whose last row was downloaded while that candle was still forming (see PROVENANCE.md).
_UNFINISHED_LAST_ROW = ("_2025-04_2025-07.csv",)


class CandleError(ValueError):
    """A candle file or series that cannot be used; the message names the file and row."""


@dataclass(frozen=True, eq=False)
class Candles:
    symbol: str
    interval: str
    start_ms: np.ndarray  # int64, strictly increasing, aligned to the interval
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.start_ms)

    @property
    def interval_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    @property
    def close_ms(self) -> np.ndarray:
        """When each candle closes (= the next candle's open time)."""
        return self.start_ms + self.interval_ms

    def _take(self, sl: slice | np.ndarray) -> Candles:
        return Candles(self.symbol, self.interval, self.start_ms[sl], self.open[sl], self.high[sl],
                       self.low[sl], self.close[sl], self.volume[sl])

    def select(self, from_ms: int | None = None, to_ms: int | None = None) -> Candles:
        """Candles whose open time is in [from_ms, to_ms)."""
        lo = 0 if from_ms is None else int(np.searchsorted(self.start_ms, from_ms, "left"))
        hi = len(self) if to_ms is None else int(np.searchsorted(self.start_ms, to_ms, "left"))
        return self._take(slice(lo, hi))

    def head(self, n: int) -> Candles:
        return self._take(slice(0, n))

    def resample(self, interval: str) -> Candles:
        """Aggregate to a longer interval on UTC boundaries; incomplete buckets (at the edges or
        around a gap) are dropped, since a bucket with missing candles is not that candle."""
        if interval == self.interval:
            return self
        target = INTERVAL_MS.get(interval)
        if target is None or target % self.interval_ms or target <= self.interval_ms:
            raise CandleError(f"cannot resample {self.interval} to {interval}")
        per = target // self.interval_ms
        bucket = self.start_ms - self.start_ms % target
        starts, first_idx, counts = np.unique(bucket, return_index=True, return_counts=True)
        full = counts == per
        first_idx, starts = first_idx[full], starts[full]
        last_idx = first_idx + per - 1
        if len(starts) == 0:
            return self._take(slice(0, 0))._with(interval)
        return Candles(
            self.symbol, interval, starts.astype(np.int64), self.open[first_idx],
            _reduce(np.maximum, self.high, first_idx, per),
            _reduce(np.minimum, self.low, first_idx, per), self.close[last_idx],
            _reduce(np.add, self.volume, first_idx, per),
        )

    def _with(self, interval: str) -> Candles:
        return Candles(self.symbol, interval, self.start_ms, self.open, self.high, self.low, self.close,
                       self.volume)


def _reduce(op: np.ufunc, values: np.ndarray, first_idx: np.ndarray, per: int) -> np.ndarray:
    idx = first_idx[:, None] + np.arange(per)[None, :]
    return op.reduce(values[idx], axis=1)


def to_ms(value: str | datetime) -> int:
    """A date or datetime (naive = UTC) as epoch ms."""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def validate(c: Candles, source: str) -> None:
    """Reject a malformed series with one message naming the first bad row."""
    def fail(i: int, why: str) -> None:
        when = datetime.fromtimestamp(int(c.start_ms[i]) / 1000, timezone.utc).isoformat()
        raise CandleError(f"{source}: candle {i} ({when}): {why}")

    prices = np.vstack([c.open, c.high, c.low, c.close])
    checks = (
        (~np.isfinite(prices).all(axis=0), "a price is not a number"),
        ((prices <= 0).any(axis=0), "non-positive price"),
        (~np.isfinite(c.volume) | (c.volume < 0), "negative or missing volume"),
        (c.high < np.maximum(c.open, c.close), "high below max(open, close)"),
        (c.low > np.minimum(c.open, c.close), "low above min(open, close)"),
        (c.start_ms % c.interval_ms != 0, f"timestamp not aligned to {c.interval}"),
    )
    for bad, why in checks:
        if bad.any():
            fail(int(np.argmax(bad)), why)
    step = np.diff(c.start_ms)
    if (step <= 0).any():
        fail(int(np.argmax(step <= 0)) + 1, "timestamp not after the previous one")


def parse_csv(text: str | io.IOBase, *, symbol: str, interval: str | None = None,
              source: str = "csv", drop_last: bool = False) -> Candles:
    """CSV with columns timestamp,open,high,low,close,volume (timestamp = candle open, ISO, naive = UTC)."""
    import pandas as pd  # here, not at the top: a live bot never reads CSVs and pandas costs it ~45 MB

    try:
        df = pd.read_csv(io.StringIO(text) if isinstance(text, str) else text)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CandleError(f"{source}: not a readable CSV ({exc})") from None
    missing = [col for col in COLUMNS if col not in df.columns]
    if missing:
        raise CandleError(f"{source}: missing column(s) {', '.join(missing)}; need {','.join(COLUMNS)}")
    if drop_last:
        df = df.iloc[:-1]
    try:
        ts = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise CandleError(f"{source}: bad timestamp ({exc})") from None
    start_ms = ts.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    cols = {}
    for col in COLUMNS[1:]:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            row = int(np.argmax(np.isnan(values)))
            raise CandleError(f"{source}: row {row + 2}: {col} {df[col].iloc[row]!r} is not a number")
        cols[col] = values
    if interval is None:
        interval = infer_interval(start_ms, source)
    if interval not in INTERVAL_MS:
        raise CandleError(f"{source}: unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    out = Candles(symbol, interval, start_ms, cols["open"], cols["high"], cols["low"], cols["close"],
                  cols["volume"])
    validate(out, source)
    return out


def infer_interval(start_ms: np.ndarray, source: str) -> str:
    if len(start_ms) < 2:
        raise CandleError(f"{source}: fewer than two candles; give the interval explicitly")
    step = int(np.min(np.diff(start_ms))) if (np.diff(start_ms) > 0).any() else 0
    for name, ms in INTERVAL_MS.items():
        if ms == step:
            return name
    raise CandleError(f"{source}: timestamps step by {step} ms, which is no known interval")


def load_csv(path: str | Path, *, symbol: str | None = None, interval: str | None = None,
             drop_last: bool = False) -> Candles:
    """A CSV file (plain or .gz). The symbol defaults to the file name's `bybit_{SYMBOL}_...` part."""
    path = Path(path)
    if symbol is None:
        parts = path.name.split("_")
        symbol = parts[1] if len(parts) > 2 and parts[0] == "bybit" else path.name.split(".")[0]
    try:
        with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path, encoding="utf-8")) as fh:
            return parse_csv(fh.read(), symbol=symbol, interval=interval, source=str(path), drop_last=drop_last)
    except OSError as exc:
        raise CandleError(f"{path}: cannot read ({exc.strerror or exc})") from None


def shipped_files(data_dir: Path = DATA_DIR) -> dict[tuple[str, str], Path]:
    """(symbol, interval) -> the shipped file (strategies/data/klines)."""
    out = {}
    for path in sorted(data_dir.glob("bybit_*_*_*.csv.gz")):
        _, symbol, interval, *_ = path.name.split("_")
        out[(symbol, interval)] = path
    return out


@lru_cache(maxsize=32)
def load_shipped(symbol: str, interval: str = "5m", data_dir: Path = DATA_DIR) -> Candles:
    """Shipped candles of a symbol; 4h and 1d are resampled from the finest shipped file that covers
    the longest span (1h), other intervals are read as shipped. Unfinished last rows are dropped.
    Cached per process (a sweep reads each file once per worker); treat the arrays as read-only."""
    files = shipped_files(data_dir)
    if (symbol, interval) in files:
        path = files[(symbol, interval)]
        return load_csv(path, symbol=symbol, interval=interval,
                        drop_last=path.name.endswith(tuple(s + ".gz" for s in _UNFINISHED_LAST_ROW)))
    if interval in ("4h", "1d"):
        for base in ("1h", "15m", "5m"):
            if (symbol, base) in files:
                return load_shipped(symbol, base, data_dir).resample(interval)
    have = sorted({f"{s} {i}" for s, i in files})
    raise CandleError(f"no shipped candles for {symbol} {interval}; have: {', '.join(have)}")
