"""`python -m strategies.backtest BOT ...`: one run, or a sweep across every core.

Bad arguments or configuration print one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from strategies.backtest.runner import BacktestConfigError, BacktestSpec, build, run
from strategies.registry import BOTS, UnknownBot
from strategies.runtime.candles import CandleError, to_ms

USAGE_EXIT = 2


class BacktestUsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise BacktestUsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m strategies.backtest", description="Backtest a bot on historical candles.")
    p.add_argument("bot", help=f"one of: {', '.join(sorted(BOTS))}")
    p.add_argument("--symbols", default=None, help="comma list, e.g. BTCUSDT,ETHUSDT (default: the bot's)")
    p.add_argument("--from", dest="from_", required=True, help="first decision day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", required=True, help="end (exclusive), YYYY-MM-DD (UTC)")
    p.add_argument("--interval", default=None, help="execution interval (default: the finest the bot uses)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a strategy setting, a fill rule (slippage_bps, taker_fee, funding_rate, ...) or "
                        "initial_balance / leverage / warmup_factor")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="run every combination, in parallel on every core")
    p.add_argument("--candles", action="append", default=[], metavar="SYMBOL=PATH",
                   help="read this symbol from a CSV (timestamp,open,high,low,close,volume)")
    p.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    p.add_argument("--csv", default=None, help="write the trades as CSV to this path")
    p.add_argument("--out", default=None, help="directory for report.json, equity.png, trades.csv")
    p.add_argument("--workers", type=int, default=None, help="sweep processes (default: every core)")
    return p


def _pairs(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BacktestUsageError(f"{what} {item!r}: expected KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return out


def _date(value: str, flag: str) -> int:
    try:
        return to_ms(datetime.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise BacktestUsageError(f"{flag} {value!r}: expected a date YYYY-MM-DD") from None


def spec_from(args: argparse.Namespace) -> BacktestSpec:
    from_ms, to_ms_ = _date(args.from_, "--from"), _date(args.to, "--to")
    if to_ms_ <= from_ms:
        raise BacktestUsageError(f"--to {args.to} is not after --from {args.from_}")
    symbols: tuple[str, ...] = ()
    if args.symbols is not None:
        symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
        if not symbols:
            raise BacktestUsageError("--symbols is empty")
    spec = BacktestSpec(args.bot, symbols, from_ms, to_ms_, args.interval, tuple(_pairs(args.sets, "--set")),
                   tuple(_pairs(args.candles, "--candles")))
    if not symbols:  # the bot's own default symbols
        strategy, _ = build(spec)
        spec = BacktestSpec(spec.bot, tuple(strategy.config.symbols), from_ms, to_ms_, spec.interval, spec.settings,
                       spec.candle_files)
    return spec


def _progress_bar(total_hint: str) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(desc=total_hint, unit="candle", file=sys.stderr, leave=False)


def run_one(spec: BacktestSpec, args: argparse.Namespace) -> int:
    bar = _progress_bar(spec.bot)
    last = [0]

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n - last[0])
            last[0] = n

    result = run(spec, progress if bar is not None else None)
    if bar is not None:
        bar.close()
    out_dir = Path(args.out) if args.out else Path(".run") / "backtests" / spec.bot
    paths = result.write(out_dir)
    if args.csv:
        result.write_csv(Path(args.csv))
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        s = result.summary()
        print(f"{spec.bot} {','.join(spec.symbols)} {result.interval} {args.from_}..{args.to}: "
              f"{result.candles} candles in {result.elapsed_s:.2f} s")
        for key in ("trades", "win_rate", "profit_factor", "net_pnl", "fees", "funding", "max_drawdown",
                    "max_drawdown_pct_of_equity", "sharpe", "return_pct", "avg_holding_s", "exit_reasons",
                    "refused_entries", "strategy_errors"):
            print(f"  {key:28} {s[key]}")
        print(f"  report {paths['json']}  chart {paths['chart']}  trades {paths['csv']}")
    return 0


def _sweep_job(spec: BacktestSpec) -> dict[str, Any]:
    r = run(spec)
    return {"settings": dict(spec.settings), **r.summary(), "candles": r.candles, "elapsed_s": r.elapsed_s}


def run_sweep(spec: BacktestSpec, args: argparse.Namespace) -> int:
    axes = _pairs(args.sweep, "--sweep")
    names = [k for k, _ in axes]
    values = [[v for v in vs.split(",") if v] for _, vs in axes]
    specs, skipped = [], []
    for combo in itertools.product(*values):
        s = BacktestSpec(spec.bot, spec.symbols, spec.from_ms, spec.to_ms, spec.interval,
                    spec.settings + tuple(zip(names, combo)), spec.candle_files)
        try:
            build(s)
            specs.append(s)
        except BacktestConfigError as exc:
            skipped.append(f"{dict(zip(names, combo))}: {exc}")
    if not specs:
        raise BacktestConfigError(f"every combination of the sweep is invalid; first: {skipped[0]}")
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    workers = args.workers or os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    bar = _progress_bar(f"{spec.bot} sweep")
    if bar is not None:
        bar.total, bar.unit = len(specs), "run"
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for fut in as_completed([pool.submit(_sweep_job, s) for s in specs]):
            rows.append(fut.result())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    rows.sort(key=lambda r: float(r["net_pnl"]), reverse=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{len(rows)} runs on {workers} processes, best first:")
        for r in rows:
            print(f"  {r['settings']}  trades {r['trades']}  net {r['net_pnl']}  win {r['win_rate']}  "
                  f"max_dd {r['max_drawdown']}  sharpe {r['sharpe']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        spec = spec_from(args)
        return run_sweep(spec, args) if args.sweep else run_one(spec, args)
    except (BacktestUsageError, BacktestConfigError, UnknownBot, CandleError) as exc:
        msg = exc.args[0] if isinstance(exc, UnknownBot) else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return USAGE_EXIT
