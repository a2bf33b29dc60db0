"""ShortSeller's parameters: the defaults of ../shared/strategies.md, each overridable from the environment.

`SHORTSELLER_<FIELD>` sets a value for every traded symbol; `SHORTSELLER_<SYMBOL>_<FIELD>` sets it
for one symbol and wins over the former (e.g. `SHORTSELLER_STOP_LOSS_PCT=1.2`,
`SHORTSELLER_SOLUSDT_STOP_LOSS_PCT=2`). An empty value means "not set". Anything wrong (a value out of
range, a typo in a name, an override for a symbol the bot does not trade) is one line naming the
variable: `config_error(env)` returns it, `load_config()` prints it and exits 2.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from shared.settings import ConfigError, fail_config
from strategies.runtime.strategy import StrategyConfig

BOT_ID = "shortseller_001"
ENV_PREFIX = "SHORTSELLER_"
# Variables with our prefix that other settings groups read (the bot's key pair).
FOREIGN_VARS = frozenset({"SHORTSELLER_BYBIT_API_KEY", "SHORTSELLER_BYBIT_API_SECRET"})

# (stop_loss_pct, take_profit_pct, trail_distance_pct, trail_activation_pct), production values.
DEFAULT_EXITS: dict[str, tuple[str, str, str, str]] = {
    "BTCUSDT": ("1.0", "3.0", "1.0", "2.0"),
    "ETHUSDT": ("1.5", "4.5", "2.0", "2.0"),
    "SOLUSDT": ("1.5", "6.0", "2.0", "3.0"),
}
EXIT_FIELDS = ("stop_loss_pct", "take_profit_pct", "trail_distance_pct", "trail_activation_pct")
SYMBOL_RE = re.compile(r"[A-Z0-9]{2,20}USDT")

Pct = Annotated[Decimal, Field(gt=0, lt=100)]


class LadderStep(BaseModel):
    """Close `close_pct` % of the entry quantity once the short is `profit_pct` % in profit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profit_pct: Pct
    close_pct: Annotated[Decimal, Field(gt=0, le=100)]


class SymbolRules(BaseModel):
    """Every rule parameter of one symbol."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    ema_fast_len: Annotated[int, Field(ge=1, le=10_000)] = 240
    ema_slow_len: Annotated[int, Field(ge=1, le=10_000)] = 600
    require_ema_order: bool = False
    daily_cross_cap: Annotated[int, Field(ge=1)] = 12
    cooldown_s: Annotated[int, Field(ge=0)] = 3600
    max_hold_s: Annotated[int, Field(gt=0)] = 86400
    regime_exit_grace_s: Annotated[int, Field(ge=0)] = 3600
    wallet_fraction_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("7")
    leverage: Annotated[Decimal, Field(ge=1, le=100)] = Decimal("10")
    stop_loss_pct: Pct
    take_profit_pct: Pct
    trail_distance_pct: Pct
    trail_activation_pct: Annotated[Decimal, Field(ge=0, lt=100)]
    tp_ladder: tuple[LadderStep, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> SymbolRules:
        if self.ema_fast_len >= self.ema_slow_len:
            raise ValueError(f"ema_fast_len ({self.ema_fast_len}) must be below ema_slow_len ({self.ema_slow_len})")
        liquidation_pct = Decimal(100) / self.leverage
        if self.stop_loss_pct >= liquidation_pct:
            raise ValueError(f"stop_loss_pct {self.stop_loss_pct} is at or beyond the liquidation distance "
                             f"at leverage {self.leverage} ({liquidation_pct.normalize()} %)")
        levels = [step.profit_pct for step in self.tp_ladder]
        if levels != sorted(set(levels)):
            raise ValueError("tp_ladder levels must rise strictly")
        if levels and levels[-1] >= self.take_profit_pct:
            raise ValueError(f"tp_ladder level {levels[-1]} is not below take_profit_pct {self.take_profit_pct}")
        if sum((step.close_pct for step in self.tp_ladder), Decimal(0)) > 100:
            raise ValueError("tp_ladder closes more than 100 % of the position")
        return self


class RulesError(ValueError):
    """One symbol's rules are invalid: which symbol, which field (None: several), and why."""

    def __init__(self, symbol: str, field: str | None, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(f"{symbol} {field}: {message}" if field else f"{symbol}: {message}")
        self.symbol, self.field, self.message, self.missing = symbol, field, message, missing


def _interval(value: object) -> object:
    """The runtime's interval names ("5m"); Bybit's ("5") are accepted too."""
    if isinstance(value, str):
        v = value.strip()
        return BYBIT_TO_RUNTIME.get(v.upper(), v)
    return value


BYBIT_TO_RUNTIME = {"1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "240": "4h", "D": "1d"}
Interval = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]


class ShortSellerConfig(StrategyConfig):
    """The bot's settings. A rule field here applies to every symbol; `per_symbol` overrides it for
    one symbol; the exit fields default to each symbol's own values (DEFAULT_EXITS) when None.
    Constraints live in SymbolRules, checked for every symbol: `for_symbol` returns the result."""

    bot_id: str = BOT_ID
    symbols: tuple[str, ...] = tuple(DEFAULT_EXITS)
    interval: Annotated[Interval, BeforeValidator(_interval)] = "5m"
    ema_fast_len: int = 240
    ema_slow_len: int = 600
    require_ema_order: bool = False
    daily_cross_cap: int = 12
    cooldown_s: int = 3600
    max_hold_s: int = 86400
    regime_exit_grace_s: int = 3600
    wallet_fraction_pct: Decimal = Decimal("7")
    leverage: Decimal = Decimal("10")
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None
    trail_distance_pct: Decimal | None = None
    trail_activation_pct: Decimal | None = None
    tp_ladder: tuple[LadderStep, ...] = ()
    per_symbol: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # warm-up: bars after the EMA seed until its weight in the EMA is below this (1e-9: ~6,200 bars
    # for EMA 600, 21.5 days of 5m; the EMAs then no longer depend on where the history starts)
    ema_settle_tol: Annotated[float, Field(gt=0, lt=1)] = 1e-9
    _rules: tuple[SymbolRules, ...] = PrivateAttr(default=())

    @field_validator("tp_ladder", mode="before")
    @classmethod
    def _ladder_text(cls, v: object) -> object:
        """`1.5:50,2.5:25` (or its comma-split parts, as the backtest CLI passes a tuple)."""
        if isinstance(v, str):
            v = tuple(p for p in v.split(",") if p.strip())
        if isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v):
            steps = []
            for part in v:
                pieces = part.split(":")
                if len(pieces) != 2:
                    raise ValueError("each step is profit_pct:close_pct (e.g. 1.5:50,2.5:25)")
                steps.append({"profit_pct": pieces[0].strip(), "close_pct": pieces[1].strip()})
            return tuple(steps)
        return v

    @model_validator(mode="after")
    def _resolve(self) -> ShortSellerConfig:
        if not self.symbols:
            raise ValueError("no symbols to trade")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"a symbol is listed twice: {','.join(self.symbols)}")
        for symbol, fields in self.per_symbol.items():
            if symbol not in self.symbols:
                raise RulesError(symbol, None, f"has settings but is not traded (symbols {','.join(self.symbols)})")
            unknown = sorted(set(fields) - set(SYMBOL_FIELDS))
            if unknown:
                raise RulesError(symbol, unknown[0], "not a per-symbol setting")
        self._rules = tuple(self._symbol_rules(s) for s in self.symbols)
        return self

    def _symbol_rules(self, symbol: str) -> SymbolRules:
        values: dict[str, Any] = {"symbol": symbol}
        if symbol in DEFAULT_EXITS:
            values.update(zip(EXIT_FIELDS, (Decimal(v) for v in DEFAULT_EXITS[symbol]), strict=True))
        values.update({f: getattr(self, f) for f in SYMBOL_FIELDS if getattr(self, f) is not None})
        values.update(self.per_symbol.get(symbol, {}))
        missing = [f for f in EXIT_FIELDS if f not in values]
        if missing:
            raise RulesError(symbol, None, f"unknown symbol (known: {', '.join(DEFAULT_EXITS)}); to trade it set "
                                           f"its {', '.join(missing)}", tuple(missing))
        try:
            return SymbolRules.model_validate(values)
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            field = str(err["loc"][0]) if err["loc"] else None
            msg = str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
            raise RulesError(symbol, field, msg) from None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rules(self) -> tuple[SymbolRules, ...]:
        return self._rules

    def for_symbol(self, symbol: str) -> SymbolRules:
        for r in self._rules:
            if r.symbol == symbol:
                return r
        raise KeyError(f"{symbol} is not traded by {self.bot_id}")


SYMBOL_FIELDS = tuple(f for f in SymbolRules.model_fields if f != "symbol")
GLOBAL_ONLY_FIELDS = ("symbols", "interval")


def default_config() -> ShortSellerConfig:
    return ShortSellerConfig()


def env_var(field: str, symbol: str | None = None) -> str:
    return f"{ENV_PREFIX}{symbol}_{field.upper()}" if symbol else f"{ENV_PREFIX}{field.upper()}"


def _parse_bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var}={raw}: not a boolean (true or false)")


def _parse_int(var: str, raw: str) -> int:
    value = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ConfigError(f"{var}={raw}: not a whole number")
    return int(value)


def _parse_decimal(var: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ConfigError(f"{var}={raw}: not a number") from None
    if not value.is_finite():
        raise ConfigError(f"{var}={raw}: not a finite number")
    return value


def _parse_ladder(var: str, raw: str) -> tuple[dict[str, Decimal], ...]:
    """`profit_pct:close_pct,...`, e.g. `1.5:50,2.5:25`."""
    steps = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        pieces = part.split(":")
        if len(pieces) != 2:
            raise ConfigError(f"{var}={raw}: each step is profit_pct:close_pct (e.g. 1.5:50,2.5:25)")
        steps.append({"profit_pct": _parse_decimal(var, pieces[0]), "close_pct": _parse_decimal(var, pieces[1])})
    return tuple(steps)


def _parse_value(field: str, var: str, raw: str) -> object:
    annotation = SymbolRules.model_fields[field].annotation
    if field == "tp_ladder":
        return _parse_ladder(var, raw)
    if annotation is bool:
        return _parse_bool(var, raw)
    if annotation is int:
        return _parse_int(var, raw)
    return _parse_decimal(var, raw)


def _set(env: Mapping[str, str]) -> dict[str, str]:
    """Our variables with a value (an empty value is "not set")."""
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and v.strip() != ""}


def _symbols(env: Mapping[str, str]) -> tuple[str, ...]:
    var = env_var("symbols")
    raw = env.get(var)
    if raw is None:
        return tuple(DEFAULT_EXITS)
    symbols = tuple(s.strip().upper() for s in raw.split(",") if s.strip())
    if not symbols:
        raise ConfigError(f"{var}={raw}: no symbols")
    for s in symbols:
        if not SYMBOL_RE.fullmatch(s):
            raise ConfigError(f"{var}={raw}: {s!r} is not a USDT perpetual symbol (e.g. BTCUSDT)")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"{var}={raw}: a symbol is listed twice")
    return symbols


def _split_override(var: str) -> tuple[str, str] | None:
    """`SHORTSELLER_BTCUSDT_STOP_LOSS_PCT` -> ("BTCUSDT", "stop_loss_pct")."""
    rest = var[len(ENV_PREFIX):]
    for field in SYMBOL_FIELDS:
        suffix = "_" + field.upper()
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)], field
    return None


def _check_names(env: Mapping[str, str], symbols: tuple[str, ...]) -> None:
    known = {env_var(f) for f in (*GLOBAL_ONLY_FIELDS, *SYMBOL_FIELDS)} | FOREIGN_VARS
    for var in sorted(env):
        if var in known:
            continue
        split = _split_override(var)
        if split is None or not SYMBOL_RE.fullmatch(split[0]):
            raise ConfigError(f"{var}: unknown ShortSeller setting (see .env.example)")
        symbol, _ = split
        if symbol not in symbols:
            raise ConfigError(f"{var}: {symbol} is not traded ({env_var('symbols')}={','.join(symbols)})")


def parse_config(env: Mapping[str, str]) -> ShortSellerConfig:
    """The configuration from environment-like variables (others are ignored); ConfigError otherwise."""
    ours = _set(env)
    symbols = _symbols(ours)
    _check_names(ours, symbols)
    data: dict[str, Any] = {"symbols": symbols}
    per_symbol: dict[str, dict[str, Any]] = {}
    for var, raw in sorted(ours.items()):
        field = var[len(ENV_PREFIX):].lower()
        if var in FOREIGN_VARS or field == "symbols":
            continue
        if field == "interval":
            data[field] = raw
        elif field in SYMBOL_FIELDS:
            data[field] = _parse_value(field, var, raw)
        else:
            symbol, field = _split_override(var)  # type: ignore[misc]  # _check_names vouched for it
            per_symbol.setdefault(symbol, {})[field] = _parse_value(field, var, raw)
    data["per_symbol"] = per_symbol
    try:
        return ShortSellerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_env_line(exc, ours)) from None


def _env_line(exc: ValidationError, env: Mapping[str, str]) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    msg = str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    cause = err.get("ctx", {}).get("error")
    if not isinstance(cause, RulesError):
        var = env_var(str(err["loc"][0])) if err["loc"] else ENV_PREFIX + "*"
        return f"{var}={env[var]}: {msg}" if var in env else f"{var}: {msg}"
    sym = cause.symbol
    if cause.missing:
        return (f"{env_var('symbols')}: unknown symbol {sym} (known: {', '.join(DEFAULT_EXITS)}); to trade it "
                f"set {', '.join(env_var(f, sym) for f in cause.missing)}")
    if cause.field is not None:
        for var in (env_var(cause.field, sym), env_var(cause.field)):
            if var in env:
                return f"{var}={env[var]}: {cause.message}"
    return f"{sym}: {cause.message} (variables {env_var('*', sym)} or {env_var('*')})"


def config_error(env: Mapping[str, str]) -> str | None:
    """The one line describing what is wrong with this configuration, or None when it is valid."""
    try:
        parse_config(env)
    except ConfigError as exc:
        return str(exc)
    return None


def environment(dotenv_path: str = ".env") -> dict[str, str]:
    """The process environment over the `.env` file, as the other settings groups read it."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    merged.update(os.environ)
    return merged


def load_config() -> ShortSellerConfig:
    """For process start-up: the configuration, or one line on stderr and exit code 2."""
    try:
        return parse_config(environment())
    except ConfigError as exc:
        fail_config(exc)
