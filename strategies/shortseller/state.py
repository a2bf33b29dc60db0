"""What ShortSeller must remember across a restart, as one typed record with JSON in and out (pure).

The original lost its cooldowns, cross counts, previous-bar values and entry times on every
restart; all of them are here, per symbol. Records are immutable: `with_symbol` returns a new state.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import msgspec

from strategies.shortseller.signals import BarValues, DailyCrosses, ExitLevels, Regime

STATE_VERSION = 1


class StateError(ValueError):
    """Persisted state that cannot be read, phrased as one line."""


def _require_utc(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() != timezone.utc.utcoffset(None)):
        raise ValueError(f"{name} must be a UTC time, got {value.isoformat()}")


class TradePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An open short: when and at what it was entered, its exit levels, its ladder progress."""

    entry_time: datetime  # the fill's time, or the exchange's created time of an adopted position
    entry_price: Decimal
    entry_qty: Decimal
    levels: ExitLevels
    ladder_steps_done: int = 0
    adopted: bool = False  # found open on the exchange at start, not entered by this bot's run
    entry_link_id: str | None = None
    fees: Decimal = Decimal(0)  # paid on this trade's fills so far
    realized_pnl: Decimal = Decimal(0)  # gross, on the quantity closed so far
    exit_reason: str | None = None  # of the first fill that reduced the position
    last_exit_at: datetime | None = None  # time of the latest fill that reduced it

    def __post_init__(self) -> None:
        _require_utc("entry_time", self.entry_time)
        _require_utc("last_exit_at", self.last_exit_at)
        if self.entry_price <= 0 or self.entry_qty <= 0:
            raise ValueError("entry_price and entry_qty must be positive")
        if self.ladder_steps_done < 0:
            raise ValueError("ladder_steps_done must not be negative")


class PendingEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An entry order sent and not filled yet (the symbol is not flat for the entry rule)."""

    link_id: str
    decided_at: datetime
    qty: Decimal
    levels: ExitLevels  # from the decision close; the fill price replaces them

    def __post_init__(self) -> None:
        _require_utc("decided_at", self.decided_at)


class SymbolState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    last_bar_at: datetime | None = None  # close time of the bar `last_bar` describes
    last_bar: BarValues | None = None  # the previous bar, for the next bar's cross
    regime: Regime | None = None  # at the last bar, to report changes
    crosses: DailyCrosses | None = None
    last_entry_at: datetime | None = None  # the cooldown runs from here
    position: TradePlan | None = None
    pending_entry: PendingEntry | None = None

    def __post_init__(self) -> None:
        _require_utc("last_bar_at", self.last_bar_at)
        _require_utc("last_entry_at", self.last_entry_at)
        if (self.last_bar_at is None) != (self.last_bar is None):
            raise ValueError("last_bar and last_bar_at go together")
        if self.crosses is not None and self.crosses.count < 0:
            raise ValueError("a cross count must not be negative")


EMPTY = SymbolState()


def symbol_to_builtins(state: SymbolState) -> dict[str, object]:
    """One symbol's state as plain JSON values (Decimals as strings, times ISO), for a key/value store."""
    return msgspec.to_builtins(state)  # type: ignore[no-any-return]


def symbol_from_builtins(value: object) -> SymbolState:
    try:
        return msgspec.convert(value, SymbolState, strict=True)
    except msgspec.ValidationError as exc:
        raise StateError(f"ShortSeller state is unreadable: {exc}") from None


class ShortSellerState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int = STATE_VERSION
    symbols: dict[str, SymbolState] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version != STATE_VERSION:
            raise ValueError(f"state version {self.version} is not {STATE_VERSION}")

    def symbol(self, symbol: str) -> SymbolState:
        return self.symbols.get(symbol, EMPTY)

    def with_symbol(self, symbol: str, state: SymbolState) -> ShortSellerState:
        return ShortSellerState(version=self.version, symbols={**self.symbols, symbol: state})

    def to_json(self) -> str:
        return msgspec.json.encode(self, order="sorted").decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> ShortSellerState:
        try:
            return msgspec.json.decode(raw, type=cls, strict=True)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise StateError(f"ShortSeller state is unreadable: {exc}") from None
