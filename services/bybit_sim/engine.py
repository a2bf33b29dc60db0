"""Matching and accounting: orders in, executions, positions and wallet changes out.

No IO and no clock: callers pass the exchange time stamps are made of (`now_ms`: `Venue.stamp_ms()`, wall
or venue clock per `--stamp-clock`) and current prices. Every change is
returned as `Event`s so the server decides how to push them.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from services.bybit_sim.instruments import INSTRUMENTS, SimInstrument
from services.bybit_sim.models import (ZERO, SimAccount, Event, SimExecution, FeeSchedule, Order, OrderRequest, SimPosition,
                                      VenueError, stable_uuid)
from services.bybit_sim.stops import Stops
from services.bybit_sim.triggers import Move, stop_fill_price
from services.bybit_sim.walk import Walker

__all__ = ["MMR", "Engine", "Event", "FeeSchedule", "OrderRequest", "stable_uuid"]

MMR = Decimal("0.005")


class Engine:
    def __init__(self, seed: int, price_of: Callable[[str], Decimal], *, fees: FeeSchedule = FeeSchedule(),
                 partial_fills: bool = False, slippage_bps: Decimal = ZERO) -> None:
        self.seed = seed
        self._market_price = price_of
        self.marks: dict[str, Decimal] = {}  # the path price of a symbol while a walk fills at it
        self.venue_ms = 0  # venue clock of what is happening now (a walk's touch, else the last walk): for the admin API
        self.fees = fees
        self.partial_fills = partial_fills
        self.slippage_bps = slippage_bps
        self.accounts: dict[str, SimAccount] = {}
        self.seqs: dict[str, int] = {s: 1_000_000 for s in INSTRUMENTS}
        self.priority = 0
        self.book: dict[str, dict[str, tuple[SimAccount, Order]]] = {s: {} for s in INSTRUMENTS}
        self.stops = Stops(self)
        self.walker = Walker(self)

    def price_of(self, symbol: str) -> Decimal:
        return self.marks.get(symbol) or self._market_price(symbol)

    def index_orders(self, acct: SimAccount) -> None:
        """Rebuild the active-order indexes of an account (after loading state)."""
        for order in acct.orders.values():
            self._sync(acct, order)

    def _sync(self, acct: SimAccount, order: Order) -> None:
        if order.is_active:
            acct.resting[order.order_id] = order
            self.book[order.symbol][order.order_id] = (acct, order)
        else:
            acct.resting.pop(order.order_id, None)
            self.book[order.symbol].pop(order.order_id, None)

    def next_seq(self, symbol: str) -> int:
        self.seqs[symbol] += 1
        return self.seqs[symbol]

    def account(self, api_key: str) -> SimAccount:
        return self.accounts[api_key]

    def _slipped(self, inst: SimInstrument, side: str, price: Decimal) -> Decimal:
        return stop_fill_price(side, price, self.slippage_bps, inst.tick_size)

    def _closing_capacity(self, pos: SimPosition, side: str) -> Decimal:
        if pos.size > 0 and side == "Sell":
            return pos.size
        if pos.size < 0 and side == "Buy":
            return -pos.size
        return ZERO

    def unrealised(self, pos: SimPosition) -> Decimal:
        if pos.size == 0:
            return ZERO
        return pos.size * (self.price_of(pos.symbol) - pos.avg_price)

    def position_im(self, pos: SimPosition) -> Decimal:
        return abs(pos.size) * pos.avg_price / pos.leverage

    def order_im(self, acct: SimAccount) -> Decimal:
        total = ZERO
        for o in acct.resting.values():
            if not o.reduce_only and o.status != "Untriggered":
                lev = acct.position(o.symbol).leverage
                total += o.leaves_qty * o.price / lev
        return total

    def equity(self, acct: SimAccount) -> Decimal:
        return acct.balance + sum((self.unrealised(p) for p in acct.positions.values()), ZERO)

    def available(self, acct: SimAccount) -> Decimal:
        """max(equity - position IM - order IM, 0), in one pass over the positions (checked on every order)."""
        im = upl = ZERO
        for p in acct.positions.values():
            im += abs(p.size) * p.avg_price / p.leverage
            if p.size != 0:
                upl += p.size * (self.price_of(p.symbol) - p.avg_price)
        im += self.order_im(acct)
        return max(acct.balance + upl - im, ZERO)

    @staticmethod
    def liq_price(pos: SimPosition, inst: SimInstrument) -> Decimal | None:
        """Isolated-style estimate: the price where the position margin falls to maintenance margin."""
        if pos.size == 0:
            return None
        inv = 1 / pos.leverage
        if pos.size > 0:
            raw = pos.avg_price * (1 - inv + MMR)
            return max((raw / inst.tick_size).to_integral_value(ROUND_CEILING) * inst.tick_size, ZERO)
        raw = pos.avg_price * (1 + inv - MMR)
        return (raw / inst.tick_size).to_integral_value(ROUND_FLOOR) * inst.tick_size

    def create_order(self, api_key: str, req: OrderRequest, now_ms: int) -> tuple[Order, list[Event]]:
        acct = self.account(api_key)
        inst = INSTRUMENTS[req.symbol]
        if req.order_link_id and req.order_link_id in acct.link_ids:
            raise VenueError(110072, "OrderLinkedID is duplicate")
        pos = acct.position(req.symbol)
        market = self.price_of(req.symbol)
        if req.trigger_price:
            return self.stops.create_conditional(acct, req, market, now_ms)
        if req.reduce_only and self._closing_capacity(pos, req.side) == 0:
            raise VenueError(110017, "current position is zero, cannot fix reduce-only order qty")
        ref_price = req.price if req.order_type == "Limit" and req.price is not None else market
        self.stops.check_attached(req, ref_price)
        opening = max(req.qty - self._closing_capacity(pos, req.side), ZERO) if not req.reduce_only else ZERO
        cost = opening * ref_price / pos.leverage + req.qty * ref_price * self.fees.taker
        if cost > self.available(acct):
            raise VenueError(110007, "ab not enough for new order")
        order = self.new_order(acct, req, market, now_ms)
        events: list[Event] = []
        if req.order_type == "Market":
            order.time_in_force = "IOC"
            self._take(acct, order, inst, market, now_ms, events)
        else:
            marketable = (req.side == "Buy" and order.price >= market) or (req.side == "Sell" and order.price <= market)
            if marketable and req.time_in_force == "PostOnly":
                order.status, order.cancel_type = "Cancelled", "UNKNOWN"
                order.reject_reason = "EC_PostOnlyWillTakeLiquidity"
            elif marketable:
                fill_price = self._slipped(inst, order.side, market)
                fill_price = min(fill_price, order.price) if order.side == "Buy" else max(fill_price, order.price)
                self._take(acct, order, inst, fill_price, now_ms, events)
            elif req.time_in_force in ("IOC", "FOK"):
                order.status, order.cancel_type = "Cancelled", "CancelByUser"
        self._sync(acct, order)
        if not events:
            events.append(Event(api_key, "order", order))
            events.append(Event(api_key, "position", pos))
        return order, events

    def new_order(self, acct: SimAccount, req: OrderRequest, market: Decimal, now_ms: int, **fields: Any) -> Order:
        """A new order with the next deterministic id, registered under its orderLinkId."""
        acct.n_orders += 1
        self.priority += 1
        tpsl = bool(req.take_profit or req.stop_loss)
        spec: dict[str, Any] = dict(
            order_id=stable_uuid(self.seed, acct.api_key, "order", acct.n_orders),
            order_link_id=req.order_link_id, symbol=req.symbol, side=req.side, order_type=req.order_type,
            price=req.price if req.price is not None else ZERO, qty=req.qty, time_in_force=req.time_in_force,
            reduce_only=req.reduce_only, created_ms=now_ms, updated_ms=now_ms, priority=self.priority,
            last_price_on_created=market, take_profit=req.take_profit, stop_loss=req.stop_loss,
            tp_trigger_by=req.tp_trigger_by or ("LastPrice" if req.take_profit else ""),
            sl_trigger_by=req.sl_trigger_by or ("LastPrice" if req.stop_loss else ""),
            tpsl_mode="Full" if tpsl else "")
        order = Order(**(spec | fields))
        acct.orders[order.order_id] = order
        if req.order_link_id:
            acct.link_ids[req.order_link_id] = order.order_id
        return order

    def _take(self, acct: SimAccount, order: Order, inst: SimInstrument, price: Decimal, now_ms: int,
              events: list[Event]) -> None:
        """Fill an incoming order at once (taker); the rest of an IOC/market order is cancelled."""
        if order.order_type == "Market":
            price = self._slipped(inst, order.side, price)
        qty = order.qty
        if order.reduce_only:
            qty = min(qty, self._closing_capacity(acct.position(order.symbol), order.side))
        chunks = [qty]
        if self.partial_fills and qty >= 2 * inst.qty_step:
            first = (qty / 2 / inst.qty_step).to_integral_value(ROUND_DOWN) * inst.qty_step
            chunks = [first, qty - first]
        for chunk in chunks:
            self._fill(acct, order, inst, chunk, price, False, now_ms, events)
        if order.is_active and (order.order_type == "Market" or order.time_in_force in ("IOC", "FOK")):
            order.status = "PartiallyFilledCanceled" if order.cum_qty else "Cancelled"
            order.cancel_type = "CancelByReduceOnly" if order.reduce_only else "UNKNOWN"
            self._sync(acct, order)
            events.append(Event(acct.api_key, "order", order))

    def _fill(self, acct: SimAccount, order: Order, inst: SimInstrument, qty: Decimal, price: Decimal, is_maker: bool,
              now_ms: int, events: list[Event]) -> SimExecution:
        pos = acct.position(order.symbol)
        old_size = pos.size
        signed = qty if order.side == "Buy" else -qty
        closing = min(qty, self._closing_capacity(pos, order.side))
        pnl = ZERO
        if closing:
            pnl = closing * (price - pos.avg_price) * (1 if pos.size > 0 else -1)
        rate = self.fees.maker if is_maker else self.fees.taker
        value = qty * price
        fee = value * rate
        was_flat = pos.size == 0
        new_size = pos.size + signed
        if was_flat:
            pos.avg_price, pos.cur_realised, pos.created_ms = price, ZERO, now_ms
        elif closing == 0:
            pos.avg_price = ((abs(pos.size) * pos.avg_price + qty * price) / abs(new_size)).quantize(
                Decimal("0.00000001"))
        elif closing < qty:  # flip: the remainder opens at this price
            pos.avg_price, pos.cur_realised = price, ZERO
        if new_size == 0:
            pos.avg_price = ZERO
        pos.size = new_size
        pos.cum_realised += pnl - fee
        pos.cur_realised += pnl - fee
        pos.updated_ms = now_ms
        acct.balance += pnl - fee
        acct.cum_realised += pnl - fee
        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee += fee
        order.updated_ms = now_ms
        order.status = "Filled" if order.cum_qty >= order.qty else "PartiallyFilled"
        self._sync(acct, order)
        acct.n_execs += 1
        seq = self.next_seq(order.symbol)
        pos.seq = seq
        execution = SimExecution(
            exec_id=stable_uuid(self.seed, acct.api_key, "exec", acct.n_execs), symbol=order.symbol,
            order_id=order.order_id, order_link_id=order.order_link_id, side=order.side, exec_price=price,
            exec_qty=qty, exec_value=value, exec_fee=fee, fee_rate=rate, exec_type="Trade", exec_time_ms=now_ms,
            is_maker=is_maker, closed_size=closing, leaves_qty=order.qty - order.cum_qty,
            order_price=order.price if order.order_type == "Limit" else price, order_qty=order.qty,
            order_type=order.order_type, stop_order_type=order.stop_order_type or "UNKNOWN",
            mark_price=self.price_of(order.symbol),
            seq=seq, exec_pnl=pnl, venue_time_ms=self.venue_ms)
        acct.executions.add(execution)
        events += [Event(acct.api_key, "execution", execution), Event(acct.api_key, "order", order),
                   Event(acct.api_key, "position", pos), Event(acct.api_key, "wallet", acct)]
        self.stops.after_fill(acct, order, pos, old_size, qty, now_ms, events)
        if pos.size == 0:
            events += self._cancel_reduce_only(acct, order.symbol, now_ms)
        return execution

    def _cancel_reduce_only(self, acct: SimAccount, symbol: str, now_ms: int) -> list[Event]:
        out = []
        for o in list(acct.resting.values()):
            if o.symbol == symbol and o.reduce_only and o.status != "Untriggered":
                o.status = "PartiallyFilledCanceled" if o.cum_qty else "Cancelled"
                o.cancel_type, o.updated_ms = "CancelByReduceOnly", now_ms
                self._sync(acct, o)
                out.append(Event(acct.api_key, "order", o))
        return out

    def find_order(self, acct: SimAccount, order_id: str | None, order_link_id: str | None) -> Order:
        order = None
        if order_id:
            order = acct.orders.get(order_id)
        elif order_link_id:
            oid = acct.link_ids.get(order_link_id)
            order = acct.orders.get(oid) if oid else None
        if order is None or not order.is_active:
            raise VenueError(110001, "order not exists or too late to cancel")
        return order

    def cancel_order(self, api_key: str, symbol: str, order_id: str | None, order_link_id: str | None,
                     now_ms: int) -> tuple[Order, list[Event]]:
        acct = self.account(api_key)
        order = self.find_order(acct, order_id, order_link_id)
        if order.symbol != symbol:
            raise VenueError(110001, "order not exists or too late to cancel")
        self._cancel(acct, order, now_ms)
        return order, [Event(api_key, "order", order), Event(api_key, "position", acct.position(symbol))]

    def _cancel(self, acct: SimAccount, order: Order, now_ms: int) -> None:
        """A user's cancel; an untriggered order is `Deactivated`, and a position's TP/SL/TS is cleared."""
        if order.untriggered:
            order.status = "Deactivated"
            self.stops.detach(acct, order, now_ms)
        else:
            order.status = "PartiallyFilledCanceled" if order.cum_qty else "Cancelled"
        order.cancel_type, order.updated_ms = "CancelByUser", now_ms
        self._sync(acct, order)

    def cancel_all(self, api_key: str, symbol: str | None, now_ms: int,
                   order_filter: str | None = None) -> tuple[list[Order], list[Event]]:
        """`order_filter`: None every order, `Order` only active orders, `StopOrder` only untriggered ones."""
        acct = self.account(api_key)
        cancelled = sorted((o for o in acct.resting.values() if (symbol is None or o.symbol == symbol)
                            and order_filter in (None, "StopOrder" if o.untriggered else "Order")),
                           key=lambda o: o.priority)
        events: list[Event] = []
        for o in cancelled:
            self._cancel(acct, o, now_ms)
            events.append(Event(api_key, "order", o))
        for sym in sorted({o.symbol for o in cancelled}):
            events.append(Event(api_key, "position", acct.position(sym)))
        return cancelled, events

    def set_leverage(self, api_key: str, symbol: str, leverage: Decimal, now_ms: int) -> list[Event]:
        acct = self.account(api_key)
        pos = acct.position(symbol)
        if pos.leverage == leverage:
            raise VenueError(110043, "leverage not modified")
        inst = INSTRUMENTS[symbol]
        if not (1 <= leverage <= inst.max_leverage):
            raise VenueError(10001, "leverage invalid")
        pos.leverage, pos.updated_ms = leverage, now_ms
        return [Event(api_key, "position", pos)]

    def on_price(self, symbol: str, price: Decimal, now_ms: int) -> list[Event]:
        """Everything the price `price` has reached fires there: crossed limits at their limit, stops at `price`."""
        return self.walker.walk(symbol, [Move(price, price, True)], now_ms)

    def settle_funding(self, symbol: str, mark: Decimal, rate: Decimal, now_ms: int) -> list[Event]:
        """One `Funding` execution per open position: longs pay a positive rate, shorts receive it."""
        events: list[Event] = []
        for acct in self.accounts.values():
            pos = acct.positions.get(symbol)
            if pos is None or pos.size == 0:
                continue
            value = abs(pos.size) * mark
            fee = value * rate * (1 if pos.size > 0 else -1)
            acct.balance -= fee
            acct.cum_realised -= fee
            pos.cum_realised -= fee
            pos.cur_realised -= fee
            pos.updated_ms = now_ms
            acct.n_funding += 1
            seq = self.next_seq(symbol)
            execution = SimExecution(
                exec_id=stable_uuid(self.seed, acct.api_key, "funding-exec", acct.n_funding), symbol=symbol,
                order_id=stable_uuid(self.seed, acct.api_key, "funding-order", acct.n_funding), order_link_id="",
                side=pos.side, exec_price=mark, exec_qty=abs(pos.size), exec_value=value, exec_fee=fee,
                fee_rate=rate, exec_type="Funding", exec_time_ms=now_ms, is_maker=False, closed_size=ZERO,
                leaves_qty=ZERO, order_price=ZERO, order_qty=abs(pos.size), order_type="UNKNOWN",
                stop_order_type="UNKNOWN", mark_price=mark, seq=seq, exec_pnl=ZERO,
                venue_time_ms=self.venue_ms)
            acct.executions.add(execution)
            events += [Event(acct.api_key, "execution", execution), Event(acct.api_key, "position", pos),
                       Event(acct.api_key, "wallet", acct)]
        return events
