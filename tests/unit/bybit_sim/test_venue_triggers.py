"""The trigger rule (triggers.py) on hand-made moves, and the venue's path being exactly the rule's path."""
from __future__ import annotations

import random
from decimal import Decimal as D

from services.bybit_sim.candles import CANDLE_MS, PricePath, parse_candles
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.triggers import (FALLING, RISING, Move, TrailState, candle_moves, first_touch,
                                         stop_fill_price, trail_on_move, tpsl_direction)

CSV = """timestamp,open,high,low,close,volume
2025-04-03 17:05:00+00:00,100.0,110.0,95.0,105.0,10.0
2025-04-03 17:10:00+00:00,103.0,106.0,90.0,92.5,20.0
2025-04-03 17:15:00+00:00,92.5,93.0,92.0,92.0,1.0
2025-04-03 17:20:00+00:00,80.0,85.0,79.0,84.0,1.0
2025-04-03 17:25:00+00:00,84.0,84.0,84.0,84.0,1.0
"""


def test_first_touch_continuous_gap_and_already_past() -> None:
    assert first_touch(FALLING, D("95"), D("100"), D("90"), False) == D("95")   # reached on the way: the level
    assert first_touch(FALLING, D("95"), D("100"), D("90"), True) == D("90")    # jumped over: the first price past
    assert first_touch(FALLING, D("95"), D("100"), D("96"), False) is None
    assert first_touch(FALLING, D("95"), D("94"), D("99"), False) == D("94")    # already past where the move starts
    assert first_touch(FALLING, D("95"), D("100"), D("95"), True) == D("95")    # touching is enough
    assert first_touch(RISING, D("105"), D("100"), D("110"), False) == D("105")
    assert first_touch(RISING, D("105"), D("100"), D("110"), True) == D("110")
    assert first_touch(RISING, D("105"), D("100"), D("104.9"), True) is None


def test_candle_moves_follow_open_extremes_close_with_the_gap_first() -> None:
    up = candle_moves(D("98"), D("100"), D("110"), D("95"), D("105"))
    assert up == [Move(D("98"), D("100"), True), Move(D("100"), D("95"), False), Move(D("95"), D("110"), False),
                  Move(D("110"), D("105"), False)]
    down = candle_moves(D("100"), D("100"), D("101"), D("90"), D("91"))
    assert down == [Move(D("100"), D("101"), False), Move(D("101"), D("90"), False), Move(D("90"), D("91"), False)]
    assert candle_moves(None, D("5"), D("5"), D("5"), D("5")) == []


def _merge(moves: list[Move]) -> list[Move]:
    """Join continuous moves that carry on in the same direction (one leg cut by a sample)."""
    out: list[Move] = []
    for m in moves:
        last = out[-1] if out else None
        if last is not None and not m.gap and not last.gap and last.end == m.start \
                and (m.end > m.start) == (last.end > last.start):
            out[-1] = Move(last.start, m.end, False)
        else:
            out.append(m)
    return out


def test_the_venue_path_sampled_anywhere_is_the_rule_path() -> None:
    inst = INSTRUMENTS["ETHUSDT"]
    candles = parse_candles(CSV, inst.tick_size)
    path = PricePath(inst, candles)
    tick = inst.tick_size
    t0, t_end = path.start_ms, path.start_ms + len(candles) * CANDLE_MS
    expected: list[Move] = []
    prev = None
    for c in candles:
        expected += candle_moves(prev, *(x * tick for x in (c.open, c.high, c.low, c.close)))
        prev = c.close * tick
    expected.append(Move(prev, candles[0].open * tick, True))  # wraps around to the first candle
    whole = path.moves(t0, t_end)
    assert whole == expected
    rng = random.Random(3)
    for _ in range(50):
        cuts = sorted({t0, t_end, *(rng.randrange(t0, t_end) for _ in range(rng.randrange(1, 40)))})
        pieces = [m for a, b in zip(cuts, cuts[1:]) for m in path.moves(a, b)]
        assert _merge(pieces) == _merge(expected)


def test_trailing_stop_short_activates_then_trails_the_low() -> None:
    s = TrailState(False, D(0))
    s, hit = trail_on_move("Sell", D("100"), D("49500"), s, D("50000"), D("49700"), False)
    assert (s, hit) == (TrailState(False, D(0)), None)                      # not yet at the activation price
    s, hit = trail_on_move("Sell", D("100"), D("49500"), s, D("49700"), D("49400"), False)
    assert (s, hit) == (TrailState(True, D("49400")), None)                 # active, lowest 49400
    s, hit = trail_on_move("Sell", D("100"), D("49500"), s, D("49400"), D("49480"), False)
    assert (s, hit) == (TrailState(True, D("49400")), None)                 # 49480 < 49400 + 100
    s2, hit = trail_on_move("Sell", D("100"), D("49500"), s, D("49480"), D("49600"), False)
    assert hit == D("49500")                                                # stop = low + distance
    s3, hit = trail_on_move("Sell", D("100"), D("49500"), s, D("49480"), D("49650"), True)
    assert hit == D("49650")                                                # a gap fills at the first price past


def test_trailing_stop_long_without_activation_price_is_active_at_once() -> None:
    s, hit = trail_on_move("Buy", D("5"), D(0), TrailState(False, D(0)), D("100"), D("120"), False)
    assert (s, hit) == (TrailState(True, D("120")), None)
    s, hit = trail_on_move("Buy", D("5"), D(0), s, D("120"), D("110"), False)
    assert hit == D("115")
    assert tpsl_direction("Buy", "TrailingStop") == FALLING and tpsl_direction("Sell", "TakeProfit") == FALLING


def test_stop_fill_price_slips_against_the_trader_on_the_tick() -> None:
    tick = D("0.10")
    assert stop_fill_price("Sell", D("50000"), D(0), tick) == D("50000")
    assert stop_fill_price("Sell", D("50000.00"), D("3"), tick) == D("49985.0")
    assert stop_fill_price("Buy", D("50000.00"), D("1.1"), tick) == D("50005.5")
    assert stop_fill_price("Buy", D("100.01"), D("1"), tick) == D("100.1")  # rounded away from the trader
