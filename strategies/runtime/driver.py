"""The live loop body around a Runtime: each event in, state saved, then orders out (no sockets here).

A live bot process (next: the exchange adapter) owns the connections; for every event it calls one
of these methods. The order of effects is the guarantee a restart relies on: the strategy's state
changes (its order-id counter included) and the decisions themselves (`_outbox`) are saved through
the `StateStore` in one write before the decisions are handed to `send`, and the outbox is cleared
once they were sent. A bot killed at any point restarts with a counter past every id it may have
sent, and `resend` sends again what it had decided but maybe not sent (orders are idempotent through
their orderLinkId), so no decision is lost or made twice.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from strategies.runtime.context import Account, Context, EntryGuard
from strategies.runtime.feeds import IncrementalFeed
from strategies.runtime.model import Bar, Control, BotFill, Instrument, Position, Rejection
from strategies.runtime.orders import Decision
from strategies.runtime.outbox import OUTBOX_KEY, decision_from_json, decision_to_json
from strategies.runtime.runtime import Runtime
from strategies.runtime.state import StateStore, StrategyState
from strategies.runtime.strategy import Strategy

Send = Callable[[list[Decision]], Awaitable[None]]


class LiveDriver:
    def __init__(self, runtime: Runtime, feed: IncrementalFeed, store: StateStore, send: Send) -> None:
        self.runtime, self.feed, self.store, self.send = runtime, feed, store, send

    @classmethod
    async def load(cls, strategy: Strategy[Any], *, store: StateStore, account: Account,
                   instruments: Mapping[str, Instrument], send: Send,
                   guards: Sequence[EntryGuard] = ()) -> LiveDriver:
        """The strategy with its saved state, an empty incremental feed (warm it with `warm`)."""
        feed = IncrementalFeed(list(strategy.subscriptions()))
        state = StrategyState(await store.load())
        ctx = Context(strategy.config.bot_id, feed, account, instruments, state, guards)
        return cls(Runtime(strategy, ctx), feed, store, send)

    def warm(self, bars: Sequence[Bar]) -> None:
        """History before the first decision (from /v5/market/kline): indicators only, no handler."""
        for bar in bars:
            self.feed.push(bar)

    async def start(self, now_ms: int) -> None:
        self.runtime.start(now_ms)
        await self._flush()

    async def bar(self, bar: Bar) -> None:
        self.feed.push(bar)
        self.runtime.guard_tick(bar.close_ms)
        for at, name in self.runtime.timers_due(bar.close_ms):
            self.runtime.timer(name, at)
        self.runtime.bar(bar)
        await self._flush()

    async def timers(self, now_ms: int) -> None:
        for at, name in self.runtime.timers_due(now_ms):
            self.runtime.timer(name, at)
        await self._flush()

    async def fill(self, fill: BotFill, position: Position) -> None:
        self.runtime.fill(fill)
        self.runtime.position(position, fill.time_ms)
        await self._flush()

    async def rejected(self, rejection: Rejection) -> None:
        self.runtime.rejected(rejection)
        await self._flush()

    async def control(self, command: Control, now_ms: int) -> None:
        self.runtime.control(command, now_ms)
        await self._flush()

    async def resend(self) -> list[Decision]:
        """After a restart: the decisions saved with their state whose sending may not have finished
        (`_outbox`), sent again (the exchange refuses a repeated orderLinkId: 110072)."""
        raw = self.runtime.ctx.state.get(OUTBOX_KEY)
        if not raw:
            return []
        decisions = [decision_from_json(d) for d in raw]  # type: ignore[union-attr, arg-type]
        await self.send(decisions)
        await self._clear_outbox()
        return decisions

    async def _clear_outbox(self) -> None:
        state = self.runtime.ctx.state
        state.delete(OUTBOX_KEY)
        state.commit()
        state.take_changes()
        await self.store.delete([OUTBOX_KEY])

    async def _flush(self) -> None:
        decisions = self.runtime.drain()
        if decisions:  # saved in the same write as the state behind them, cleared once sent
            state = self.runtime.ctx.state
            state.set(OUTBOX_KEY, [decision_to_json(d) for d in decisions])
            state.commit()
        changed, deleted = self.runtime.take_state_changes()
        if deleted:
            await self.store.delete(deleted)
        if changed:
            await self.store.save(changed)
        if decisions:
            await self.send(decisions)
            await self._clear_outbox()
