"""Backtest speed: ema_cross in our backtester against backtesting.py 0.6 on the same candles.

Same rules in both: fast/slow EMA of close (the same vectorised EMA), a cross decided on a closed
candle trades 1 unit at the next candle's open (close the position, open the other side), commission
0.055 % per fill, no slippage, no stops. Checks the two trade lists are equal (side, entry and exit
time, entry and exit price), then prints candles/s of each (best of --repeat, wall and CPU), and runs
a sweep of --sweep-n parameter sets on --workers processes with each engine: runs/s.

    .venv/bin/python bench/bench_backtest.py [--repeat 3] [--sweep-n 100] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from strategies.backtest.config import FillRules, RunSettings  # noqa: E402
from strategies.backtest.data import sim_instruments  # noqa: E402
from strategies.backtest.engine import Backtest  # noqa: E402
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig  # noqa: E402
from strategies.runtime.candles import Candles, load_shipped, to_ms  # noqa: E402
from strategies.runtime.indicators import vectorised  # noqa: E402

COMMISSION = 0.00055
SETTINGS = RunSettings(initial_balance=Decimal(10_000_000), rules=FillRules(funding_rate=Decimal(0)))
DATASETS = {
    "BTCUSDT 5m 2025-04..07": ("5m", None, None),
    "BTCUSDT 1h 2021..2024": ("1h", "2021-01-01", "2025-01-01"),
}


@lru_cache(maxsize=None)
def candles(interval: str, frm: str | None, to: str | None) -> Candles:
    c = load_shipped("BTCUSDT", interval)
    return c.select(to_ms(frm) if frm else None, to_ms(to) if to else None)


def ours(c: Candles, fast: int, slow: int) -> list[tuple]:
    cfg = EmaCrossConfig(symbols=("BTCUSDT",), interval=c.interval, fast=fast, slow=slow, qty=Decimal(1))
    r = Backtest(EmaCross(cfg), {"BTCUSDT": c}, settings=SETTINGS, instruments=sim_instruments()).run()
    return [("long" if t.side == "long" else "short", t.entry_ms, t.exit_ms, float(t.entry_price),
             float(t.exit_price)) for t in r.trades]


def frame(c: Candles) -> pd.DataFrame:
    return pd.DataFrame({"Open": c.open, "High": c.high, "Low": c.low, "Close": c.close, "Volume": c.volume},
                        index=pd.to_datetime(c.start_ms, unit="ms"))


def theirs(df: pd.DataFrame, fast: int, slow: int) -> list[tuple]:
    from backtesting import Backtest as BT, Strategy

    class EmaCrossBT(Strategy):
        n_fast, n_slow = fast, slow

        def init(self) -> None:
            self.f = self.I(vectorised.ema, self.data.Close, self.n_fast)
            self.s = self.I(vectorised.ema, self.data.Close, self.n_slow)

        def next(self) -> None:
            f, s, f1, s1 = self.f[-1], self.s[-1], self.f[-2], self.s[-2]
            if f1 <= s1 and f > s:
                self.position.close()
                self.buy(size=1)
            elif f1 >= s1 and f < s:
                self.position.close()
                self.sell(size=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = BT(df, EmaCrossBT, cash=10_000_000, commission=COMMISSION).run()
    step = df.index[1] - df.index[0]
    return [("long" if row.Size > 0 else "short", int(row.EntryTime.value // 1_000_000),
             int((row.ExitTime).value // 1_000_000), float(row.EntryPrice), float(row.ExitPrice))
            for row in stats._trades.itertuples()] if step else []


def timed(fn, *args) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - w, time.process_time() - c, out


def _ours_job(args: tuple[str, int, int]) -> int:
    interval, fast, slow = args
    return len(ours(candles(interval, None, None), fast, slow))


def _theirs_job(args: tuple[str, int, int]) -> int:
    interval, fast, slow = args
    return len(theirs(frame(candles(interval, None, None)), fast, slow))


def sweep_params(n: int) -> list[tuple[str, int, int]]:
    pairs = [(f, s) for f in range(3, 60, 2) for s in range(10, 300, 7) if f < s]
    step = max(1, len(pairs) // n)
    return [("5m", f, s) for f, s in pairs[::step][:n]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweep-n", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fast", type=int, default=12)
    ap.add_argument("--slow", type=int, default=26)
    args = ap.parse_args()
    print(f"ema_cross fast={args.fast} slow={args.slow}; {os.cpu_count()} cores; best of {args.repeat}")
    for name, (interval, frm, to) in DATASETS.items():
        c = candles(interval, frm, to)
        df = frame(c)
        best_o = min((timed(ours, c, args.fast, args.slow) for _ in range(args.repeat)), key=lambda x: x[0])
        best_t = min((timed(theirs, df, args.fast, args.slow) for _ in range(args.repeat)), key=lambda x: x[0])
        a, b = best_o[2], best_t[2]
        equal = a == b
        print(f"{name}: {len(c)} candles, trades ours {len(a)} theirs {len(b)}, trade lists equal: {equal}")
        if not equal:
            diff = next(i for i in range(min(len(a), len(b)) + 1) if i >= min(len(a), len(b)) or a[i] != b[i])
            print(f"  first difference at trade {diff}: ours {a[diff:diff + 1]} theirs {b[diff:diff + 1]}")
        for who, (wall, cpu, _) in (("ours", best_o), ("backtesting.py", best_t)):
            print(f"  {who:15} {wall:7.3f} s wall {cpu:7.3f} s cpu  {len(c) / wall:10.0f} candles/s")
        print(f"  ratio (wall) ours/theirs: {best_t[0] / best_o[0]:.1f}x")
    if args.sweep_n:
        params = sweep_params(args.sweep_n)
        for who, job in (("ours", _ours_job), ("backtesting.py", _theirs_job)):
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                list(pool.map(job, params[: args.workers]))  # warm the workers (imports, data)
                w = time.perf_counter()
                list(pool.map(job, params))
                wall = time.perf_counter() - w
            print(f"sweep {len(params)} runs of BTCUSDT 5m on {args.workers} processes, {who:15}: {wall:6.1f} s, "
                  f"{len(params) / wall:5.2f} runs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
