"""The records a strategy sees: closed bars, its own fills, its positions, control commands, notices.

Prices of bars are floats (what indicators read); everything that is money or quantity is Decimal.
Times are UTC epoch milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple

from shared.bybit.records import Instrument

__all__ = ["Bar", "BotFill", "Position", "Control", "Notice", "Rejection", "Instrument", "ZERO", "STOP_REASONS"]

ZERO = Decimal(0)
# Reason recorded for fills of orders the exchange creates itself (position TP/SL, trailing stop).
STOP_REASONS = {"StopLoss": "sl", "TakeProfit": "tp", "TrailingStop": "trail"}


class Bar(NamedTuple):
    """One closed candle of (symbol, interval); `close_ms` is when it closed (the decision time)."""

    symbol: str
    interval: str
    start_ms: int
    close_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class BotFill:
    """One of the bot's own executions. `reason` is the order's reason (the `{reason}` part of its
    orderLinkId), or sl / tp / trail for orders the exchange made from a position's stops."""

    symbol: str
    side: str  # Buy | Sell
    qty: Decimal
    price: Decimal
    fee: Decimal  # positive = paid
    time_ms: int
    order_link_id: str
    reason: str
    is_maker: bool = False
    exec_type: str = "Trade"
    stop_order_type: str = ""

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "Buy" else -self.qty


@dataclass(frozen=True)
class Position:
    """The bot's position in one symbol: `qty` signed (long > 0), exchange-side stops as set."""

    symbol: str
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    opened_ms: int | None = None  # the exchange's created time; an adopted position keeps it
    stop_loss: Decimal = ZERO
    take_profit: Decimal = ZERO
    trailing_stop: Decimal = ZERO  # distance in price; 0 = none
    trailing_active_price: Decimal = ZERO
    leverage: Decimal = Decimal(10)

    @property
    def is_flat(self) -> bool:
        return self.qty == ZERO

    @property
    def side(self) -> str:
        return "Buy" if self.qty > ZERO else "Sell" if self.qty < ZERO else ""


class Control(str, Enum):
    PAUSE = "pause"
    RESUME = "resume"
    FLATTEN = "flatten"


@dataclass(frozen=True)
class Notice:
    """Something worth telling an operator (entry, exit, guard tripped, strategy error, ...)."""

    time_ms: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """An order or stop change the venue refused (or the runtime refused before sending)."""

    time_ms: int
    symbol: str
    order_link_id: str
    code: int
    message: str
