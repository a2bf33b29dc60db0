"""One backtest from names and `key=value` settings: what the CLI, the sweep and the tests call."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from strategies.backtest.config import FillRules, RunSettings
from strategies.backtest.data import load_window, sim_instruments, warmup_ms
from strategies.backtest.engine import Backtest, execution_interval
from strategies.backtest.result import BacktestResult
from strategies.registry import lookup
from strategies.runtime.candles import INTERVAL_MS
from strategies.runtime.strategy import Strategy, StrategyConfig


class BacktestConfigError(ValueError):
    """Bad configuration; the message is one line for the operator."""


@dataclass(frozen=True)
class BacktestSpec:
    bot: str
    symbols: tuple[str, ...]
    from_ms: int
    to_ms: int
    interval: str | None = None  # execution interval; default the finest the strategy subscribes to
    settings: tuple[tuple[str, str], ...] = ()  # key=value: strategy config, fill rules or run settings
    candle_files: tuple[tuple[str, str], ...] = field(default=())  # symbol -> CSV instead of shipped data


def _coerce(cls: type[StrategyConfig], key: str, raw: str) -> Any:
    """Strings go to pydantic as they are (it converts them); tuple fields take comma lists."""
    annotation = cls.model_fields[key].annotation
    if getattr(annotation, "__origin__", annotation) is tuple:
        return tuple(x for x in raw.split(",") if x)
    return raw


def _one_line(exc: ValidationError) -> str:
    e = exc.errors()[0]
    where = ".".join(str(x) for x in e["loc"]) or "config"
    return f"{where}: {e['msg']}"


def build(spec: BacktestSpec) -> tuple[Strategy[Any], RunSettings]:
    cls, cfg_cls = lookup(spec.bot)
    if spec.interval is not None and spec.interval not in INTERVAL_MS:
        raise BacktestConfigError(f"unknown interval {spec.interval!r}; known: {', '.join(INTERVAL_MS)}")
    strat_kv: dict[str, Any] = {"symbols": spec.symbols} if spec.symbols else {}
    rules_kv: dict[str, Any] = {}
    run_kv: dict[str, Any] = {}
    for key, raw in spec.settings:
        if key in cfg_cls.model_fields:
            strat_kv[key] = _coerce(cfg_cls, key, raw)
        elif key in FillRules.model_fields:
            rules_kv[key] = raw
        elif key in RunSettings.model_fields and key != "rules":
            run_kv[key] = raw
        else:
            known = sorted(set(cfg_cls.model_fields) | set(FillRules.model_fields) | set(RunSettings.model_fields) - {"rules"})
            raise BacktestConfigError(f"unknown setting {key!r} for {spec.bot}; known: {', '.join(known)}")
    if spec.interval is not None and "interval" in cfg_cls.model_fields and "interval" not in strat_kv:
        strat_kv["interval"] = spec.interval
    try:
        config = cfg_cls.model_validate(strat_kv)
        settings = RunSettings.model_validate({**run_kv, "rules": FillRules.model_validate(rules_kv)})
    except ValidationError as exc:
        raise BacktestConfigError(f"{spec.bot}: {_one_line(exc)}") from None
    instruments = sim_instruments()
    if not config.symbols:
        raise BacktestConfigError(f"{spec.bot}: no symbols")
    unknown = [s for s in config.symbols if s not in instruments]
    if unknown:
        raise BacktestConfigError(f"unknown symbol(s) {', '.join(unknown)}; known: {', '.join(sorted(instruments))}")
    return cls(config), settings


def run(spec: BacktestSpec, progress: Callable[[int], None] | None = None,
        state: Mapping[str, Any] | None = None) -> BacktestResult:
    strategy, settings = build(spec)
    subs = list(strategy.subscriptions())
    interval = spec.interval or execution_interval(subs)
    symbols: Sequence[str] = sorted({s.symbol for s in subs})
    files = {k: Path(v) for k, v in spec.candle_files}
    candles = load_window(symbols, interval, spec.from_ms, spec.to_ms, warmup_ms(subs, settings.warmup_factor), files)
    bt = Backtest(strategy, candles, start_ms=spec.from_ms, settings=settings, instruments=sim_instruments(),
                  state=state)
    return bt.run(progress)
