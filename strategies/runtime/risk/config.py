"""Typed, frozen risk configuration. Percentages are of equity; money in USDT as Decimal."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum


class GuardWindow(StrEnum):
    """What an equity guard measures its loss against."""

    DAY = "day"  # equity at the first update at or after 00:00 UTC
    WEEK = "week"  # ... after Monday 00:00 UTC
    MONTH = "month"  # ... after the 1st, 00:00 UTC
    PEAK = "peak"  # the highest equity seen (drawdown)


class Action(StrEnum):
    BLOCK_ENTRIES = "block_entries"  # entries refused; positions kept
    SCALE_SIZE = "scale_size"  # entries allowed at size x size_factor
    HALT = "halt"  # entries refused, reported as a halt; positions kept
    FLATTEN_AND_HALT = "flatten_and_halt"  # the runtime closes every position; entries refused


class Until(StrEnum):
    """When a tripped guard lifts by itself."""

    NEXT_DAY = "next_day"  # 00:00 UTC after the trip
    NEXT_WEEK = "next_week"  # Monday 00:00 UTC after the trip
    NEXT_MONTH = "next_month"  # the 1st, 00:00 UTC after the trip
    MANUAL = "manual"  # only RiskGuards.resume()
    RECOVERY = "recovery"  # equity back to reference - recovery_fraction x the window's worst loss
    # (or the window rolls over); SCALE_SIZE and BLOCK_ENTRIES only


@dataclass(frozen=True, slots=True)
class EquityGuard:
    """Trips when equity is down ``loss_pct`` or more from the window's reference (inclusive:
    exactly at the threshold trips)."""

    name: str
    window: GuardWindow
    loss_pct: Decimal
    action: Action
    until: Until
    size_factor: Decimal = Decimal(1)
    recovery_fraction: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"guard name must be letters, digits and '_', got {self.name!r}")
        _decimal(self.loss_pct, f"{self.name}.loss_pct", low=Decimal(0), high=Decimal(100), open_low=True)
        for name, kind in (("window", GuardWindow), ("action", Action), ("until", Until)):
            object.__setattr__(self, name, kind(getattr(self, name)))  # "day" as well as Window.DAY
        if self.action is Action.SCALE_SIZE:
            _decimal(self.size_factor, f"{self.name}.size_factor", low=Decimal(0), high=Decimal(1), open_low=True)
        if self.until is Until.RECOVERY:
            if self.action not in (Action.SCALE_SIZE, Action.BLOCK_ENTRIES):
                raise ValueError(f"{self.name}: until=recovery suits scale_size or block_entries only")
            if self.window is GuardWindow.PEAK:
                raise ValueError(f"{self.name}: until=recovery needs a day, week or month window")
            _decimal(self.recovery_fraction, f"{self.name}.recovery_fraction", low=Decimal(0), high=Decimal(1))


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Every limit is off when None. Blocks of ``entry_block_h`` hours are aligned on 00:00 UTC."""

    max_open_positions: int | None = None
    one_position_per_symbol: bool = True
    max_order_notional_usdt: Decimal | None = None
    max_symbol_notional_usdt: Decimal | None = None
    max_leverage: Decimal | None = None  # the exchange leverage setting (check_leverage)
    max_gross_leverage: Decimal | None = None  # sum of position notionals / equity, at entry
    symbol_cooldown_s: int | None = None  # after each entry on a symbol
    entry_block_h: int | None = None  # one entry per symbol per block
    max_entries_per_day: int | None = None  # all symbols, reset 00:00 UTC
    equity_guards: tuple[EquityGuard, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("max_open_positions", "symbol_cooldown_s", "entry_block_h", "max_entries_per_day"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None, got {v!r}")
        if self.entry_block_h is not None and 24 % self.entry_block_h:
            raise ValueError(f"entry_block_h must divide 24 (blocks align on 00:00 UTC), got {self.entry_block_h}")
        for name in ("max_order_notional_usdt", "max_symbol_notional_usdt", "max_leverage", "max_gross_leverage"):
            v = getattr(self, name)
            if v is not None:
                _decimal(v, name, low=Decimal(0), open_low=True)
        names = [g.name for g in self.equity_guards]
        if len(set(names)) != len(names):
            raise ValueError(f"equity guard names must be unique, got {names}")

    @property
    def symbol_cooldown(self) -> timedelta | None:
        return None if self.symbol_cooldown_s is None else timedelta(seconds=self.symbol_cooldown_s)


def _decimal(v: object, name: str, *, low: Decimal | None = None, high: Decimal | None = None,
             open_low: bool = False) -> None:
    if not isinstance(v, Decimal) or not v.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {v!r}")
    if low is not None and (v < low or (open_low and v == low)):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {v}")
