"""Order intents: what a strategy decided, executed later by a venue adapter (no IO here).

Every order gets `orderLinkId = {bot_id}-{reason}-{unique}` (docs/contracts.md): at most 36
characters of [A-Za-z0-9_-]. `unique` is a per-bot counter in base 36, persisted in the strategy's
state before the order is sent, so a restarted bot never reuses an id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from strategies.runtime.model import ZERO

MAX_LINK_ID = 36
_REASON = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    if n < 0:
        raise ValueError("counter must be >= 0")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def make_link_id(bot_id: str, reason: str, counter: int) -> str:
    if not _REASON.match(reason):
        raise ValueError(f"order reason {reason!r}: 1-16 characters of [A-Za-z0-9_]")
    link = f"{bot_id}-{reason}-{base36(counter)}"
    if not _LINK_ID.match(link):
        raise ValueError(f"orderLinkId {link!r} is longer than {MAX_LINK_ID} or has characters outside "
                         "[A-Za-z0-9_-]; use a shorter reason")
    return link


def reason_of(link_id: str, bot_id: str) -> str:
    """The `{reason}` part of one of this bot's ids ('' for ids that are not ours)."""
    prefix = bot_id + "-"
    if not link_id.startswith(prefix):
        return ""
    return link_id[len(prefix):].rsplit("-", 1)[0]


@dataclass(frozen=True)
class PlaceOrder:
    """Market or limit order. stop_loss / take_profit set the position's stops when it fills
    (tpslMode Full, as Bybit's order create)."""

    symbol: str
    side: str  # Buy | Sell
    qty: Decimal
    order_link_id: str
    reason: str
    order_type: str = "Market"  # Market | Limit
    price: Decimal | None = None
    reduce_only: bool = False
    time_in_force: str = "GTC"  # GTC | IOC | PostOnly (limits); markets are IOC
    stop_loss: Decimal = ZERO
    take_profit: Decimal = ZERO


@dataclass(frozen=True)
class TradingStop:
    """`POST /v5/position/trading-stop`: set or move the position's stops (None = leave as is,
    0 = remove). trailing_stop is a price distance; active_price arms it (0 = at once)."""

    symbol: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    active_price: Decimal | None = None


@dataclass(frozen=True)
class CancelOrder:
    symbol: str
    order_link_id: str


@dataclass(frozen=True)
class CancelAll:
    symbol: str | None = None


@dataclass(frozen=True)
class SetLeverage:
    symbol: str
    leverage: Decimal


Intent = PlaceOrder | TradingStop | CancelOrder | CancelAll | SetLeverage


@dataclass(frozen=True)
class Decision:
    """An intent with the time it was decided (the look-ahead guard compares these) and the handler
    that decided it (`on_bar`, `on_fill`, ...; not part of equality)."""

    time_ms: int
    intent: Intent
    cause: str = field(default="", compare=False)
