"""The stepped clock's hold: begins at the close, lasts until a quiet period or the maximum, and
resumes venue time from the close (no venue time skipped)."""
from __future__ import annotations

from services.bybit_sim.candles import CANDLE_MS
from services.bybit_sim.market import VenueClock
from services.bybit_sim.stepping import StepConfig, Stepper, next_close

START = 1_743_000_000_000 // CANDLE_MS * CANDLE_MS + 123_000  # venue time, mid-candle
WALL = 1_790_000_000_000


def _stepper(quiet: int = 300, max_ms: int = 2000) -> tuple[VenueClock, Stepper]:
    clock = VenueClock(START, 1000.0, real_start_ms=WALL)
    return clock, Stepper(clock, StepConfig(quiet, max_ms))


def test_time_stops_at_the_next_close_and_resumes_from_it() -> None:
    clock, stepper = _stepper()
    close = next_close(START)
    assert clock.hold_ms == close
    assert clock.venue_at(WALL + 100) == START + 100_000
    assert clock.venue_at(WALL + 10_000) == close            # held, however long the wall clock runs
    stepper.on_tick(close, WALL + 200)
    assert stepper.held
    stepper.on_tick(close, WALL + 499)
    assert stepper.held                                       # 299 ms quiet < 300
    stepper.on_tick(close, WALL + 500)
    assert not stepper.held and stepper.steps == 1 and clock.hold_ms == close + CANDLE_MS
    assert clock.venue_at(WALL + 501) == close + 1_000         # runs on from the close


def test_order_activity_extends_the_hold_up_to_the_maximum() -> None:
    clock, stepper = _stepper(quiet=300, max_ms=1000)
    close = clock.hold_ms
    stepper.on_tick(close, WALL)
    for t in range(100, 1000, 200):                            # an order every 200 ms: never 300 ms quiet
        stepper.activity(WALL + t)
        stepper.on_tick(close, WALL + t + 50)
        assert stepper.held
    assert stepper.orders_in_hold == 5
    stepper.on_tick(close, WALL + 1000)
    assert not stepper.held                                    # the maximum ends it


def test_a_requested_step_ends_the_hold_at_the_next_tick() -> None:
    clock, stepper = _stepper(quiet=10_000, max_ms=60_000)
    assert not stepper.request_step()                          # nothing to end while running
    stepper.on_tick(clock.hold_ms, WALL)
    assert stepper.request_step()
    stepper.on_tick(clock.hold_ms, WALL + 1)
    assert not stepper.held and stepper.steps == 1
