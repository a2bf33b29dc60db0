"""Candles and instrument filters for a backtest window (shipped data or the caller's CSV files)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from services.bybit_sim.instruments import INSTRUMENTS
from strategies.runtime.candles import INTERVAL_MS, CandleError, Candles, load_csv, load_shipped
from strategies.runtime.feeds import Subscription
from strategies.runtime.model import Instrument

MIN_NOTIONAL = Decimal(5)  # what the simulated venue (and Bybit) list for these perpetuals


def sim_instruments() -> dict[str, Instrument]:
    """The simulated venue's instruments, as the shared Instrument record."""
    return {s: Instrument(s, "Trading", i.tick_size, i.qty_step, i.min_qty, i.max_qty, MIN_NOTIONAL)
            for s, i in INSTRUMENTS.items()}


def warmup_ms(subs: Sequence[Subscription], factor: int = 1) -> int:
    """History needed before the first decision, over every subscription."""
    return max((s.warmup + 1) * INTERVAL_MS[s.interval] for s in subs) * factor


def load_window(symbols: Sequence[str], interval: str, from_ms: int, to_ms: int, warmup: int,
                files: Mapping[str, Path] | None = None) -> dict[str, Candles]:
    """Each symbol's candles of [from_ms - warmup, to_ms); a symbol with no candle in [from_ms, to_ms)
    is an error (naming what the data covers)."""
    out: dict[str, Candles] = {}
    for sym in symbols:
        path = (files or {}).get(sym)
        if path is not None:
            full = load_csv(path, symbol=sym)
            if full.interval != interval:
                full = full.resample(interval)
        else:
            full = load_shipped(sym, interval)
        window = full.select(from_ms - warmup, to_ms)
        if len(full.select(from_ms, to_ms)) == 0:
            raise CandleError(f"no {sym} {interval} candles in the window; the data covers "
                              f"{_day(full.start_ms[0]) if len(full) else '-'} to "
                              f"{_day(full.start_ms[-1]) if len(full) else '-'}")
        out[sym] = window
    return out


def _day(ms: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
