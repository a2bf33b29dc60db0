"""Walks the symbols' prices along their moves and fires what the path reaches (triggers.py's rule).

On each move, the pending order reached first along the move fires (resting limits at their limit as
makers; stops, TP/SL and trailing stops as takers at the touch price); then the next one is looked
for again from there, since every fill can change what is pending. Ties: older order first. Across
symbols the earliest in venue time fires first; at the same instant, symbols in INSTRUMENTS order.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.models import SimAccount, Event, Order
from services.bybit_sim.stops import trail_state
from services.bybit_sim.triggers import (FALLING, Move, TrailState, first_touch, limit_direction, tpsl_direction,
                                         trail_level, trail_on_move)

if TYPE_CHECKING:
    from services.bybit_sim.engine import Engine

Hit = tuple[Decimal, int, Decimal, SimAccount, Order, TrailState | None]  # (distance, priority, touch, ...)


def _reached_at(move: Move, direction: int, level: Decimal) -> Decimal:
    """How far along the move, in the condition's own direction, `level` lies: the order in which levels
    are reached; a level already passed at the start is negative (passed earlier the farther it is)."""
    return move.start - level if direction == FALLING else level - move.start


class _Cursor:
    """Where a symbol's walk is: the move, and the price on it."""

    def __init__(self, moves: list[Move]) -> None:
        self.moves = moves
        self.i = 0
        self.cur = moves[0].start


class Walker:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def walk(self, symbol: str, moves: list[Move], now_ms: int) -> list[Event]:
        return self.walk_all({symbol: moves}, now_ms)

    def walk_all(self, moves_by_symbol: dict[str, list[Move]], now_ms: int,
                 stamp: Callable[[], int] | None = None) -> list[Event]:
        """Every symbol along its moves, firing in venue-time order across symbols. `stamp`, when given,
        is asked for each fire's timestamp once `engine.venue_ms` is that fire's instant (the venue's
        `stamp_ms`), else everything is stamped `now_ms`."""
        events: list[Event] = []
        done: set[str] = set()  # limits filled on this walk: with --partial-fills, one fill per walk
        order = {s: i for i, s in enumerate(INSTRUMENTS)}
        cursors = {s: _Cursor(m) for s, m in moves_by_symbol.items() if m and self.engine.book[s]}
        nexts = {s: self._scan(s, c, done) for s, c in cursors.items()}
        try:
            while True:
                live = [(n[0], order[s], s) for s, n in nexts.items() if n is not None]
                if not live:
                    return events
                _, _, symbol = min(live)
                c = cursors[symbol]
                _, (_, _, touch, acct, pending, trail) = nexts[symbol]  # type: ignore[misc]
                if not c.moves[c.i].gap:
                    c.cur = touch
                self.engine.marks[symbol] = touch
                self.engine.venue_ms = int(nexts[symbol][0])  # type: ignore[index]
                self._fire(acct, pending, touch, trail, stamp() if stamp is not None else now_ms, done, events)
                self.engine.marks.pop(symbol, None)
                nexts[symbol] = self._scan(symbol, c, done)
        finally:
            self.engine.marks.clear()

    def _scan(self, symbol: str, c: _Cursor, done: set[str]) -> tuple[Fraction, Hit] | None:
        """The next thing to fire on this symbol's remaining moves, and when; moves passed with nothing
        firing carry the trailing stops along."""
        while c.i < len(c.moves):
            move = c.moves[c.i]
            hit = self._next(symbol, move, c.cur, done)
            if hit is not None:
                return move.time_at(hit[2]), hit
            self._trail(symbol, move, c.cur)
            c.i += 1
            if c.i < len(c.moves):
                c.cur = c.moves[c.i].start
        return None

    def _next(self, symbol: str, move: Move, cur: Decimal, done: set[str]) -> Hit | None:
        best: Hit | None = None
        for acct, order in self.engine.book[symbol].values():
            trail = None
            if order.untriggered:
                if order.stop_order_type == "TrailingStop":
                    side = acct.position(symbol).side
                    if not side:
                        continue
                    trail, touch = trail_on_move(side, order.trail_distance, order.active_price, trail_state(order),
                                                 cur, move.end, move.gap)
                    level = trail_level(side, trail.extreme, order.trail_distance)
                    direction = tpsl_direction(side, "TrailingStop")
                else:
                    level, direction = order.trigger_price, order.trigger_direction
                    touch = first_touch(direction, level, cur, move.end, move.gap)
            elif order.order_type == "Limit" and order.order_id not in done:
                level, direction = order.price, limit_direction(order.side)
                touch = first_touch(direction, level, cur, move.end, move.gap)
            else:
                continue
            if touch is None:
                continue
            hit = (_reached_at(move, direction, level), order.priority, touch, acct, order, trail)
            if best is None or hit[:2] < best[:2]:
                best = hit
        return best

    def _fire(self, acct: SimAccount, order: Order, touch: Decimal, trail: TrailState | None, now_ms: int,
              done: set[str], events: list[Event]) -> None:
        eng = self.engine
        if order.untriggered:
            if trail is not None:
                side = acct.position(order.symbol).side
                order.trail_active, order.trail_extreme = trail.active, trail.extreme
                order.trigger_price = trail_level(side, trail.extreme, order.trail_distance)
            eng.stops.fire(acct, order, touch, now_ms, events)
            return
        inst = INSTRUMENTS[order.symbol]
        done.add(order.order_id)
        qty = order.leaves_qty
        if eng.partial_fills and qty > inst.qty_step:
            half = (order.qty / 2 / inst.qty_step).to_integral_value(ROUND_CEILING) * inst.qty_step
            qty = min(qty, half)
        if order.reduce_only:
            qty = min(qty, eng._closing_capacity(acct.position(order.symbol), order.side))
            if qty == 0:  # the position flipped or closed since: it can no longer reduce anything
                order.status = "PartiallyFilledCanceled" if order.cum_qty else "Cancelled"
                order.cancel_type, order.updated_ms = "CancelByReduceOnly", now_ms
                eng._sync(acct, order)
                events.append(Event(acct.api_key, "order", order))
                return
        eng._fill(acct, order, inst, qty, order.price, True, now_ms, events)

    def _trail(self, symbol: str, move: Move, cur: Decimal) -> None:
        """Carry every trailing stop's activation and best price over the rest of the move."""
        for acct, order in self.engine.book[symbol].values():
            if order.untriggered and order.stop_order_type == "TrailingStop":
                side = acct.position(symbol).side
                if not side:
                    continue
                state, _ = trail_on_move(side, order.trail_distance, order.active_price, trail_state(order),
                                         cur, move.end, move.gap)
                order.trail_active, order.trail_extreme = state.active, state.extreme
                if state.active:
                    order.trigger_price = trail_level(side, state.extreme, order.trail_distance)
