"""Indicator cost on real candles: each vectorised function over the whole series, and each
incremental class per bar (what a live bot, or a backtest driving the incremental classes, pays).

    .venv/bin/python bench/bench_indicators.py [--symbol BTCUSDT] [--interval 1h] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from strategies.runtime.candles import load_shipped  # noqa: E402
from strategies.runtime.indicators import incremental, vectorised  # noqa: E402


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--interval", default="1h")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    c = load_shipped(args.symbol, args.interval)
    h, lo, cl = c.high, c.low, c.close
    hl, ll, cll = h.tolist(), lo.tolist(), cl.tolist()
    n = len(c)
    cases: list[tuple[str, Callable[[], object], Callable[[], object], tuple[list[float], ...]]] = [
        ("SMA 600", lambda: vectorised.sma(cl, 600), lambda: incremental.SMA(600), (cll,)),
        ("EMA 600", lambda: vectorised.ema(cl, 600), lambda: incremental.EMA(600), (cll,)),
        ("rolling std 144 (sample)", lambda: vectorised.rolling_std(cl, 144, ddof=1),
         lambda: incremental.RollingStd(144, 1), (cll,)),
        ("Bollinger 20, 2", lambda: vectorised.bollinger(cl, 20, 2.0, ddof=1),
         lambda: incremental.Bollinger(20, 2.0, 1), (cll,)),
        ("percentile rank 90", lambda: vectorised.percentile_rank(cl, 90),
         lambda: incremental.PercentileRank(90), (cll,)),
        ("RSI 84", lambda: vectorised.rsi(cl, 84), lambda: incremental.RSI(84), (cll,)),
        ("ATR 14", lambda: vectorised.atr(h, lo, cl, 14), lambda: incremental.ATR(14), (hl, ll, cll)),
        ("ADX 14", lambda: vectorised.adx(h, lo, cl, 14), lambda: incremental.ADX(14), (hl, ll, cll)),
        ("pct change 144", lambda: vectorised.pct_change(cl, 144), lambda: incremental.PctChange(144), (cll,)),
    ]
    print(f"{args.symbol} {args.interval}: {n} bars; best of {args.repeat}")
    print(f"{'indicator':26s} {'vectorised ms':>14s} {'us/bar':>8s} {'incremental ms':>15s} {'us/bar':>8s}")
    for label, vec, make, cols in cases:
        tv = best_of(args.repeat, vec)

        def feed(make: Callable[[], object] = make, cols: tuple[list[float], ...] = cols) -> None:
            update = make().update  # type: ignore[attr-defined]
            for bar in zip(*cols):
                update(*bar)

        ti = best_of(args.repeat, feed)
        print(f"{label:26s} {tv * 1e3:14.1f} {tv / n * 1e6:8.2f} {ti * 1e3:15.1f} {ti / n * 1e6:8.2f}")


if __name__ == "__main__":
    main()
