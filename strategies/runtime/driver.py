"""The live loop body around a Runtime: each event in, state saved, then orders out (no sockets here).

A live bot process (next: the exchange adapter) owns the connections; for every event it calls one
of these methods. The order of effects is the guarantee a restart relies on: the strategy's state
changes (its order-id counter included) are saved through the `StateStore` before the decisions that
depend on them are handed to `send`, so a bot killed at any point restarts with a counter past every
id it may have sent.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from strategies.runtime.context import Account, Context, EntryGuard
from strategies.runtime.feeds import IncrementalFeed
from strategies.runtime.model import Bar, Control, Fill, Instrument, Position, Rejection
from strategies.runtime.orders import Decision
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

    async def fill(self, fill: Fill, position: Position) -> None:
        self.runtime.fill(fill)
        self.runtime.position(position, fill.time_ms)
        await self._flush()

    async def rejected(self, rejection: Rejection) -> None:
        self.runtime.rejected(rejection)
        await self._flush()

    async def control(self, command: Control, now_ms: int) -> None:
        self.runtime.control(command, now_ms)
        await self._flush()

    async def _flush(self) -> None:
        changed, deleted = self.runtime.take_state_changes()
        if deleted:
            await self.store.delete(deleted)
        if changed:
            await self.store.save(changed)
        decisions = self.runtime.drain()
        if decisions:
            await self.send(decisions)
