"""Executing decisions and walking one candle's price path for one symbol (the venue's rules).

At a candle's open, in this order: the gap from the previous close to the open (stops and limits
it jumps over fire, stops at the open, limits at their price); funding when the open is a
settlement time; then the decisions made at the previous close, in the order they were made
(markets fill at the open with slippage, limits fill at once when marketable or rest, stops set or
moved, cancels). Then the continuous legs open -> first extreme -> second extreme -> close, where
resting limits, stop-loss, take-profit and trailing stops fire where the path reaches them. The
trigger arithmetic is services/bybit_sim/triggers.py, the venue's own.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.bybit_sim import triggers as tr
from strategies.backtest.book import Book, Resting
from strategies.runtime.model import ZERO, STOP_REASONS, BotFill, Rejection
from strategies.runtime.orders import CancelAll, CancelOrder, Decision, PlaceOrder, SetLeverage, TradingStop

Event = BotFill | Rejection


class Matcher:
    def __init__(self, book: Book) -> None:
        self.book = book
        self.rules = book.settings.rules

    # --- decisions ----------------------------------------------------------------------------
    def execute(self, symbol: str, decisions: list[Decision], price: Decimal, time_ms: int) -> list[Event]:
        out: list[Event] = []
        for d in decisions:
            it = d.intent
            if isinstance(it, PlaceOrder):
                out += self._place(it, price, time_ms)
            elif isinstance(it, TradingStop):
                out += self._trading_stop(it, price, time_ms)
            elif isinstance(it, CancelOrder):
                rs = self.book.resting[symbol]
                keep = [r for r in rs if r.order.order_link_id != it.order_link_id]
                if len(keep) == len(rs):
                    out.append(Rejection(time_ms, symbol, it.order_link_id, 110001, "order not exists or too late to cancel"))
                self.book.resting[symbol] = keep
            elif isinstance(it, CancelAll):
                self.book.resting[symbol] = []
            elif isinstance(it, SetLeverage):
                self.book.positions[symbol].leverage = it.leverage
                self.book.positions[symbol].snapshot = None
        return out

    def _reject(self, o: PlaceOrder, t: int, code: int, msg: str) -> list[Event]:
        return [Rejection(t, o.symbol, o.order_link_id, code, msg)]

    def _place(self, o: PlaceOrder, market: Decimal, t: int) -> list[Event]:
        book, inst = self.book, self.book.instruments[o.symbol]
        cap = book.closing_capacity(o.symbol, o.side)
        if o.reduce_only and cap == 0:
            return self._reject(o, t, 110017, "current position is zero, cannot fix reduce-only order qty")
        if o.qty < inst.min_order_qty:
            return self._reject(o, t, 10001, f"qty {o.qty} below the minimum {inst.min_order_qty}")
        ref = o.price if o.order_type == "Limit" and o.price is not None else market
        if o.stop_loss and (o.stop_loss >= ref if o.side == "Buy" else o.stop_loss <= ref):
            return self._reject(o, t, 10001, f"StopLoss {o.stop_loss} on the wrong side of {ref}")
        if o.take_profit and (o.take_profit <= ref if o.side == "Buy" else o.take_profit >= ref):
            return self._reject(o, t, 10001, f"TakeProfit {o.take_profit} on the wrong side of {ref}")
        if self.rules.check_margin and not o.reduce_only:
            lev = book.positions[o.symbol].leverage
            cost = max(o.qty - cap, ZERO) * ref / lev + o.qty * ref * self.rules.taker_fee
            if cost > book.available():
                return self._reject(o, t, 110007, "ab not enough for new order")
        qty = min(o.qty, cap) if o.reduce_only else o.qty
        if o.order_type == "Market":
            price = tr.stop_fill_price(o.side, market, self.rules.slippage_bps, inst.tick_size)
            return [self._fill_order(o, qty, price, False, t)]
        assert o.price is not None
        marketable = o.price >= market if o.side == "Buy" else o.price <= market
        if marketable and o.time_in_force == "PostOnly":
            return self._reject(o, t, 0, "EC_PostOnlyWillTakeLiquidity")
        if marketable:
            price = tr.stop_fill_price(o.side, market, self.rules.slippage_bps, inst.tick_size)
            price = min(price, o.price) if o.side == "Buy" else max(price, o.price)
            return [self._fill_order(o, qty, price, False, t)]
        if o.time_in_force == "IOC":
            return []
        book.resting[o.symbol].append(Resting(o, t, book.next_priority()))
        return []

    def _fill_order(self, o: PlaceOrder, qty: Decimal, price: Decimal, maker: bool, t: int) -> BotFill:
        fill = self.book.fill(o.symbol, o.side, qty, price, maker, t, o.order_link_id, o.reason)
        p = self.book.positions[o.symbol]
        if (o.stop_loss or o.take_profit) and p.qty and p.side == o.side:  # tpslMode Full: attach, replacing
            if o.take_profit:
                self.book.set_stop(o.symbol, "TakeProfit", o.take_profit)
            if o.stop_loss:
                self.book.set_stop(o.symbol, "StopLoss", o.stop_loss)
        return fill

    def _trading_stop(self, ts: TradingStop, price: Decimal, t: int) -> list[Event]:
        p = self.book.positions[ts.symbol]
        if not p.qty:
            return [Rejection(t, ts.symbol, "", 10001, "can not set tp/sl/ts for zero position")]
        long = p.qty > 0
        if ts.stop_loss and (ts.stop_loss >= price if long else ts.stop_loss <= price):
            return [Rejection(t, ts.symbol, "", 10001, f"StopLoss {ts.stop_loss} on the wrong side of {price}")]
        if ts.take_profit and (ts.take_profit <= price if long else ts.take_profit >= price):
            return [Rejection(t, ts.symbol, "", 10001, f"TakeProfit {ts.take_profit} on the wrong side of {price}")]
        if ts.take_profit is not None:
            self.book.set_stop(ts.symbol, "TakeProfit", ts.take_profit)
        if ts.stop_loss is not None:
            self.book.set_stop(ts.symbol, "StopLoss", ts.stop_loss)
        if ts.trailing_stop is not None:
            self.book.set_stop(ts.symbol, "TrailingStop", ts.trailing_stop, ts.active_price or ZERO, price)
        return []

    # --- the price path -----------------------------------------------------------------------
    def run_move(self, symbol: str, move: tr.Move, t_ms: int, span_ms: int = 0) -> list[Event]:
        """Fire what the move reaches, in the venue's order (walk.py): by how far along the move each
        level lies, then the older order first; each fill changes what is still pending. The move
        runs from t_ms for span_ms; a fill is stamped where on the move it happened."""
        out: list[Event] = []
        cur = move.start
        p = self.book.positions[symbol]
        while True:
            hit = self._next(symbol, move, cur)
            if hit is None:
                break
            _, _, touch, kind, resting, trail = hit
            if not move.gap:
                cur = touch
            if trail is not None:
                p.trail_state = trail
            at = t_ms
            if span_ms and not move.gap and move.end != move.start:
                at += int(span_ms * (touch - move.start) / (move.end - move.start))
            out += self._fire(symbol, kind, touch, resting, at)
        if p.qty and p.trail:  # carry the trailing stop's activation and best price over the rest
            p.trail_state, _ = tr.trail_on_move(p.side, p.trail, p.trail_active, p.trail_state, cur, move.end,
                                                move.gap)
        return out

    def _next(self, symbol: str, move: tr.Move, cur: Decimal) -> tuple[Any, ...] | None:
        p = self.book.positions[symbol]
        best: tuple[Any, ...] | None = None
        cands: list[tuple[Decimal, int, Decimal | None, str, Resting | None, tr.TrailState | None]] = []
        if p.qty:
            side = p.side
            for kind, level in (("StopLoss", p.sl), ("TakeProfit", p.tp)):
                if level:
                    direction = tr.tpsl_direction(side, kind)
                    touch = tr.first_touch(direction, level, cur, move.end, move.gap)
                    cands.append((_reached_at(move, direction, level), p.prio[kind], touch, kind, None, None))
            if p.trail:
                trail, touch = tr.trail_on_move(side, p.trail, p.trail_active, p.trail_state, cur, move.end,
                                                move.gap)
                level = tr.trail_level(side, trail.extreme, p.trail)
                direction = tr.tpsl_direction(side, "TrailingStop")
                cands.append((_reached_at(move, direction, level), p.prio["TrailingStop"], touch, "TrailingStop",
                              None, trail))
        for r in self.book.resting[symbol]:
            direction = tr.limit_direction(r.order.side)
            level = r.order.price
            touch = tr.first_touch(direction, level, cur, move.end, move.gap)  # type: ignore[arg-type]
            cands.append((_reached_at(move, direction, level), r.seq, touch, "Limit", r, None))  # type: ignore[arg-type]
        for c in cands:
            if c[2] is not None and (best is None or c[:2] < best[:2]):
                best = c
        return best

    def _fire(self, symbol: str, kind: str, touch: Decimal, r: Resting | None, t: int) -> list[Event]:
        book = self.book
        if r is not None:
            book.resting[symbol] = [x for x in book.resting[symbol] if x is not r]
            o = r.order
            qty = o.qty
            if o.reduce_only:
                qty = min(qty, book.closing_capacity(symbol, o.side))
                if qty == 0:
                    return []
            return [self._fill_order(o, qty, o.price, True, t)]  # type: ignore[arg-type]
        p = book.positions[symbol]
        side = "Sell" if p.qty > 0 else "Buy"
        price = tr.stop_fill_price(side, touch, self.rules.slippage_bps, book.instruments[symbol].tick_size)
        return [book.fill(symbol, side, abs(p.qty), price, False, t, "", STOP_REASONS[kind], kind)]


def _reached_at(move: tr.Move, direction: int, level: Decimal) -> Decimal:
    """How far along the move, in the condition's own direction, a level lies (services/bybit_sim/walk.py):
    the order in which levels are reached; a level passed before the move starts is negative."""
    return move.start - level if direction == tr.FALLING else level - move.start
