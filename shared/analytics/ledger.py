"""Average-cost accounting of one (bot, symbol) over fills in execution order.

The state is the signed open quantity and the signed open cost (quantity x average entry). Adding
to a position adds `qty x price` to the cost; reducing it releases cost pro rata; crossing zero
closes the old position in full and opens the remainder at the fill price. Realised PnL of a fill is
`cash + open_cost_after - open_cost_before`, where cash is `+qty x price` for a sell and
`-qty x price` for a buy, so realised PnL up to any instant equals the cash flow up to it plus the
open cost at it. Fees and funding are costs kept apart from the gross figure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from shared.analytics.fills import LedgerFill

ZERO = Decimal(0)


@dataclass(frozen=True)
class RoundTrip:
    """A position's life from flat to flat; a win when its net PnL (after fees, funding) is > 0."""

    bot_id: str
    symbol: str
    direction: str  # "long" | "short"
    opened_at: datetime
    closed_at: datetime
    realised: Decimal
    fees: Decimal
    funding: Decimal
    trade_count: int

    @property
    def net(self) -> Decimal:
        return self.realised - self.fees - self.funding

    @property
    def holding_s(self) -> Decimal:
        held = self.closed_at - self.opened_at
        return Decimal(held.days * 86400 + held.seconds) + Decimal(held.microseconds) / 1_000_000


@dataclass(frozen=True)
class FillEffect:
    """What one fill did to the books."""

    fill: LedgerFill
    realised: Decimal
    fee: Decimal
    funding: Decimal
    position_after: Decimal
    open_cost_after: Decimal
    closed_trip: RoundTrip | None

    @property
    def net(self) -> Decimal:
        return self.realised - self.fee - self.funding


@dataclass(frozen=True)
class OpenPosition:
    bot_id: str
    symbol: str
    qty: Decimal
    open_cost: Decimal
    opened_at: datetime

    @property
    def avg_entry(self) -> Decimal:
        return self.open_cost / self.qty

    @property
    def side(self) -> str:
        return "Buy" if self.qty > 0 else "Sell"

    def unrealised(self, mark: Decimal) -> Decimal:
        return self.qty * mark - self.open_cost


@dataclass
class SymbolLedger:
    """Mutable books of one (bot, symbol); feed it fills in execution order."""

    bot_id: str
    symbol: str
    qty: Decimal = ZERO
    open_cost: Decimal = ZERO
    opened_at: datetime | None = None
    direction: str = ""
    trip_realised: Decimal = ZERO
    trip_fees: Decimal = ZERO
    trip_funding: Decimal = ZERO
    trip_trades: int = 0
    last_key: tuple[datetime, int, str] | None = field(default=None)

    def apply(self, fill: LedgerFill) -> FillEffect:
        if self.last_key is not None and fill.sort_key < self.last_key:
            raise ValueError(f"fill {fill.exec_id} is older than the last applied fill")
        self.last_key = fill.sort_key
        if fill.is_funding:
            return self._apply_funding(fill)
        if not fill.moves_position or fill.exec_qty == ZERO:
            return self._effect(fill, ZERO, fill.commission, ZERO, None)
        return self._apply_trade(fill)

    def _apply_funding(self, fill: LedgerFill) -> FillEffect:
        if self.qty != ZERO:
            self.trip_funding += fill.commission
        return self._effect(fill, ZERO, ZERO, fill.commission, None)

    def _apply_trade(self, fill: LedgerFill) -> FillEffect:
        q = fill.signed_qty
        price = fill.exec_price
        fee = fill.commission
        cost_before = self.open_cost
        cash = -q * price
        closed: RoundTrip | None = None
        if self.qty == ZERO or (self.qty > ZERO) == (q > ZERO):
            self._open_more(fill, q, price, fee)
        elif abs(q) < abs(self.qty):
            remaining = self.qty + q
            self.open_cost = self.open_cost * remaining / self.qty
            self.qty = remaining
            self._add_to_trip(cash, fee)
        else:
            close_qty = abs(self.qty)
            close_fee = fee if abs(q) == close_qty else fee * close_qty / abs(q)
            close_cash = -price * (close_qty if q > ZERO else -close_qty)
            self.open_cost = ZERO
            self.qty = ZERO
            self._add_to_trip(close_cash, close_fee)
            closed = self._close_trip(fill.exec_time)
            rest = q + (close_qty if q < ZERO else -close_qty)
            if rest != ZERO:
                self._open_more(fill, rest, price, fee - close_fee)
        realised = cash + self.open_cost - cost_before
        return self._effect(fill, realised, fee, ZERO, closed)

    def _open_more(self, fill: LedgerFill, q: Decimal, price: Decimal, fee: Decimal) -> None:
        if self.qty == ZERO:
            self.opened_at = fill.exec_time
            self.direction = "long" if q > ZERO else "short"
        self.qty += q
        self.open_cost += q * price
        self._add_to_trip(-q * price, fee)

    def _add_to_trip(self, cash: Decimal, fee: Decimal) -> None:
        self.trip_realised += cash
        self.trip_fees += fee
        self.trip_trades += 1

    def _close_trip(self, closed_at: datetime) -> RoundTrip:
        assert self.opened_at is not None
        trip = RoundTrip(
            bot_id=self.bot_id,
            symbol=self.symbol,
            direction=self.direction,
            opened_at=self.opened_at,
            closed_at=closed_at,
            realised=self.trip_realised,
            fees=self.trip_fees,
            funding=self.trip_funding,
            trade_count=self.trip_trades,
        )
        self.opened_at = None
        self.direction = ""
        self.trip_realised = self.trip_fees = self.trip_funding = ZERO
        self.trip_trades = 0
        return trip

    def _effect(
        self, fill: LedgerFill, realised: Decimal, fee: Decimal, funding: Decimal, closed: RoundTrip | None
    ) -> FillEffect:
        return FillEffect(fill, realised, fee, funding, self.qty, self.open_cost, closed)

    def open_position(self) -> OpenPosition | None:
        if self.qty == ZERO or self.opened_at is None:
            return None
        return OpenPosition(self.bot_id, self.symbol, self.qty, self.open_cost, self.opened_at)
