"""The bar-driven backtest: one strategy, historical candles, the venue's fill rules.

Every symbol runs on one execution interval (the finest the strategy subscribes to, or what the
caller asks); longer subscribed intervals are resampled from it on UTC boundaries and close with
the last candle of their bucket. Per candle start `t`, for each symbol (sorted): the open phase and
the intrabar path (strategies/backtest/matching.py), delivering each fill to the strategy as it
happens; then at the close `T`: timers due up to `T`, then the bars closing at `T` by symbol, then
interval. Decisions made at `T` execute at the next candle's open. Candles before `start_ms` only
warm up history and indicators: no handler runs on them.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from services.bybit_sim import triggers as tr
from strategies.backtest.book import Book
from strategies.backtest.config import RunSettings
from strategies.backtest.matching import Event, Matcher
from strategies.backtest.result import BacktestResult
from strategies.runtime.candles import INTERVAL_MS, Candles
from strategies.runtime.context import Context, EntryGuard
from strategies.runtime.feeds import ArrayFeed, IncrementalFeed, Subscription
from strategies.runtime.model import BotFill, Instrument, Rejection
from strategies.runtime.orders import CancelAll, Decision
from strategies.runtime.runtime import Runtime
from strategies.runtime.state import StrategyState
from strategies.runtime.strategy import Strategy

D = Decimal


def execution_interval(subs: Sequence[Subscription]) -> str:
    return min((s.interval for s in subs), key=INTERVAL_MS.__getitem__)


class Backtest:
    def __init__(self, strategy: Strategy[Any], candles: Mapping[str, Candles], *, start_ms: int | None = None,
                 settings: RunSettings = RunSettings(), instruments: Mapping[str, Instrument],
                 guards: Sequence[EntryGuard] = (), state: Mapping[str, Any] | None = None,
                 incremental: bool = False) -> None:
        self.strategy = strategy
        self.subs = list(strategy.subscriptions())
        self.base = {s: c for s, c in candles.items()}
        intervals = {c.interval for c in self.base.values()}
        if len(intervals) != 1:
            raise ValueError(f"all symbols need one execution interval, got {sorted(intervals)}")
        self.interval = intervals.pop()
        self.base_ms = INTERVAL_MS[self.interval]
        for sub in self.subs:
            if sub.symbol not in self.base:
                raise ValueError(f"no candles for {sub.symbol}")
            if INTERVAL_MS[sub.interval] < self.base_ms:
                raise ValueError(f"{sub.key}: finer than the execution interval {self.interval}")
        first = min(int(c.start_ms[0]) for c in self.base.values() if len(c))
        self.start_ms = first if start_ms is None else start_ms
        self.settings = settings
        traded = {s.symbol for s in self.subs if s.trade}
        self.book = Book(strategy.config.bot_id, {s: instruments[s] for s in sorted(traded)}, settings)
        self.matcher = Matcher(self.book)
        # incremental=True feeds indicators one bar at a time, as the live process does (slower; the
        # tests hold both modes to the same decisions)
        self.feed = ArrayFeed()
        self.live_feed = IncrementalFeed(self.subs) if incremental else None
        self.ctx = Context(strategy.config.bot_id, self.live_feed or self.feed, self.book, self.book.instruments,
                           StrategyState(state), guards)
        self.runtime = Runtime(strategy, self.ctx)
        self.pending: dict[str, list[Decision]] = {s: [] for s in self.book.instruments}
        self.equity: list[tuple[int, float]] = []
        self.decision_log: list[Decision] = []  # every decision, in order (the look-ahead guard reads it)

    def _steps(self) -> list[tuple[int, list[tuple[str, int]], list[tuple[Any, ...]]]]:
        """Per execution-candle start t: (symbol, index) opening at t, and the subscribed bars that
        close at t + interval as (key, index, bar), sorted by symbol then interval length."""
        opens: dict[int, list[tuple[str, int]]] = {}
        for sym in sorted(self.base):
            if sym in self.book.instruments:
                for i, t in enumerate(self.base[sym].start_ms.tolist()):
                    if t in opens:
                        opens[t].append((sym, i))
                    else:
                        opens[t] = [(sym, i)]
        closes: dict[int, list[tuple[Any, ...]]] = {}
        for sub in sorted(self.subs, key=lambda s: (s.symbol, INTERVAL_MS[s.interval])):
            key = sub.key
            for i, bar in enumerate(self.feed.add(sub, self.base[sub.symbol].resample(sub.interval))):
                at = bar.close_ms - self.base_ms
                if at in closes:
                    closes[at].append((key, i, bar))
                else:
                    closes[at] = [(key, i, bar)]
        empty: list[Any] = []
        return [(t, opens.get(t, empty), closes.get(t, empty)) for t in sorted(opens.keys() | closes.keys())]

    def run(self, progress: Callable[[int], None] | None = None) -> BacktestResult:
        """The whole run. The cycle collector is paused meanwhile: the run allocates hundreds of
        thousands of small acyclic objects and full collections over them cost more than the run."""
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(progress)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _run(self, progress: Callable[[int], None] | None) -> BacktestResult:
        began = time.perf_counter()
        steps = self._steps()
        rt, ctx, book, pending = self.runtime, self.ctx, self.book, self.pending
        feed_pos, decisions, state = self.feed.pos, ctx.decisions, ctx.state
        on_bar = self.strategy.on_bar
        prices = {s: (c.open.tolist(), c.high.tolist(), c.low.tolist(), c.close.tolist()) for s, c in self.base.items()}
        start_ms, base_ms = self.start_ms, self.base_ms
        # a zero funding rate settles nothing: no candle needs the open phase for it
        funding_ms = self.settings.rules.funding_interval_h * 3_600_000 if self.settings.rules.funding_rate else 1 << 62
        positions, resting, last = book.positions, book.resting, book.last
        has_timers = bool(rt._timers)
        has_risk = ctx.risk is not None
        live_feed = self.live_feed
        equity = self.equity
        started = False
        candles = 0
        for n, (t, opens, closes) in enumerate(steps):
            for sym, i in opens:
                candles += 1
                p = positions.get(sym)
                if pending[sym] or resting[sym] or (p is not None and p.qty and (
                        p.sl or p.tp or p.trail or t % funding_ms == 0)):
                    self._candle(sym, i, t, prices[sym], funding_ms)
                last[sym] = prices[sym][3][i]
            T = t + base_ms
            if live_feed is not None:
                for _key, _i, bar in closes:
                    live_feed.push(bar)
            if T < start_ms:
                for key, i, _bar in closes:
                    feed_pos[key] = i
                continue
            if not started:
                started = True
                rt.start(T)
                self._route(rt.drain())
            if has_risk:
                rt.guard_tick(T)
            if has_timers:
                for at, name in rt.timers_due(T):
                    rt.timer(name, at)
            for key, i, bar in closes:
                feed_pos[key] = i
                if ctx.halted_all or (ctx.halted and bar.symbol in ctx.halted):
                    continue
                ctx.now_ms = T
                ctx.cause = "on_bar"
                mark = len(decisions)
                try:  # Runtime.bar, inlined: the hot path of every backtest
                    on_bar(ctx, bar)
                except Exception as exc:
                    rt.contain(bar.symbol, "on_bar", exc, mark)
                else:
                    if state._journal:
                        state.commit()
            if decisions:
                self._route(rt.drain())
            equity.append((T, book.equity_float()))
            if progress is not None and n % 2000 == 0:
                progress(n)
        if progress is not None:
            progress(len(steps))
        return BacktestResult.build(self, candles, time.perf_counter() - began)

    def _route(self, decisions: list[Decision]) -> None:
        self.decision_log += decisions
        for d in decisions:
            sym = getattr(d.intent, "symbol", None)
            if sym is None and isinstance(d.intent, CancelAll):
                for s in self.pending:
                    self.pending[s].append(Decision(d.time_ms, CancelAll(s)))
            elif sym in self.pending:
                self.pending[sym].append(d)
            else:  # a data-only symbol (Subscription(trade=False)) or one without candles
                self.runtime.rejected(Rejection(d.time_ms, str(sym), getattr(d.intent, "order_link_id", ""), 10001,
                                                f"{sym} is not traded by this backtest"))

    def _candle(self, sym: str, i: int, t: int, px: tuple[list[float], ...], funding_ms: int) -> None:
        book, m = self.book, self.matcher
        p = book.positions[sym]
        walk = bool(book.resting[sym]) or bool(p.qty and (p.sl or p.tp or p.trail))
        o = D(repr(px[0][i]))
        moves = []
        events: list[Event] = []
        if walk:
            prev = D(repr(px[3][i - 1])) if i > 0 else None
            moves = tr.candle_moves(prev, o, D(repr(px[1][i])), D(repr(px[2][i])), D(repr(px[3][i])))
            if moves and moves[0].gap:
                events += m.run_move(sym, moves.pop(0), t)
        if t % funding_ms == 0:
            book.settle_funding(sym, o, t)
        for _round in range(8):  # decisions made on fills at the open execute at the open too
            todo, self.pending[sym] = self.pending[sym], []
            events += m.execute(sym, todo, o, t)
            self._deliver(events)
            events = []
            if not self.pending[sym]:
                break
        if not walk and (book.resting[sym] or (p.qty and (p.sl or p.tp or p.trail))):
            moves = tr.candle_moves(None, o, D(repr(px[1][i])), D(repr(px[2][i])), D(repr(px[3][i])))
        leg_ms = self.base_ms // 3
        for k, move in enumerate(moves):
            events += m.run_move(sym, move, t + k * leg_ms, leg_ms)
        self._deliver(events)  # decisions made on intrabar fills execute at the next open

    def _deliver(self, events: list[Event]) -> None:
        rt = self.runtime
        for e in events:
            if isinstance(e, BotFill):
                rt.fill(e)
                rt.position(self.book.position(e.symbol), e.time_ms)
            else:
                rt.rejected(e)
        if self.ctx.decisions:
            self._route(rt.drain())
