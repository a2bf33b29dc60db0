"""What a strategy sees and may ask for: clock, bars, indicators, positions, equity, instrument
filters, persistent state, and the order API. Orders become `Decision`s collected here; the
runtime hands them to a venue adapter after the handler returns.

Entries (orders that are not reduce-only) pass the entry guards first: paused, symbol halted, then
each risk guard; a refusal is logged with its reason, counted, and announced as a notice.
Reduce-only exits are never refused.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from strategies.runtime.model import ZERO, Bar, Instrument, Notice, Position
from strategies.runtime.orders import (
    CancelAll, CancelOrder, Decision, Intent, PlaceOrder, SetLeverage, TradingStop, make_link_id,
)
from strategies.runtime.state import StrategyState

if TYPE_CHECKING:
    from strategies.runtime.guarding import RiskGate

log = structlog.get_logger()
COUNTER_KEY = "_order_counter"


class Feed(Protocol):
    def history(self, key: tuple[str, str]) -> Sequence[Bar]: ...

    def value(self, symbol: str, interval: str, name: str, ago: int = 0) -> float: ...


class Account(Protocol):
    """The venue adapter's view of the bot's account (reconciled; updated by its fills)."""

    def position(self, symbol: str) -> Position: ...

    def equity(self) -> Decimal: ...

    def balance(self) -> Decimal: ...

    def open_orders(self, symbol: str | None = None) -> list[PlaceOrder]: ...

    def last_price(self, symbol: str) -> Decimal: ...


class EntryGuard(Protocol):
    def check_entry(self, order: PlaceOrder, ctx: Context) -> str | None:
        """None to allow, else the reason for refusing."""


def to_decimal(x: float | int | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


class Context:
    def __init__(self, bot_id: str, feed: Feed, account: Account, instruments: Mapping[str, Instrument],
                 state: StrategyState, guards: Sequence[EntryGuard] = ()) -> None:
        self.bot_id = bot_id
        self.feed = feed
        self.account = account
        self.instruments = instruments
        self.state = state
        self.guards = list(guards)
        self.value = feed.value  # type: ignore[method-assign]
        self.risk: RiskGate | None = None
        self.now_ms = 0
        self.cause = ""  # the handler running now (set by the Runtime), recorded on each decision
        self.paused = False
        self.halted: set[str] = set()
        self.halted_all = False
        self.refusals: Counter[str] = Counter()
        self.decisions: list[Decision] = []
        self.notices: list[Notice] = []

    # --- market data -------------------------------------------------------------------------
    def bars(self, symbol: str, interval: str) -> Sequence[Bar]:
        return self.feed.history((symbol, interval))

    def value(self, symbol: str, interval: str, name: str, ago: int = 0) -> float:
        """An indicator declared in the subscription, at the last closed bar (`ago` bars back); NaN
        while warming up. (Bound to the feed's own method in __init__: the hottest call there is.)"""
        return self.feed.value(symbol, interval, name, ago)

    # --- account ------------------------------------------------------------------------------
    def position(self, symbol: str) -> Position:
        return self.account.position(symbol)

    def positions(self) -> list[Position]:
        return [p for p in (self.account.position(s) for s in self.instruments) if not p.is_flat]

    @property
    def equity(self) -> Decimal:
        return self.account.equity()

    @property
    def balance(self) -> Decimal:
        return self.account.balance()

    def open_orders(self, symbol: str | None = None) -> list[PlaceOrder]:
        return self.account.open_orders(symbol)

    def last_price(self, symbol: str) -> Decimal:
        return self.account.last_price(symbol)

    @property
    def size_factor(self) -> Decimal:
        """What the equity guards allow of a normal size now (1 = all of it)."""
        return self.risk.size_factor(self) if self.risk is not None else Decimal(1)

    def pending(self, symbol: str) -> list[Intent]:
        """Intents decided in this handler for the symbol, not sent yet."""
        return [d.intent for d in self.decisions if getattr(d.intent, "symbol", None) == symbol]

    # --- instrument filters -------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def floor_qty(self, symbol: str, qty: Decimal | float) -> Decimal:
        step = self.instruments[symbol].qty_step
        return (to_decimal(qty) / step).to_integral_value(ROUND_DOWN) * step

    def round_price(self, symbol: str, price: Decimal | float) -> Decimal:
        tick = self.instruments[symbol].tick_size
        return (to_decimal(price) / tick).to_integral_value(ROUND_HALF_EVEN) * tick

    def qty_for_notional(self, symbol: str, notional: Decimal, price: Decimal | float) -> Decimal:
        """Notional / price floored to the step; 0 when under the minimum quantity or notional."""
        inst = self.instruments[symbol]
        px = to_decimal(price)
        qty = self.floor_qty(symbol, notional / px)
        if qty < inst.min_order_qty or (inst.min_notional is not None and qty * px < inst.min_notional):
            return ZERO
        return qty

    # --- orders -------------------------------------------------------------------------------
    def next_link_id(self, reason: str) -> str:
        n = self.state.incr(COUNTER_KEY)
        return make_link_id(self.bot_id, reason, n)

    def market(self, symbol: str, side: str, qty: Decimal, *, reason: str, reduce_only: bool = False,
               stop_loss: Decimal | float = ZERO, take_profit: Decimal | float = ZERO) -> str | None:
        return self._place(symbol, side, qty, reason, "Market", None, reduce_only, "IOC", stop_loss, take_profit)

    def limit(self, symbol: str, side: str, qty: Decimal, price: Decimal | float, *, reason: str,
              reduce_only: bool = False, post_only: bool = False,
              stop_loss: Decimal | float = ZERO, take_profit: Decimal | float = ZERO) -> str | None:
        return self._place(symbol, side, qty, reason, "Limit", self.round_price(symbol, price), reduce_only,
                           "PostOnly" if post_only else "GTC", stop_loss, take_profit)

    def close(self, symbol: str, *, reason: str) -> str | None:
        """Reduce-only market order for the whole position (nothing when flat)."""
        pos = self.position(symbol)
        if pos.is_flat:
            return None
        return self.market(symbol, "Sell" if pos.qty > 0 else "Buy", abs(pos.qty), reason=reason, reduce_only=True)

    def set_stops(self, symbol: str, *, stop_loss: Decimal | float | None = None,
                  take_profit: Decimal | float | None = None, trailing_stop: Decimal | float | None = None,
                  active_price: Decimal | float | None = None) -> None:
        """Set or move the position's exchange-side stops (trading-stop); 0 removes one."""
        r = self.round_price
        self._decide(TradingStop(
            symbol, None if stop_loss is None else r(symbol, stop_loss),
            None if take_profit is None else r(symbol, take_profit),
            None if trailing_stop is None else r(symbol, trailing_stop),
            None if active_price is None else r(symbol, active_price)))

    def cancel(self, symbol: str, order_link_id: str) -> None:
        self._decide(CancelOrder(symbol, order_link_id))

    def cancel_all(self, symbol: str | None = None) -> None:
        self._decide(CancelAll(symbol))

    def set_leverage(self, symbol: str, leverage: Decimal | int) -> None:
        self._decide(SetLeverage(symbol, to_decimal(leverage)))

    def emit(self, kind: str, **data: Any) -> None:
        self.notices.append(Notice(self.now_ms, kind, data))

    def _decide(self, intent: Intent) -> None:
        self.decisions.append(Decision(self.now_ms, intent, self.cause))

    def _place(self, symbol: str, side: str, qty: Decimal, reason: str, order_type: str, price: Decimal | None,
               reduce_only: bool, tif: str, stop_loss: Decimal | float, take_profit: Decimal | float) -> str | None:
        if side not in ("Buy", "Sell"):
            raise ValueError(f"side must be Buy or Sell, got {side!r}")
        if symbol not in self.instruments:
            raise ValueError(f"{symbol} is not traded by {self.bot_id} (data-only or unknown)")
        qty = self.floor_qty(symbol, qty)
        if qty <= 0:
            raise ValueError(f"{symbol}: order quantity rounds to 0 at step {self.instruments[symbol].qty_step}")
        sl = self.round_price(symbol, stop_loss) if stop_loss else ZERO
        tp = self.round_price(symbol, take_profit) if take_profit else ZERO
        order = PlaceOrder(symbol, side, qty, "", reason, order_type, price, reduce_only, tif, sl, tp)
        if not reduce_only:
            refusal = self._entry_refusal(order)
            if refusal is not None:
                self.refusals[refusal] += 1
                log.info("entry_refused", bot_id=self.bot_id, symbol=symbol, side=side, qty=str(qty),
                         reason=reason, refusal=refusal)
                self.emit("order_refused", symbol=symbol, side=side, qty=str(qty), reason=reason, refusal=refusal)
                return None
        link = self.next_link_id(reason)
        self._decide(PlaceOrder(symbol, side, qty, link, reason, order_type, price, reduce_only, tif, sl, tp))
        return link

    def _entry_refusal(self, order: PlaceOrder) -> str | None:
        if self.paused:
            return "paused"
        if self.halted_all or order.symbol in self.halted:
            return "halted"
        for guard in self.guards:
            why = guard.check_entry(order, self)
            if why is not None:
                return why
        return None
