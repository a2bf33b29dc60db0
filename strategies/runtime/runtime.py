"""Runtime: drives one strategy from events, owns its context, state and guards.

It is synchronous and does no IO, so the backtester calls it directly, bar after bar, and a live
process wraps it: after each event it persists `take_state_changes()` through a `StateStore`, then
sends `drain()` to its `VenueAdapter`. A handler that raises is contained: its state writes and
orders are dropped, the symbol it was handling is halted (every symbol when the event has none),
the error is logged and announced as a `strategy_error` notice, and the process runs on.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from strategies.runtime.context import Context
from strategies.runtime.guarding import RiskGate
from strategies.runtime.model import Bar, Control, BotFill, Position, Rejection
from strategies.runtime.orders import Decision
from strategies.runtime.state import JSONValue
from strategies.runtime.strategy import Strategy

log = structlog.get_logger()


def bar_order(bars: Iterable[Bar], interval_ms: Callable[[str], int]) -> list[Bar]:
    """Bars closing at the same instant are handled by symbol, then by interval length."""
    return sorted(bars, key=lambda b: (b.symbol, interval_ms(b.interval)))


class Runtime:
    def __init__(self, strategy: Strategy[Any], ctx: Context) -> None:
        self.strategy = strategy
        self.ctx = ctx
        self.errors = 0
        self._timers = list(strategy.timers())
        self._next_fire: dict[str, int] = {}
        risk = strategy.risk_config()
        if risk is not None:
            ctx.risk = RiskGate(risk, ctx)
            ctx.guards.insert(0, ctx.risk)

    def guard_tick(self, now_ms: int) -> None:
        """Equity guards, once per instant before the strategy decides (no-op without guards)."""
        if self.ctx.risk is not None:
            self.ctx.now_ms = now_ms
            self.ctx.cause = "guard"
            self.ctx.risk.tick(self.ctx)
            self.ctx.state.commit()

    # --- events -------------------------------------------------------------------------------
    def start(self, now_ms: int) -> None:
        self.ctx.now_ms = now_ms
        self._next_fire = {t.name: t.next_after(now_ms - 1) for t in self._timers}
        self._call(None, self.strategy.on_start, self.ctx)

    def bar(self, bar: Bar) -> None:
        ctx = self.ctx
        ctx.now_ms = bar.close_ms
        if ctx.halted_all or bar.symbol in ctx.halted:
            return
        self._call(bar.symbol, self.strategy.on_bar, ctx, bar)

    def fill(self, fill: BotFill) -> None:
        self.ctx.now_ms = max(self.ctx.now_ms, fill.time_ms)
        self._call(fill.symbol, self.strategy.on_fill, self.ctx, fill)

    def position(self, position: Position, time_ms: int) -> None:
        self.ctx.now_ms = max(self.ctx.now_ms, time_ms)
        self._call(position.symbol, self.strategy.on_position, self.ctx, position)

    def rejected(self, rejection: Rejection) -> None:
        self.ctx.now_ms = max(self.ctx.now_ms, rejection.time_ms)
        self.ctx.emit("order_rejected", symbol=rejection.symbol, order_link_id=rejection.order_link_id,
                      code=rejection.code, message=rejection.message)
        self._call(rejection.symbol, self.strategy.on_rejected, self.ctx, rejection)

    def timers_due(self, until_ms: int) -> list[tuple[int, str]]:
        """Timer firings at or before `until_ms`, in time order (ties in declaration order)."""
        due: list[tuple[int, int, str]] = []
        for i, t in enumerate(self._timers):
            at = self._next_fire.get(t.name)
            while at is not None and at <= until_ms:
                due.append((at, i, t.name))
                at = t.next_after(at)
            self._next_fire[t.name] = at  # type: ignore[assignment]
        return [(at, name) for at, _, name in sorted(due)]

    def timer(self, name: str, at_ms: int) -> None:
        self.ctx.now_ms = at_ms
        self._call(None, self.strategy.on_timer, self.ctx, name)

    def control(self, command: Control, now_ms: int) -> None:
        """Obeyed by the runtime itself (even when the strategy is broken), then told to the strategy."""
        ctx = self.ctx
        ctx.now_ms = now_ms
        ctx.cause = "control"
        if command is Control.PAUSE:
            ctx.paused = True
        elif command is Control.RESUME:
            ctx.paused = False
        elif command is Control.FLATTEN:
            ctx.paused = True
            ctx.cancel_all()
            for pos in ctx.positions():
                ctx.close(pos.symbol, reason="flatten")
            ctx.state.commit()
        ctx.emit("control", command=command.value)
        self._call(None, self.strategy.on_control, ctx, command, halt=False)

    # --- output -------------------------------------------------------------------------------
    def drain(self) -> list[Decision]:
        out = list(self.ctx.decisions)
        self.ctx.decisions.clear()
        return out

    def take_state_changes(self) -> tuple[dict[str, JSONValue], set[str]]:
        return self.ctx.state.take_changes()

    # --- containment --------------------------------------------------------------------------
    def _call(self, symbol: str | None, handler: Callable[..., None], *args: Any, halt: bool = True) -> None:
        mark = len(self.ctx.decisions)
        self.ctx.cause = handler.__name__
        try:
            handler(*args)
        except Exception as exc:  # a bot's bug must not take the process (or other symbols) down
            self.contain(symbol, handler.__name__, exc, mark, halt)
        else:
            self.ctx.state.commit()

    def contain(self, symbol: str | None, handler: str, exc: Exception, mark: int, halt: bool = True) -> None:
        """Undo what the failed handler did (state writes, decisions after `mark`), halt, tell."""
        ctx = self.ctx
        ctx.state.rollback()
        del ctx.decisions[mark:]
        self.errors += 1
        if halt:
            if symbol is None:
                ctx.halted_all = True
            else:
                ctx.halted.add(symbol)
        log.error("strategy_error", bot_id=ctx.bot_id, handler=handler, symbol=symbol, error=repr(exc),
                  traceback="".join(traceback.format_exception(exc, limit=5)))
        ctx.emit("strategy_error", handler=handler, symbol=symbol, error=repr(exc),
                 halted=symbol if (halt and symbol is not None) else "all" if halt else "none")
