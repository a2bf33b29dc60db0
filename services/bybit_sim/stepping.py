"""The stepped clock (`serve --stepped`): venue time stops at every 5-minute candle close until the
bots' orders for that candle are in, then runs on at `--speed`.

The hold starts on the tick that reaches the close, after that tick has pushed the closed klines. It
ends once `quiet_ms` of wall time has passed with no order request (create, cancel, cancel-all,
trading-stop, set-leverage) since the hold began or since the last such request, or `max_ms` after
it began, or on `POST /admin/clock/step`. While held, the venue's time is the close instant: the price
is the next candle's open (the gap from the close to it already walked, so stops it crosses have
fired), and an order placed during the hold fills there. So the same seed and the same orders per
candle give the same executions, however long the bots take (within `max_ms`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.bybit_sim.candles import CANDLE_MS
from services.bybit_sim.market import VenueClock


@dataclass(frozen=True)
class StepConfig:
    quiet_ms: int = 300
    max_ms: int = 5000


def next_close(venue_ms: int) -> int:
    """The first 5-minute candle close strictly after `venue_ms`."""
    return (venue_ms // CANDLE_MS + 1) * CANDLE_MS


class Stepper:
    def __init__(self, clock: VenueClock, config: StepConfig) -> None:
        self.clock = clock
        self.config = config
        clock.hold_ms = next_close(clock.venue_start_ms)
        self.held_since_ms: int | None = None  # wall time the current hold began
        self.last_activity_ms = 0
        self.orders_in_hold = 0
        self.steps = 0
        self._step_now = False

    @property
    def held(self) -> bool:
        return self.held_since_ms is not None

    def activity(self, wall_now_ms: int) -> None:
        """An order request arrived: a hold lasts until `quiet_ms` passes without one."""
        self.last_activity_ms = wall_now_ms
        if self.held:
            self.orders_in_hold += 1

    def request_step(self) -> bool:
        if not self.held:
            return False
        self._step_now = True
        return True

    def on_tick(self, venue_now_ms: int, wall_now_ms: int) -> None:
        """Called after each tick's pushes: begins a hold at the close, ends it when it is time."""
        hold = self.clock.hold_ms
        if hold is None or venue_now_ms < hold:
            return
        if self.held_since_ms is None:
            self.held_since_ms = wall_now_ms
            self.orders_in_hold = 0
            return
        quiet_since = max(self.held_since_ms, self.last_activity_ms)
        if self._step_now or wall_now_ms - quiet_since >= self.config.quiet_ms \
                or wall_now_ms - self.held_since_ms >= self.config.max_ms:
            self.clock.release(wall_now_ms, next_close(hold))
            self.held_since_ms = None
            self._step_now = False
            self.steps += 1

    def status(self, wall_now_ms: int) -> dict[str, Any]:
        return {"stepped": True, "held": self.held, "hold_at_ms": self.clock.hold_ms,
                "held_for_ms": wall_now_ms - self.held_since_ms if self.held_since_ms is not None else 0,
                "orders_in_hold": self.orders_in_hold, "steps": self.steps, "quiet_ms": self.config.quiet_ms,
                "max_ms": self.config.max_ms}
