"""The backtest account: wallet, positions, resting orders, and every execution, all in Decimal.

Position arithmetic is the simulated venue's (services/bybit_sim/engine.py `_fill`): the average
entry is quantised to 1e-8 when adding, a fill that crosses zero opens the remainder at its price,
realised PnL and fees go to the wallet at once, funding is charged on |qty| x price x rate. Every
execution is also kept as a `shared.analytics` Fill, so the metrics are /performance's own code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from services.bybit_sim import triggers
from services.bybit_sim.triggers import TrailState
from shared.analytics.fills import LedgerFill
from strategies.backtest.config import RunSettings
from strategies.runtime.model import ZERO, BotFill, Instrument, Position
from strategies.runtime.orders import PlaceOrder

AVG_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True)
class Trade:
    """One round trip, flat to flat; exit_reason is the reason of the order that made it flat."""

    symbol: str
    side: str  # long | short
    qty: Decimal
    entry_ms: int
    exit_ms: int
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    funding: Decimal
    pnl: Decimal  # realised, before fees and funding
    exit_reason: str

    @property
    def net(self) -> Decimal:
        return self.pnl - self.fees - self.funding

    @property
    def holding_s(self) -> int:
        return (self.exit_ms - self.entry_ms) // 1000


@dataclass
class _Trip:
    side: str
    opened_ms: int
    entry_qty: Decimal = ZERO
    entry_value: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_value: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    pnl: Decimal = ZERO


@dataclass
class PosState:
    symbol: str
    leverage: Decimal
    qty: Decimal = ZERO
    avg: Decimal = ZERO
    opened_ms: int | None = None
    sl: Decimal = ZERO
    tp: Decimal = ZERO
    trail: Decimal = ZERO
    trail_active: Decimal = ZERO
    trail_state: TrailState = TrailState(False, ZERO)
    prio: dict[str, int] = field(default_factory=dict)  # when each stop was created (ties: older first)
    trip: _Trip | None = None
    snapshot: Position | None = None

    @property
    def side(self) -> str:
        return "Buy" if self.qty > 0 else "Sell"


@dataclass
class Resting:
    order: PlaceOrder
    placed_ms: int
    seq: int


@dataclass
class Book:
    bot_id: str
    instruments: dict[str, Instrument]
    settings: RunSettings
    cash: Decimal = ZERO
    positions: dict[str, PosState] = field(default_factory=dict)
    resting: dict[str, list[Resting]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # last traded price (a close or a fill)
    ledger_rows: list[tuple[str, str, str, Decimal, Decimal, int, Decimal]] = field(default_factory=list)
    cash_f: float = 0.0
    open_f: dict[str, tuple[float, float]] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    fills: list[BotFill] = field(default_factory=list)

    priority: int = 0

    def next_priority(self) -> int:
        """Creation order of orders and position stops, as the venue's `priority`."""
        self.priority += 1
        return self.priority

    def set_stop(self, symbol: str, kind: str, level: Decimal, active_price: Decimal = ZERO,
                 market: Decimal = ZERO) -> None:
        """Set, move (same priority) or, with 0, remove one of the position's TP / SL / trailing stop."""
        p = self.positions[symbol]
        attr = {"TakeProfit": "tp", "StopLoss": "sl", "TrailingStop": "trail"}[kind]
        if not level:
            setattr(p, attr, ZERO)
            p.prio.pop(kind, None)
        else:
            if not getattr(p, attr):
                p.prio[kind] = self.next_priority()
            setattr(p, attr, level)
            if kind == "TrailingStop":  # as the venue: active at once if the price is already there
                p.trail_active = active_price
                at = triggers.trail_activates(p.side, active_price, market, market, True)
                p.trail_state = TrailState(at is not None, market if at is not None else ZERO)
        p.snapshot = None

    def __post_init__(self) -> None:
        self.cash = self.settings.initial_balance
        self.cash_f = float(self.cash)
        for s in self.instruments:
            self.positions[s] = PosState(s, self.settings.leverage)
            self.resting[s] = []

    # --- Account protocol ---------------------------------------------------------------------
    def position(self, symbol: str) -> Position:
        p = self.positions[symbol]
        if p.snapshot is None:
            p.snapshot = Position(symbol, p.qty, p.avg, p.opened_ms, p.sl, p.tp, p.trail, p.trail_active, p.leverage)
        return p.snapshot

    def balance(self) -> Decimal:
        return self.cash

    def equity(self) -> Decimal:
        eq = self.cash
        for s, p in self.positions.items():
            if p.qty:
                eq += p.qty * (Decimal(repr(self.last[s])) - p.avg)
        return eq

    def equity_float(self) -> float:
        """Equity for the curve: floats, open positions only (called on every candle)."""
        eq = self.cash_f
        for s, (q, avg) in self.open_f.items():
            eq += q * (self.last[s] - avg)
        return eq

    def last_price(self, symbol: str) -> Decimal:
        return Decimal(repr(self.last[symbol]))

    def open_orders(self, symbol: str | None = None) -> list[PlaceOrder]:
        syms = [symbol] if symbol is not None else list(self.resting)
        return [r.order for s in syms for r in self.resting[s]]

    def available(self) -> Decimal:
        im = sum((abs(p.qty) * p.avg / p.leverage for p in self.positions.values() if p.qty), ZERO)
        for s, rs in self.resting.items():
            lev = self.positions[s].leverage
            im += sum((r.order.qty * (r.order.price or ZERO) / lev for r in rs if not r.order.reduce_only), ZERO)
        return max(self.equity() - im, ZERO)

    # --- changes ------------------------------------------------------------------------------
    def closing_capacity(self, symbol: str, side: str) -> Decimal:
        q = self.positions[symbol].qty
        if q > 0 and side == "Sell":
            return q
        if q < 0 and side == "Buy":
            return -q
        return ZERO

    def fill(self, symbol: str, side: str, qty: Decimal, price: Decimal, is_maker: bool, time_ms: int,
             link_id: str, reason: str, stop_type: str = "") -> BotFill:
        p = self.positions[symbol]
        rules = self.settings.rules
        fee = qty * price * (rules.maker_fee if is_maker else rules.taker_fee)
        signed = qty if side == "Buy" else -qty
        closing = min(qty, self.closing_capacity(symbol, side))
        pnl = closing * (price - p.avg) * (1 if p.qty > 0 else -1) if closing else ZERO
        new_qty = p.qty + signed
        if p.qty == 0:
            p.avg, p.opened_ms = price, time_ms
            p.trip = _Trip("long" if signed > 0 else "short", time_ms)
            self._add_entry(p.trip, qty, price, fee)
        elif closing == 0:
            p.avg = ((abs(p.qty) * p.avg + qty * price) / abs(new_qty)).quantize(AVG_QUANTUM)
            self._add_entry(p.trip, qty, price, fee)  # type: ignore[arg-type]
        else:
            close_fee = fee if closing == qty else fee * closing / qty
            trip = p.trip
            assert trip is not None
            trip.exit_qty += closing
            trip.exit_value += closing * price
            trip.fees += close_fee
            trip.pnl += pnl
            if new_qty == 0 or closing < qty:
                self._close_trip(symbol, trip, time_ms, reason)
                p.trip = None
            if closing < qty:  # flip: the remainder opens at this price
                p.avg, p.opened_ms = price, time_ms
                p.trip = _Trip("long" if signed > 0 else "short", time_ms)
                self._add_entry(p.trip, qty - closing, price, fee - close_fee)
        p.qty = new_qty
        if closing and (new_qty == 0 or closing < qty):  # closed or flipped: its TP/SL/TS go
            p.sl = p.tp = p.trail = p.trail_active = ZERO
            p.trail_state = TrailState(False, ZERO)
            p.prio.clear()
        if new_qty == 0:
            p.avg, p.opened_ms = ZERO, None
            self.resting[symbol] = [r for r in self.resting[symbol] if not r.order.reduce_only]
        p.snapshot = None
        self.cash += pnl - fee
        self.cash_f = float(self.cash)
        if new_qty:
            self.open_f[symbol] = (float(new_qty), float(p.avg))
        else:
            self.open_f.pop(symbol, None)
        self.last[symbol] = float(price)
        fill = BotFill(symbol, side, qty, price, fee, time_ms, link_id, reason, is_maker, "Trade", stop_type)
        self.fills.append(fill)
        self._ledger("Trade", symbol, side, price, qty, time_ms, fee)
        return fill

    def settle_funding(self, symbol: str, price: Decimal, time_ms: int) -> Decimal:
        p = self.positions[symbol]
        if not p.qty:
            return ZERO
        fee = abs(p.qty) * price * self.settings.rules.funding_rate * (1 if p.qty > 0 else -1)
        self.cash -= fee
        self.cash_f = float(self.cash)
        if p.trip is not None:
            p.trip.funding += fee
        self._ledger("Funding", symbol, p.side, price, abs(p.qty), time_ms, fee)
        return fee

    @staticmethod
    def _add_entry(trip: _Trip, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        trip.entry_qty += qty
        trip.entry_value += qty * price
        trip.fees += fee

    def _close_trip(self, symbol: str, t: _Trip, time_ms: int, reason: str) -> None:
        self.trades.append(Trade(symbol, t.side, t.entry_qty, t.opened_ms, time_ms, t.entry_value / t.entry_qty,
                                 t.exit_value / t.exit_qty, t.fees, t.funding, t.pnl, reason))

    def _ledger(self, kind: str, symbol: str, side: str, price: Decimal, qty: Decimal, time_ms: int,
                fee: Decimal) -> None:
        self.ledger_rows.append((kind, symbol, side, price, qty, time_ms, fee))

    def ledger(self) -> list[LedgerFill]:
        """Every execution (trades and funding) as the accounting's Fill records, in order."""
        return [LedgerFill(self.bot_id, sym, f"bt-{n:010d}", kind, side, price, qty,
                           datetime.fromtimestamp(t / 1000, timezone.utc), fee, n)
                for n, (kind, sym, side, price, qty, t, fee) in enumerate(self.ledger_rows, 1)]
