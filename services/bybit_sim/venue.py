"""The running venue: engine + market + connections + faults, and the loops that move time."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from services.bybit_sim.engine import Engine, Event, FeeSchedule, OrderRequest
from services.bybit_sim.faults import FaultBook
from services.bybit_sim.frames import execution_ws_json, order_ws_json, position_ws_json, private_frame, wallet_ws_json
from services.bybit_sim.generate import Generation, parse_generation, run_generation
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import FUNDING_INTERVAL_MS, Market, VenueClock, interval_next, interval_start, wall_ms
from services.bybit_sim.models import SimAccount, SimExecution, Order, SimPosition
from services.bybit_sim.ratelimit import RateLimits
from services.bybit_sim.stepping import StepConfig, Stepper
from services.bybit_sim.state import FORMAT_VERSION, account_from_doc, account_to_doc, write_state
from services.bybit_sim.triggers import Move
from services.bybit_sim.ws import Hub

log = structlog.get_logger()

WARMUP_MS = 7 * 86_400_000  # venue time starts a week into the data so klines have history
dumps = json.JSONEncoder(separators=(",", ":")).encode  # compact, as Bybit sends


@dataclass(frozen=True)
class AccountSpec:
    api_key: str
    secret: str
    balance: Decimal = Decimal(100000)


@dataclass(frozen=True)
class VenueConfig:
    seed: int = 1
    speed: float = 1000.0
    partial_fills: bool = False
    slippage_bps: Decimal = Decimal(0)
    fees: FeeSchedule = FeeSchedule()
    ip_limit: int = 600
    order_limit: int = 10
    query_limit: int = 50
    state_file: Path | None = None
    tick_ms: int = 50
    idle_timeout_s: float = 600.0
    funding_rate: Decimal = Decimal("0.0001")
    ack_delay_ms: int = 50
    step: StepConfig | None = None  # the stepped clock (stepping.py); None: time runs freely
    stamp_clock: str = "wall"  # the clock of exchange timestamps (execTime, createdTime, ...): "wall" or "venue"
    wall_replay: bool = False  # venue time is wall time (speed 1), the candles shifted by whole weeks to now


STAMP_CLOCKS = ("wall", "venue")


class Venue:
    def __init__(self, config: VenueConfig, accounts: list[AccountSpec], state: dict[str, Any] | None = None,
                 market: Market | None = None) -> None:
        self.config = config
        venue_start = None
        if state is not None:
            venue_start = state["venue_time_ms"]
        self.wall_replay_shift_ms: int | None = None
        if config.wall_replay:  # venue time = wall time, on a resume too; the state file keeps the shift
            if config.speed != 1.0 or config.step is not None:
                raise ValueError("--wall-replay runs at speed 1 and without --stepped")
            now = wall_ms()
            clock = VenueClock(now, 1.0, now)
            shift = state.get("wall_replay_shift_ms") if state is not None else None
            if market is None:
                market, shift = Market.wall_replay(clock, shift)
            self.market, self.wall_replay_shift_ms = market, shift or 0
            self.market.clock = clock
        else:
            clock = VenueClock(0, config.speed)
            self.market = market or Market.replay(clock)
            self.market.clock = clock
            clock.venue_start_ms = venue_start if venue_start is not None else self.market.data_start_ms() + WARMUP_MS
        clock.real_start_ms = wall_ms()  # venue time starts now, not before the candles were loaded
        if config.wall_replay:
            clock.venue_start_ms = clock.real_start_ms
        self.market.funding_rate = config.funding_rate
        self.engine = Engine(config.seed, self.market.price, fees=config.fees, partial_fills=config.partial_fills,
                             slippage_bps=config.slippage_bps)
        self.faults = FaultBook()
        self.limits = RateLimits(config.ip_limit, config.order_limit, config.query_limit)
        self.hub = Hub(self)
        self.generations: dict[str, Generation] = {}
        self._gen_ids = itertools.count(1)
        self._frame_ids = itertools.count(1)
        self._frame_prefix = os.urandom(4).hex()
        self._market_trade_n = 0
        self.last_funding_mark = clock.now() // FUNDING_INTERVAL_MS
        self.last_prices: dict[str, Decimal] = {}
        self.walked_ms = self.engine.venue_ms = clock.now()
        self._stamp_venue = config.stamp_clock == "venue"
        self.stepper = Stepper(clock, config.step) if config.step is not None else None
        if state is not None:
            self._load(state)
        for spec in accounts:
            if spec.api_key not in self.engine.accounts:
                self.engine.accounts[spec.api_key] = SimAccount(spec.api_key, spec.secret, spec.balance)
        self._tasks: list[asyncio.Task] = []

    def _load(self, doc: dict[str, Any]) -> None:
        for a in doc["accounts"]:
            acct = account_from_doc(a)
            self.engine.accounts[acct.api_key] = acct
            self.engine.index_orders(acct)
        self.engine.seqs.update(doc["seqs"])
        self.engine.priority = doc["priority"]
        self.market.pins = {k: Decimal(v) for k, v in doc.get("pins", {}).items()}
        self.last_funding_mark = doc.get("last_funding_mark", self.last_funding_mark)

    def snapshot_doc(self) -> dict[str, Any]:
        doc = {"version": FORMAT_VERSION, "venue_time_ms": self.market.clock.now(),
               "seqs": self.engine.seqs, "priority": self.engine.priority,
               "pins": {k: str(v) for k, v in self.market.pins.items()},
               "last_funding_mark": self.last_funding_mark, "stamp_clock": self.config.stamp_clock,
               "accounts": [account_to_doc(a) for a in self.engine.accounts.values()]}
        if self.wall_replay_shift_ms is not None:
            doc["wall_replay_shift_ms"] = self.wall_replay_shift_ms
        return doc

    def snapshot(self) -> Path | None:
        path = self.config.state_file
        if path is None:
            return None
        write_state(path, self.snapshot_doc())
        return path

    def stamp_ms(self) -> int:
        """The exchange clock: every execTime, order and position createdTime/updatedTime, private push
        creationTime and REST time window. `--stamp-clock wall` (default): the wall clock, as Bybit's
        (where venue time is wall time); `venue`: the venue clock of what is happening now (a walk's
        touch, else the last walk), so a fill's execTime is its venueTimeMs. Connection matters
        (signatures, rate limits, faults, pings) always use the wall clock (`wall_ms`)."""
        return self.engine.venue_ms if self._stamp_venue else wall_ms()

    def stamp_at(self, venue_ms: int, wall_now_ms: int) -> int:
        """The exchange stamp of something happening at venue instant `venue_ms` (wall time `wall_now_ms`)."""
        return venue_ms if self._stamp_venue else wall_now_ms

    def frame_id(self) -> str:
        return f"{self._frame_prefix}{next(self._frame_ids):012d}"

    def publish(self, events: list[Event], rows_per_frame: int = 100) -> None:
        """Group events per account and topic into Bybit private frames and queue them."""
        if not events:
            return
        self._push_public_trades([e.obj for e in events if e.topic == "execution"])
        grouped: dict[str, dict[str, list[Any]]] = {}
        listened: dict[str, bool] = {}
        for ev in events:
            api_key = ev.api_key
            heard = listened.get(api_key)
            if heard is None:
                heard = listened[api_key] = self.hub.has_private(api_key)
            if heard:
                grouped.setdefault(api_key, {}).setdefault(ev.topic, []).append(ev.obj)
        now = self.stamp_ms()
        for api_key, topics in grouped.items():
            for topic, objs in topics.items():
                if topic == "execution" and not self.hub.wants(api_key, "execution"):
                    self._push_fast(api_key, objs, now, rows_per_frame)
                    continue
                if not self.hub.wants(api_key, topic):
                    continue
                rows = self._rows(topic, objs)
                for i in range(0, len(rows), rows_per_frame):
                    frame = private_frame(self.frame_id(), topic, now, rows[i:i + rows_per_frame])
                    self.hub.push_private(api_key, topic, frame)
                if topic == "execution":
                    self._push_fast(api_key, objs, now, rows_per_frame)

    def _push_fast(self, api_key: str, objs: list[SimExecution], now: int, rows_per_frame: int) -> None:
        if not self.hub.wants(api_key, "execution.fast"):
            return
        fast = [self._fast_row(e) for e in objs if e.exec_type == "Trade"]
        for i in range(0, len(fast), rows_per_frame):
            frame = dumps({"topic": "execution.fast", "creationTime": now, "data": fast[i:i + rows_per_frame]})
            self.hub.push_private(api_key, "execution.fast", frame)

    def _push_public_trades(self, executions: list[SimExecution]) -> None:
        """Taker fills of the venue's accounts are the market's trades on `publicTrade.{symbol}`."""
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for e in executions:
            if e.exec_type == "Trade" and not e.is_maker and self.hub.public.get(f"publicTrade.{e.symbol}"):
                inst = INSTRUMENTS[e.symbol]
                by_symbol.setdefault(e.symbol, []).append(
                    {"T": e.exec_time_ms, "s": e.symbol, "S": e.side, "v": inst.qty_str(e.exec_qty),
                     "p": inst.price_str(e.exec_price), "L": "PlusTick" if e.side == "Buy" else "MinusTick",
                     "i": e.exec_id, "BT": False})
        for symbol, rows in by_symbol.items():
            self.push_trades(symbol, rows)

    def push_trades(self, symbol: str, rows: list[dict[str, Any]]) -> None:
        topic = f"publicTrade.{symbol}"
        self.hub.push_public(topic, dumps({"topic": topic, "type": "snapshot", "ts": wall_ms(), "data": rows}))

    def _push_market_trades(self, symbol: str, price: Decimal, previous: Decimal | None, now: int) -> None:
        """The replayed path moving is the rest of the market trading: one trade per price change."""
        if not self.hub.public.get(f"publicTrade.{symbol}"):
            return
        inst = INSTRUMENTS[symbol]
        side = "Buy" if previous is None or price >= previous else "Sell"
        self._market_trade_n += 1
        trade_id = f"{self._frame_prefix}-{self._market_trade_n}"
        self.push_trades(symbol, [{"T": now, "s": symbol, "S": side, "v": inst.qty_str(inst.min_qty * 10),
                                   "p": inst.price_str(price), "L": "PlusTick" if side == "Buy" else "MinusTick",
                                   "i": trade_id, "BT": False}])

    @staticmethod
    def _fast_row(e: SimExecution) -> dict[str, Any]:
        inst = INSTRUMENTS[e.symbol]
        return {"category": "linear", "symbol": e.symbol, "execId": e.exec_id,
                "execPrice": inst.price_str(e.exec_price), "execQty": inst.qty_str(e.exec_qty),
                "orderId": e.order_id, "isMaker": e.is_maker, "orderLinkId": "" if e.is_maker else e.order_link_id,
                "side": e.side, "execTime": str(e.exec_time_ms), "seq": e.seq}

    def _rows(self, topic: str, objs: list[Any]) -> list[str]:
        """The rows of a private topic as JSON text."""
        if topic == "execution":
            return [execution_ws_json(e) for e in objs]
        if topic == "order":
            return [order_ws_json(o) for o in objs]
        if topic == "position":
            latest: dict[str, SimPosition] = {}
            for p in objs:
                latest[p.symbol] = p
            return [position_ws_json(self.engine, p) for p in latest.values()]
        acct = objs[-1]
        return [wallet_ws_json(self.engine, acct)]

    def run_engine(self, events: list[Event]) -> list[Event]:
        """Freeze order rows at event time so pushes show each intermediate state (a position frame
        carries only the latest state per symbol, so positions need no copy)."""
        wanted: dict[tuple[str, str], bool] = {}

        def wants(api_key: str, topic: str) -> bool:
            key = (api_key, topic)
            if key not in wanted:
                wanted[key] = self.hub.wants(api_key, topic)
            return wanted[key]

        return [Event(e.api_key, e.topic, e.obj.snapshot())
                if e.topic == "order" and wants(e.api_key, e.topic) else e
                for e in events]

    def create_order(self, api_key: str, req: OrderRequest) -> Order:
        self.advance()
        order, events = self.engine.create_order(api_key, req, self.stamp_ms())
        self.publish(self.run_engine(events))
        return order

    def _moves(self, symbol: str, venue_now: int) -> list[Move]:
        """The path walked since the last walk: a pinned price is a gap; after a pin the replay resumes by a gap."""
        previous = self.last_prices.get(symbol)
        pinned = self.market.pins.get(symbol)
        if pinned is not None:
            return [Move(previous if previous is not None else pinned, pinned, True, venue_now, venue_now)]
        moves = self.market.paths[symbol].moves(self.walked_ms, venue_now)
        start = moves[0].start if moves else self.market.paths[symbol].price_at(venue_now)
        if previous is not None and previous != start:
            moves.insert(0, Move(previous, start, True, self.walked_ms, self.walked_ms))
        return moves

    def advance(self) -> None:
        """Walk every symbol's price from the last walk to now, firing what the path reaches (walk.py);
        done on every tick and before every order request, so an order always meets an up-to-date book."""
        venue_now = self.market.clock.now()
        now = wall_ms()
        walks: dict[str, list[Move]] = {}
        for symbol in INSTRUMENTS:
            price = self.market.price(symbol, venue_now)
            walks[symbol] = self._moves(symbol, venue_now) or [Move(price, price, True, venue_now, venue_now)]
            previous = self.last_prices.get(symbol)
            self.last_prices[symbol] = price
            if previous != price:
                self._push_market_trades(symbol, price, previous, self.stamp_at(venue_now, now))
        events = self.engine.walker.walk_all(walks, self.stamp_ms(), stamp=self.stamp_ms)
        self.walked_ms = self.engine.venue_ms = venue_now
        self.publish(self.run_engine(events))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._tick_loop()), loop.create_task(self.hub.idle_sweeper())]

    def start_generation(self, body: Any) -> Generation:
        gen = parse_generation(body, f"gen-{next(self._gen_ids)}", self.engine.accounts)
        self.generations[gen.id] = gen
        gen.task = asyncio.get_running_loop().create_task(run_generation(self, gen))
        return gen

    async def stop(self) -> None:
        for g in self.generations.values():
            if g.task and not g.task.done():
                g.task.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close_all()

    async def _tick_loop(self) -> None:
        kline_last: dict[str, int] = {}
        ticker_last_ms = 0
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            try:
                self.advance()
                now = wall_ms()
                stamp = self.stamp_ms()
                venue_now = self.walked_ms
                events: list[Event] = []
                mark = venue_now // FUNDING_INTERVAL_MS
                if mark > self.last_funding_mark:
                    self.last_funding_mark = mark
                    for symbol in INSTRUMENTS:
                        events += self.engine.settle_funding(symbol, self.market.price(symbol, venue_now),
                                                             self.market.funding_rate, stamp)
                self.publish(self.run_engine(events))
                self._push_klines(kline_last, venue_now, now)
                if self.stepper is not None:
                    self.stepper.on_tick(venue_now, wall_ms())
                if now - ticker_last_ms >= 100:
                    ticker_last_ms = now
                    self._push_tickers(now)
            except Exception as exc:  # a bad tick must not stop the venue's clock
                log.error("tick_error", error=repr(exc))

    def _push_klines(self, last: dict[str, int], venue_now: int, now: int) -> None:
        for topic in self.hub.public_topics("kline."):
            _, interval, symbol = topic.split(".")
            current = interval_start(interval, venue_now)
            prev = last.get(topic)
            if prev is not None and prev < current:
                closed = prev
                sent = 0
                while closed < current and sent < 50:
                    row = self.market.kline_frame_row(symbol, interval, closed, venue_now, True, now)
                    self.hub.push_public(topic, json.dumps({"topic": topic, "data": [row], "ts": now,
                                                            "type": "snapshot"}))
                    closed = interval_next(interval, closed)
                    sent += 1
            last[topic] = current
            row = self.market.kline_frame_row(symbol, interval, current, venue_now, False, now)
            self.hub.push_public(topic, json.dumps({"topic": topic, "data": [row], "ts": now, "type": "snapshot"}))

    def _push_tickers(self, now: int) -> None:
        for topic in self.hub.public_topics("tickers."):
            symbol = topic.split(".", 1)[1]
            frame = {"topic": topic, "type": "snapshot", "data": self.market.ticker(symbol),
                     "cs": self.engine.seqs[symbol], "ts": now}
            self.hub.push_public(topic, json.dumps(frame))
