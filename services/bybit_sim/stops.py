"""Conditional orders and a position's take-profit, stop-loss and trailing stop (Bybit's Full TP/SL mode).

A position's TP, SL or trailing stop is an `Untriggered` reduce-only market order with `stopOrderType`
TakeProfit / StopLoss / TrailingStop, qty 0 (it closes the whole position, sized when it fires) and
`closeOnTrigger`, as Bybit lists them; the position row carries the levels. They are set by
`takeProfit`/`stopLoss` on an order (attached to the position when the order fills) or by
`POST /v5/position/trading-stop` ("0" cancels one), and deactivated when the position closes. A user's
conditional order (`triggerPrice` + `triggerDirection`) has `stopOrderType` Stop. When and at what
price each fires is triggers.py's rule, applied along the path by walk.py.
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.models import ZERO, SimAccount, Event, Order, OrderRequest, SimPosition, VenueError
from services.bybit_sim.triggers import (FALLING, RISING, TrailState, first_touch, limit_direction, trail_activates,
                                         trail_level, tpsl_direction)

if TYPE_CHECKING:
    from services.bybit_sim.engine import Engine

TPSL_KINDS = ("TakeProfit", "StopLoss", "TrailingStop")
_FIELDS = {"TakeProfit": ("take_profit", "tp_order_id"), "StopLoss": ("stop_loss", "sl_order_id"),
           "TrailingStop": ("trailing_stop", "ts_order_id")}
CREATE_TYPES = {"TakeProfit": "CreateByTakeProfit", "StopLoss": "CreateByStopLoss",
                "TrailingStop": "CreateByTrailingStop"}


def check_levels(side: str, base: Decimal, take_profit: Decimal, stop_loss: Decimal) -> None:
    """Bybit's rule: for a buy (a long) the stop loss below and the take profit above the base price."""
    lower, higher = ("lower", "higher") if side == "Buy" else ("higher", "lower")
    if stop_loss and (stop_loss >= base if side == "Buy" else stop_loss <= base):
        raise VenueError(10001, f"StopLoss:{stop_loss} set for {side} position should {lower} than "
                                f"base_price:{base}??LastPrice")
    if take_profit and (take_profit <= base if side == "Buy" else take_profit >= base):
        raise VenueError(10001, f"TakeProfit:{take_profit} set for {side} position should {higher} than "
                                f"base_price:{base}??LastPrice")


class Stops:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check_attached(self, req: OrderRequest, base: Decimal) -> None:
        check_levels(req.side, base, req.take_profit, req.stop_loss)

    def create_conditional(self, acct: SimAccount, req: OrderRequest, market: Decimal,
                           now_ms: int) -> tuple[Order, list[Event]]:
        eng = self.engine
        if req.trigger_direction == RISING and req.trigger_price <= market:
            raise VenueError(110092, f"expect Rising, but trigger_price[{req.trigger_price}] <= current[{market}]"
                                     f"??LastPrice")
        if req.trigger_direction == FALLING and req.trigger_price >= market:
            raise VenueError(110093, f"expect Falling, but trigger_price[{req.trigger_price}] >= current[{market}]"
                                     f"??LastPrice")
        pos = acct.position(req.symbol)
        if req.reduce_only and eng._closing_capacity(pos, req.side) == 0:
            raise VenueError(110017, "current position is zero, cannot fix reduce-only order qty")
        ref = req.price if req.order_type == "Limit" and req.price is not None else req.trigger_price
        self.check_attached(req, ref)
        if not req.reduce_only and req.qty * ref / pos.leverage + req.qty * ref * eng.fees.taker > eng.available(acct):
            raise VenueError(110007, "ab not enough for new order")
        order = eng.new_order(acct, req, market, now_ms, status="Untriggered", stop_order_type="Stop",
                              trigger_price=req.trigger_price, trigger_direction=req.trigger_direction,
                              trigger_by=req.trigger_by or "LastPrice", close_on_trigger=req.close_on_trigger)
        if req.order_type == "Market":
            order.time_in_force = "IOC"
        eng._sync(acct, order)
        return order, [Event(acct.api_key, "order", order), Event(acct.api_key, "position", pos)]

    def after_fill(self, acct: SimAccount, order: Order, pos: SimPosition, old_size: Decimal, qty: Decimal, now_ms: int,
                   events: list[Event]) -> None:
        """A position that closed or flipped loses its TP/SL/TS; an order's own TP/SL attach on its first fill."""
        if old_size and (pos.size == 0 or (pos.size > 0) != (old_size > 0)):
            self.clear(acct, pos, now_ms, events)
        if (order.take_profit or order.stop_loss) and order.cum_qty == qty and pos.size and pos.side == order.side:
            self._set(acct, pos, "TakeProfit", order.take_profit or None, order.tp_trigger_by, now_ms, events)
            self._set(acct, pos, "StopLoss", order.stop_loss or None, order.sl_trigger_by, now_ms, events)

    def set_trading_stop(self, api_key: str, symbol: str, take_profit: Decimal | None, stop_loss: Decimal | None,
                         trailing_stop: Decimal | None, active_price: Decimal | None, tp_trigger_by: str,
                         sl_trigger_by: str, now_ms: int) -> list[Event]:
        """`POST /v5/position/trading-stop` in Full mode; None leaves a level as it is, 0 cancels it."""
        acct = self.engine.account(api_key)
        pos = acct.position(symbol)
        if pos.size == 0:
            raise VenueError(10001, "can not set tp/sl/ts for zero position")
        if take_profit is None and stop_loss is None and trailing_stop is None:
            raise VenueError(10001, "params error: takeProfit, stopLoss or trailingStop is required")
        market = self.engine.price_of(symbol)
        check_levels(pos.side, market, take_profit or ZERO, stop_loss or ZERO)
        ts_order = self._active(acct, pos, "TrailingStop")
        unchanged = ((take_profit is None or take_profit == pos.take_profit)
                     and (stop_loss is None or stop_loss == pos.stop_loss)
                     and (trailing_stop is None or (trailing_stop == pos.trailing_stop and (
                         active_price is None or ts_order is None or active_price == ts_order.active_price))))
        if unchanged:
            raise VenueError(34040, "not modified")
        events: list[Event] = []
        self._set(acct, pos, "TakeProfit", take_profit, tp_trigger_by, now_ms, events)
        self._set(acct, pos, "StopLoss", stop_loss, sl_trigger_by, now_ms, events)
        self._set(acct, pos, "TrailingStop", trailing_stop, "", now_ms, events, active_price or ZERO)
        pos.updated_ms = now_ms
        events.append(Event(api_key, "position", pos))
        return events

    def _active(self, acct: SimAccount, pos: SimPosition, kind: str) -> Order | None:
        order = acct.orders.get(getattr(pos, _FIELDS[kind][1]))
        return order if order is not None and order.untriggered else None

    def _set(self, acct: SimAccount, pos: SimPosition, kind: str, level: Decimal | None, trigger_by: str, now_ms: int,
             events: list[Event], active_price: Decimal = ZERO) -> None:
        if level is None:
            return
        eng = self.engine
        value_attr, id_attr = _FIELDS[kind]
        order = self._active(acct, pos, kind)
        if not level:
            if order is not None:
                self._deactivate(acct, order, now_ms, events)
            setattr(pos, value_attr, ZERO)
            setattr(pos, id_attr, "")
            return
        market = eng.price_of(pos.symbol)
        if order is None:
            side = "Sell" if pos.size > 0 else "Buy"
            req = OrderRequest(pos.symbol, side, "Market", ZERO, None, "IOC", True, "")
            order = eng.new_order(acct, req, market, now_ms, status="Untriggered", stop_order_type=kind,
                                  trigger_direction=tpsl_direction(pos.side, kind), tpsl_mode="Full",
                                  trigger_by=trigger_by or "LastPrice", close_on_trigger=True,
                                  create_type=CREATE_TYPES[kind])
            setattr(pos, id_attr, order.order_id)
        order.updated_ms = now_ms
        if kind == "TrailingStop":
            order.trail_distance, order.active_price = level, active_price
            at = trail_activates(pos.side, active_price, market, market, True)
            order.trail_active, order.trail_extreme = at is not None, market if at is not None else ZERO
            base = market if at is not None else active_price
            order.trigger_price = trail_level(pos.side, base, level)
        else:
            order.trigger_price = level
            if trigger_by:
                order.trigger_by = trigger_by
        setattr(pos, value_attr, level)
        eng._sync(acct, order)
        events.append(Event(acct.api_key, "order", order))

    def _deactivate(self, acct: SimAccount, order: Order, now_ms: int, events: list[Event]) -> None:
        order.status, order.cancel_type, order.updated_ms = "Deactivated", "CancelByTpSlTsClear", now_ms
        self.engine._sync(acct, order)
        events.append(Event(acct.api_key, "order", order))

    def clear(self, acct: SimAccount, pos: SimPosition, now_ms: int, events: list[Event]) -> None:
        for kind in TPSL_KINDS:
            order = self._active(acct, pos, kind)
            if order is not None:
                self._deactivate(acct, order, now_ms, events)
            value_attr, id_attr = _FIELDS[kind]
            setattr(pos, value_attr, ZERO)
            setattr(pos, id_attr, "")

    def detach(self, acct: SimAccount, order: Order, now_ms: int) -> None:
        """A TP/SL/TS order cancelled by the user no longer guards its position."""
        if order.stop_order_type not in TPSL_KINDS:
            return
        pos = acct.position(order.symbol)
        value_attr, id_attr = _FIELDS[order.stop_order_type]
        if getattr(pos, id_attr) == order.order_id:
            setattr(pos, value_attr, ZERO)
            setattr(pos, id_attr, "")
            pos.updated_ms = now_ms

    def fire(self, acct: SimAccount, order: Order, touch: Decimal, now_ms: int, events: list[Event]) -> None:
        """A stop reached at `touch` (triggers.first_touch): `Triggered`, then a market (or limit) order."""
        eng = self.engine
        inst = INSTRUMENTS[order.symbol]
        pos = acct.position(order.symbol)
        capacity = eng._closing_capacity(pos, order.side)
        order.updated_ms = now_ms
        if order.stop_order_type in TPSL_KINDS:
            order.qty = capacity
        if order.reduce_only and capacity == 0:
            order.status, order.cancel_type = "Deactivated", "CancelByReduceOnly"
            eng._sync(acct, order)
            events.append(Event(acct.api_key, "order", order))
            return
        opening = ZERO if order.reduce_only else max(order.qty - capacity, ZERO)
        ref = order.price if order.order_type == "Limit" else touch
        if opening and opening * ref / pos.leverage + order.qty * ref * eng.fees.taker > eng.available(acct):
            order.status, order.reject_reason = "Rejected", "EC_Others"
            eng._sync(acct, order)
            events.append(Event(acct.api_key, "order", order))
            return
        order.status = "Triggered"
        events.append(Event(acct.api_key, "order", order.snapshot()))
        order.status = "New"
        if order.order_type == "Market":
            eng._take(acct, order, inst, touch, now_ms, events)
            return
        marketable = first_touch(limit_direction(order.side), order.price, touch, touch, True)
        if marketable is not None:
            fill = eng._slipped(inst, order.side, touch)
            fill = min(fill, order.price) if order.side == "Buy" else max(fill, order.price)
            eng._take(acct, order, inst, fill, now_ms, events)
        else:
            eng._sync(acct, order)
            events.append(Event(acct.api_key, "order", order))


def trail_state(order: Order) -> TrailState:
    return TrailState(order.trail_active, order.trail_extreme)
