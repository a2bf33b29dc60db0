"""One live bot process's loop (IO): reconcile, warm up, then events in, state saved, orders out.

Start: the instruments, positions, open orders and wallet from REST; a position the bot's state does
not know is adopted (its opened time = the exchange's createdTime) or, with
`STRATEGY_ADOPT_UNKNOWN_POSITIONS=false`, the bot refuses to trade and says why. Then each subscribed
stream is warmed from `/v5/market/kline` (closed candles only, ending at the last candle the bot
handled, else the last one the listener wrote), and `on_start` runs.

Loop: one XREAD over the listener's `klines:{symbol}:{interval}` streams and the bot's `fills:{bot_id}`:
- own fills first (deduplicated by exec_id; the position re-read from REST), then the candles in time
  order (symbol, then interval length at one close). A candle already handled (its start at or before
  `_bar:{symbol}:{interval}` in the state) is skipped; a gap between the last handled candle and
  the next one in the stream is refilled from REST first. The handled mark and the last fill id
  (`_fills_id`) are saved with the strategy's state, before the orders the event caused are sent.
- control commands (pause / resume / flatten) from `control_channel` are obeyed between reads
  (each read blocks at most `STRATEGY_READ_BLOCK_MS`).
Notices go to `events:{bot_id}`; refusals from the exchange come back as `on_rejected`.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any

import structlog
from redis.asyncio import Redis

from shared.bybit.parse_rows import parse_instrument
from shared.contracts import fill_feed_key
from strategies.runtime.candles import INTERVAL_MS
from strategies.runtime.driver import LiveDriver
from strategies.runtime.feeds import Subscription
from strategies.runtime.live.account import LiveAccount
from strategies.runtime.live.config import LiveSettings
from strategies.runtime.live.events import EventSink
from strategies.runtime.live.exchange import Exchange
from strategies.runtime.live.parsing import (
    BYBIT_INTERVAL, BadInput, bar_from_stream, bars_from_rest, fill_from_stream, bar_stream_key,
)
from strategies.runtime.model import Bar, Control, Instrument, Rejection
from strategies.runtime.orders import Decision
from strategies.runtime.state import StateStore
from strategies.runtime.strategy import Strategy

log = structlog.get_logger()
FILLS_KEY = "_fills_id"
POSITIONS_KEY = "_positions"
REST_KLINE_LIMIT = 1000
SEEN_FILLS = 5000
SEEN_KEY = "_fills_seen"
SEEN_KEPT = 100  # exec_ids kept in the state (a repeat comes soon after the original)


def bar_key(sym: str, interval: str) -> str:
    return f"_bar:{sym}:{interval}"


def _id_start(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


class LiveBot:
    def __init__(self, strategy: Strategy[Any], *, settings: LiveSettings, exchange: Exchange, redis: Redis,
                 store: StateStore, controls: Callable[[], AsyncIterator[dict[str, Any]]] | None = None,
                 initial_control: str = "active") -> None:
        self.strategy = strategy
        self.bot_id = strategy.config.bot_id
        self.settings = settings
        self.exchange = exchange
        self.redis = redis
        self.store = store
        self.controls = controls
        self.initial_control = initial_control
        self.events = EventSink(self.bot_id, redis)
        self.subs: list[Subscription] = list(strategy.subscriptions())
        self.traded = sorted({s.symbol for s in self.subs if s.trade})
        self.account = LiveAccount(self.bot_id, exchange, self.traded)
        self.driver: LiveDriver | None = None
        self.cursor: dict[tuple[str, str], int] = {}  # last handled (or warmed) candle start per stream
        self.fills_id = "0-0"
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._rejections: list[Rejection] = []
        self._control_q: asyncio.Queue[str] = asyncio.Queue()
        self.refused: str | None = None
        self.handled_bars = 0
        self.started = asyncio.Event()

    # --- start ---------------------------------------------------------------------------------
    async def instruments(self) -> dict[str, Instrument]:
        rows = await self.exchange.instruments(self.traded)
        found = {i.symbol: i for i in (parse_instrument(r) for r in rows)}
        missing = [s for s in self.traded if s not in found]
        if missing:
            raise BadInput(f"the exchange lists no instrument {', '.join(missing)}")
        return found

    async def _send(self, decisions: list[Decision]) -> None:
        self._rejections += await self.exchange.execute(decisions)

    async def _after(self) -> None:
        """Notices to the events stream; refusals back to the strategy (whose reaction may be sent)."""
        assert self.driver is not None
        ctx = self.driver.runtime.ctx
        while True:
            if ctx.notices:
                notices = list(ctx.notices)
                ctx.notices.clear()
                await self.events.emit(notices)
            if not self._rejections:
                return
            rejections, self._rejections = self._rejections, []
            for rej in rejections:
                await self.driver.rejected(rej)

    async def reconcile(self) -> None:
        """Positions and open orders from the exchange before the first decision."""
        assert self.driver is not None
        state = self.driver.runtime.ctx.state
        known: dict[str, str] = state.get(POSITIONS_KEY) or {}  # type: ignore[assignment]
        now = int(time.time() * 1000)
        unknown = [p for p in self.account.positions.values() if not p.is_flat and p.symbol not in known]
        for pos in unknown:
            if self.settings.adopt_unknown_positions:
                self.account.adopted_opened_ms[pos.symbol] = pos.opened_ms or now
                await self.events.one("position_adopted", now, symbol=pos.symbol, qty=str(pos.qty),
                                      avg_price=str(pos.avg_price), opened_ms=pos.opened_ms)
            else:
                self.refused = (f"{pos.symbol}: open position {pos.qty} @ {pos.avg_price} (opened {pos.opened_ms}) "
                                "is not the bot's; STRATEGY_ADOPT_UNKNOWN_POSITIONS=false")
        if self.refused is not None:
            ctx = self.driver.runtime.ctx
            ctx.halted_all = True
            log.error("refusing_to_trade", bot_id=self.bot_id, reason=self.refused)
            await self.events.one("refusing_to_trade", now, reason=self.refused)
        elif unknown:  # adopted: known from now on (positions that went while the bot was down stay
            # known until their fills, replayed from fills:{bot_id}, or the next candle say so)
            state.set(POSITIONS_KEY, {**known, **{p.symbol: str(p.qty) for p in unknown}})
            state.commit()
            changed, _ = state.take_changes()
            await self.store.save(changed)
        orders = self.account.orders
        log.info("reconciled", bot_id=self.bot_id, positions={s: str(p.qty) for s, p in self.account.positions.items()},
                 open_orders=[o.order_link_id for o in orders], adopted=[p.symbol for p in unknown])

    async def _remember_positions(self, commit: bool = False) -> None:
        assert self.driver is not None
        state = self.driver.runtime.ctx.state
        now = {s: str(p.qty) for s, p in sorted(self.account.positions.items()) if not p.is_flat}
        if state.get(POSITIONS_KEY) != now:
            state.set(POSITIONS_KEY, now)
            state.commit()
            if commit:
                changed, _ = state.take_changes()
                await self.store.save(changed)

    async def _last_stream_start(self, key: str) -> int | None:
        last = await self.redis.xrevrange(key, "+", "-", count=1)
        return _id_start(last[0][0]) if last else None

    async def _rest_bars(self, sym: str, interval: str, from_ms: int, to_ms: int) -> list[Bar]:
        """Closed candles with start in [from_ms, to_ms], oldest first, paged backwards."""
        iv = INTERVAL_MS[interval]
        out: list[Bar] = []
        end = to_ms
        while end >= from_ms:
            n = min(REST_KLINE_LIMIT, (end - from_ms) // iv + 1)
            rows = await self.exchange.klines(sym, BYBIT_INTERVAL[interval], end, n)
            bars = [b for b in bars_from_rest(rows, sym, interval, to_ms) if b.start_ms >= from_ms]
            if not bars:
                break
            out = bars + out
            end = bars[0].start_ms - iv
        dedup = {b.start_ms: b for b in out}
        return [dedup[k] for k in sorted(dedup)]

    async def warm(self) -> dict[str, Any]:
        assert self.driver is not None
        state = self.driver.runtime.ctx.state
        info: dict[str, Any] = {}
        for sub in self.subs:
            sym, iv_name = sub.key
            iv = INTERVAL_MS[iv_name]
            handled = state.get(bar_key(sym, iv_name))
            if isinstance(handled, int):
                end = handled
            else:
                last = await self._last_stream_start(bar_stream_key(sym, iv_name))
                if last is None:  # the listener has written nothing yet: the newest REST row may be forming
                    rows = await self.exchange.klines(sym, BYBIT_INTERVAL[iv_name], int(time.time() * 1000), 2)
                    starts = sorted(int(r[0]) for r in rows)
                    if not starts:
                        raise BadInput(f"no {sym} {iv_name} klines from the exchange")
                    last = starts[0] if len(starts) > 1 else starts[0] - iv
                end = last
            n = (sub.warmup + 1) * self.settings.warmup_factor
            bars = await self._rest_bars(sym, iv_name, end - (n - 1) * iv, end)
            if len(bars) < n:
                log.warning("warmup_short", bot_id=self.bot_id, stream=f"{sym}:{iv_name}", wanted=n, got=len(bars))
                await self.events.one("warmup_short", end + iv, stream=f"{sym}:{iv_name}", wanted=n, got=len(bars))
            self.driver.warm(bars)
            self.cursor[sub.key] = end
            info[f"{sym}:{iv_name}"] = {"from_ms": bars[0].start_ms if bars else None, "to_ms": end, "bars": len(bars)}
        return info

    async def start(self) -> None:
        instruments = await self.instruments()
        await self.account.refresh()
        self.driver = await LiveDriver.load(self.strategy, store=self.store, account=self.account,
                                            instruments=instruments, send=self._send)
        state = self.driver.runtime.ctx.state
        for exec_id in state.get(SEEN_KEY) or []:  # type: ignore[union-attr]
            self._seen[str(exec_id)] = None
        fills_id = state.get(FILLS_KEY)
        if isinstance(fills_id, str):
            self.fills_id = fills_id
        else:  # first start: fills before it are history (the positions are reconciled); kept at once,
            # so a fill while the bot is down before its first own fill is not skipped either
            last = await self.redis.xrevrange(fill_feed_key(self.bot_id), "+", "-", count=1)
            self.fills_id = _s(last[0][0]) if last else "0-0"
            await self.store.save({FILLS_KEY: self.fills_id})
            state.set(FILLS_KEY, self.fills_id)
            state.commit()
            state.take_changes()
        await self.reconcile()
        resent = await self.driver.resend()
        if resent:
            log.warning("outbox_resent", bot_id=self.bot_id, decisions=len(resent))
        warm = await self.warm()
        now = max(c + INTERVAL_MS[k[1]] for k, c in self.cursor.items()) if self.cursor else int(time.time() * 1000)
        await self.events.one("started", now, warmup=warm, fills_from=self.fills_id,
                              positions={s: str(p.qty) for s, p in self.account.positions.items()})
        await self.driver.start(now)
        if self.initial_control == "paused":
            await self.driver.control(Control.PAUSE, now)
        await self._after()
        self.started.set()

    # --- loop ----------------------------------------------------------------------------------
    async def _follow_controls(self) -> None:
        assert self.controls is not None
        async for msg in self.controls():
            cmd = str(msg.get("command", ""))
            if cmd in {c.value for c in Control}:
                await self._control_q.put(cmd)

    async def run(self, stop: asyncio.Event) -> None:
        # following control from before the start: a command given meanwhile is obeyed right after it
        follower = asyncio.create_task(self._follow_controls()) if self.controls is not None else None
        try:
            await self.start()
            while not stop.is_set():
                await self._controls()
                streams: dict[Any, Any] = {bar_stream_key(s, i): f"{c}-0" for (s, i), c in self.cursor.items()}
                streams[fill_feed_key(self.bot_id)] = self.fills_id
                reply = await self.redis.xread(streams, block=self.settings.read_block_ms, count=500)
                if reply:
                    await self.handle(reply)
        finally:
            if follower is not None:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)

    async def _controls(self) -> None:
        assert self.driver is not None
        while not self._control_q.empty():
            cmd = Control(self._control_q.get_nowait())
            if cmd is Control.FLATTEN:
                await self.account.refresh()
            log.info("control", bot_id=self.bot_id, command=cmd.value)
            await self.driver.control(cmd, int(time.time() * 1000))
            await self._after()

    async def handle(self, reply: list[Any]) -> None:
        fill_entries: list[tuple[str, Mapping[str, str]]] = []
        bars: list[Bar] = []
        by_key = {bar_stream_key(s, i): (s, i) for s, i in self.cursor}
        for stream, entries in reply:
            name = stream.decode() if isinstance(stream, bytes) else stream
            if name == fill_feed_key(self.bot_id):
                fill_entries += [(_s(eid), _fields(f)) for eid, f in entries]
                continue
            sym, iv = by_key[name]
            for eid, f in entries:
                try:
                    bars.append(bar_from_stream(sym, iv, _s(eid), _fields(f)))
                except BadInput as exc:
                    log.error("bad_candle", bot_id=self.bot_id, stream=name, entry=_s(eid), error=str(exc))
        if bars:
            bars += await self._stragglers(bars)
        for eid, f in fill_entries:
            await self.fill(eid, f)
        if bars:
            await self.bars(bars)

    async def _stragglers(self, bars: list[Bar]) -> list[Bar]:
        """Candles of the same close on the other subscribed streams that the listener has not written
        yet: waited for (at most `STRATEGY_BAR_SETTLE_MS`), so the candles of one instant are handled
        together in the runtime's order (symbol, then interval), as the backtester does."""
        latest: dict[tuple[str, str], int] = dict(self.cursor)
        for b in bars:
            latest[(b.symbol, b.interval)] = max(latest[(b.symbol, b.interval)], b.start_ms)
        newest: dict[str, int] = {}
        for b in bars:
            newest[b.interval] = max(newest.get(b.interval, 0), b.start_ms)
        out: list[Bar] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.bar_settle_ms / 1000
        while True:
            behind = {k: v for k, v in latest.items() if k[1] in newest and v < newest[k[1]]}
            wait_ms = int((deadline - loop.time()) * 1000)
            if not behind or wait_ms <= 0:
                return out
            reply = await self.redis.xread({bar_stream_key(s, i): f"{v}-0" for (s, i), v in behind.items()},
                                           block=wait_ms, count=100)
            if not reply:
                return out
            by_key = {bar_stream_key(s, i): (s, i) for s, i in behind}
            for stream, entries in reply:
                sym, iv = by_key[_s(stream)]
                for eid, f in entries:
                    try:
                        bar = bar_from_stream(sym, iv, _s(eid), _fields(f))
                    except BadInput as exc:
                        log.error("bad_candle", bot_id=self.bot_id, stream=_s(stream), entry=_s(eid), error=str(exc))
                        continue
                    out.append(bar)
                    latest[(sym, iv)] = max(latest[(sym, iv)], bar.start_ms)

    async def fill(self, entry_id: str, fields: Mapping[str, str]) -> None:
        assert self.driver is not None
        exec_id = fields.get("exec_id", "")
        self.fills_id = entry_id
        state = self.driver.runtime.ctx.state
        if exec_id in self._seen:  # the listener announces at least once: a repeat moves the cursor only
            log.info("fill_repeat_dropped", bot_id=self.bot_id, exec_id=exec_id, entry=entry_id)
            state.set(FILLS_KEY, entry_id)
            state.commit()
            changed, _ = state.take_changes()
            await self.store.save(changed)
            return
        self._seen[exec_id] = None
        if len(self._seen) > SEEN_FILLS:
            self._seen.popitem(last=False)
        state.set(SEEN_KEY, list(self._seen)[-SEEN_KEPT:])  # repeats across a restart are dropped too
        try:
            fill = fill_from_stream(fields.get("fill", ""), self.bot_id)
        except BadInput as exc:
            log.error("bad_fill", bot_id=self.bot_id, entry=entry_id, error=str(exc))
            fill = None
        state.set(FILLS_KEY, entry_id)
        state.commit()
        if fill is None or fill.symbol not in self.account.symbols:
            changed, _ = state.take_changes()
            await self.store.save(changed)
            return
        known: dict[str, str] = state.get(POSITIONS_KEY) or {}  # type: ignore[assignment]
        before = Decimal(known.get(fill.symbol, "0"))
        await self.account.refresh(orders=False)
        pos = self.account.position(fill.symbol)
        await self._remember_positions()
        await self.driver.fill(fill, pos)
        ctx = self.driver.runtime.ctx
        if before == 0 and pos.qty != 0 or (before * pos.qty < 0):
            ctx.emit("entry", symbol=fill.symbol, side=fill.side, qty=str(abs(pos.qty)), price=str(fill.price),
                     order_link_id=fill.order_link_id, reason=fill.reason)
        if before != 0 and (pos.qty == 0 or before * pos.qty < 0):
            ctx.emit("exit", symbol=fill.symbol, qty=str(abs(before)), price=str(fill.price),
                     order_link_id=fill.order_link_id, reason=fill.reason)
        await self._after()

    async def bars(self, bars: list[Bar]) -> None:
        assert self.driver is not None
        todo: dict[tuple[str, str], list[Bar]] = {}
        for b in bars:
            todo.setdefault((b.symbol, b.interval), []).append(b)
        ready: list[Bar] = []
        for key, items in todo.items():
            items.sort(key=lambda b: b.start_ms)
            iv = INTERVAL_MS[key[1]]
            cursor = self.cursor[key]
            for b in items:
                if b.start_ms <= cursor:
                    continue
                if b.start_ms > cursor + iv:  # a gap in the stream: refill it from REST
                    missing = await self._rest_bars(key[0], key[1], cursor + iv, b.start_ms - iv)
                    log.warning("candle_gap_refilled", bot_id=self.bot_id, stream=f"{key[0]}:{key[1]}",
                                from_ms=cursor + iv, to_ms=b.start_ms - iv, refilled=len(missing))
                    ready += [m for m in missing if m.start_ms > cursor]
                ready.append(b)
                cursor = b.start_ms
            self.cursor[key] = cursor
        ready.sort(key=lambda b: (b.close_ms, b.symbol, INTERVAL_MS[b.interval]))
        state = self.driver.runtime.ctx.state
        last_close = None
        for b in ready:
            if b.close_ms != last_close:
                await self.account.refresh()
                await self._remember_positions()
                last_close = b.close_ms
            state.set(bar_key(b.symbol, b.interval), b.start_ms)
            state.commit()
            self.account.saw_close(b.symbol, b.close)
            await self.driver.bar(b)
            self.handled_bars += 1
            log.info("bar_handled", bot_id=self.bot_id, symbol=b.symbol, interval=b.interval, start_ms=b.start_ms)
            await self._after()


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _fields(f: Mapping[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in f.items()}
