"""The trigger rule: when a resting order or a stop fires along the price path, and at what price (pure).

The venue and any backtester that must match it trade-for-trade use these functions and nothing else.

The path is a sequence of `Move`s, each monotonic. Inside a replayed 5-minute candle the path runs
open -> first extreme -> second extreme -> close (low first on an up candle, high first on a down
candle), each leg continuous: it passes through every price between its ends. From one candle's
close to the next candle's open (and when an operator pins a price) the path jumps: a gap, with
no price in between. `candle_moves` gives exactly these moves for one candle.

The trigger price is the last price (= mark = index on this venue). A condition "price <= level"
(a buy limit, a falling stop) or "price >= level" (a sell limit, a rising stop) first holds, on a
move from `cur` to `end`, at `first_touch(...)`:
  - already true at `cur`            -> `cur`
  - reached inside a continuous move -> `level` itself
  - jumped over by a gap             -> `end`, the first price past the level (for a gap at a
                                        candle's open, that is the open)
  - otherwise                        -> not triggered on this move.
A stop (TP, SL, trailing stop, conditional market order) fills at that touch price moved against
the trader by the slippage (`stop_fill_price`; 0 bps by default, so exactly the touch price), as a
taker. A limit order fills at its own limit price as a maker. Several orders reached on one move
fire in the order they are reached along it (nearest level first); orders at the same level in
the order they were placed (older first); each fill can change what is still pending.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

RISING = 1   # Bybit triggerDirection 1: fires when the price rises to the trigger
FALLING = 2  # Bybit triggerDirection 2: fires when the price falls to the trigger


@dataclass(frozen=True)
class Move:
    start: Decimal
    end: Decimal
    gap: bool  # True: a jump from start to end; False: continuous through every price between

    @property
    def falling(self) -> bool:
        return self.end < self.start


def candle_moves(prev_close: Decimal | None, open_: Decimal, high: Decimal, low: Decimal,
                 close: Decimal) -> list[Move]:
    """The venue's path through one candle (zero-length moves dropped)."""
    first, second = (low, high) if close >= open_ else (high, low)
    moves = []
    if prev_close is not None and prev_close != open_:
        moves.append(Move(prev_close, open_, True))
    for a, b in ((open_, first), (first, second), (second, close)):
        if a != b:
            moves.append(Move(a, b, False))
    return moves


def first_touch(direction: int, level: Decimal, cur: Decimal, end: Decimal, gap: bool) -> Decimal | None:
    """Where on the move from `cur` to `end` the condition fires (see the module text), or None."""
    if direction == FALLING:
        if cur <= level:
            return cur
        if end <= level:
            return end if gap else level
        return None
    if cur >= level:
        return cur
    if end >= level:
        return end if gap else level
    return None


def stop_fill_price(side: str, touch: Decimal, slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """A triggered stop's fill: the touch price moved against the trader by `slippage_bps`, on the tick."""
    if not slippage_bps:
        return touch
    factor = slippage_bps / Decimal(10000)
    if side == "Buy":
        return (touch * (1 + factor) / tick).to_integral_value(ROUND_CEILING) * tick
    return (touch * (1 - factor) / tick).to_integral_value(ROUND_FLOOR) * tick


def limit_direction(side: str) -> int:
    """A resting buy limit fills when the price falls to it; a sell limit when it rises to it."""
    return FALLING if side == "Buy" else RISING


def tpsl_direction(position_side: str, kind: str) -> int:
    """Which way the price must go to hit a position's `StopLoss`, `TakeProfit` or `TrailingStop`."""
    long = position_side == "Buy"
    if kind == "TakeProfit":
        return RISING if long else FALLING
    return FALLING if long else RISING


def trail_level(position_side: str, extreme: Decimal, distance: Decimal) -> Decimal:
    """A trailing stop's current level: the best price since activation, less (long) / plus (short) the distance."""
    return extreme - distance if position_side == "Buy" else extreme + distance


def trail_activates(position_side: str, active_price: Decimal, cur: Decimal, end: Decimal,
                    gap: bool) -> Decimal | None:
    """Where a trailing stop with an activation price activates on a move (a short when the price
    falls to it, a long when it rises to it); 0 means active from the start."""
    if not active_price:
        return cur
    return first_touch(RISING if position_side == "Buy" else FALLING, active_price, cur, end, gap)


def trail_extreme(position_side: str, extreme: Decimal, price: Decimal) -> Decimal:
    """The best price since activation after the price has been at `price`."""
    return max(extreme, price) if position_side == "Buy" else min(extreme, price)


@dataclass(frozen=True)
class TrailState:
    active: bool
    extreme: Decimal  # the best price since activation (highest for a long, lowest for a short)


def trail_on_move(position_side: str, distance: Decimal, active_price: Decimal, state: TrailState,
                  cur: Decimal, end: Decimal, gap: bool) -> tuple[TrailState, Decimal | None]:
    """A trailing stop over the move from `cur` to `end`: its state after the move, and where it fired
    (None if it did not). Activation, then stop = best price since activation -/+ distance, fired by
    `first_touch`; a move never both moves the stop and crosses it, since each move is monotonic."""
    if not state.active:
        at = trail_activates(position_side, active_price, cur, end, gap)
        if at is None:
            return state, None
        state, cur = TrailState(True, at), at
    level = trail_level(position_side, state.extreme, distance)
    touch = first_touch(tpsl_direction(position_side, "TrailingStop"), level, cur, end, gap)
    if touch is not None:
        return state, touch
    return TrailState(True, trail_extreme(position_side, state.extreme, end)), None
