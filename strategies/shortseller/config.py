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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.settings import ConfigError, fail_config

BOT_ID = "shortseller_001"
ENV_PREFIX = "SHORTSELLER_"
# Variables with our prefix that other settings groups read (the bot's key pair).
FOREIGN_VARS = frozenset({"SHORTSELLER_BYBIT_API_KEY", "SHORTSELLER_BYBIT_API_SECRET"})
BYBIT_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
Interval = Literal["1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"]

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


class ShortSellerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = BOT_ID
    interval: Interval = "5"
    rules: tuple[SymbolRules, ...]

    @model_validator(mode="after")
    def _one_rule_set_per_symbol(self) -> ShortSellerConfig:
        if not self.rules:
            raise ValueError("no symbols to trade")
        symbols = [r.symbol for r in self.rules]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"a symbol is listed twice: {','.join(symbols)}")
        return self

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.rules)

    def for_symbol(self, symbol: str) -> SymbolRules:
        for r in self.rules:
            if r.symbol == symbol:
                return r
        raise KeyError(f"{symbol} is not traded by {self.bot_id}")


GLOBAL_ONLY_FIELDS = ("symbols", "interval")
SYMBOL_FIELDS = tuple(f for f in SymbolRules.model_fields if f != "symbol")
DEFAULT_SYMBOLS = tuple(DEFAULT_EXITS)


def default_config() -> ShortSellerConfig:
    return parse_config({})


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
        return DEFAULT_SYMBOLS
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


def _symbol_rules(env: Mapping[str, str], symbol: str) -> SymbolRules:
    values: dict[str, object] = {"symbol": symbol}
    source: dict[str, str] = {}
    if symbol in DEFAULT_EXITS:
        values.update({f: Decimal(v) for f, v in zip(EXIT_FIELDS, DEFAULT_EXITS[symbol], strict=True)})
    for field in SYMBOL_FIELDS:
        for var in (env_var(field, symbol), env_var(field)):
            if var in env:
                values[field] = _parse_value(field, var, env[var])
                source[field] = var
                break
    missing = [f for f in EXIT_FIELDS if f not in values]
    if missing:
        raise ConfigError(
            f"{env_var('symbols')}: unknown symbol {symbol} (known: {', '.join(DEFAULT_EXITS)}); to trade it "
            f"set {', '.join(env_var(f, symbol) for f in missing)}")
    try:
        return SymbolRules(**values)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
        if field in source:
            raise ConfigError(f"{source[field]}={env[source[field]]}: {msg}") from None
        if field:
            raise ConfigError(f"{symbol} {field}: {msg}") from None
        raise ConfigError(f"{symbol}: {msg} (variables {env_var('*', symbol)} or {env_var('*')})") from None


def parse_config(env: Mapping[str, str]) -> ShortSellerConfig:
    """The configuration from environment-like variables (others are ignored); ConfigError otherwise."""
    ours = _set(env)
    symbols = _symbols(ours)
    _check_names(ours, symbols)
    interval_var = env_var("interval")
    interval = ours.get(interval_var, "5").strip().upper()
    if interval not in BYBIT_INTERVALS:
        raise ConfigError(f"{interval_var}={ours[interval_var]}: not a Bybit interval ({', '.join(BYBIT_INTERVALS)})")
    return ShortSellerConfig(interval=interval, rules=tuple(_symbol_rules(ours, s) for s in symbols))


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
