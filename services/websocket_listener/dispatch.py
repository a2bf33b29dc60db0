"""Routes each classified frame to its destination; bad frames and misplaced records to the dead letters."""
from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.bybit.records import (
    AuthResult,
    BadFrame,
    Execution,
    FastExecution,
    Kline,
    OrderUpdate,
    Pong,
    PositionSnapshot,
    PublicTrade,
    SubscribeResult,
    Ticker,
    WalletSnapshot,
)
from shared.bybit.fields import datetime_to_ms, dump_raw
from shared.bybit.frames import classify_frame
from shared.contracts import kline_stream_key, market_kline_key, market_price_key, market_volume_key
from services.websocket_listener.counters import Counters
from services.websocket_listener.ingest import Ingestor
from services.websocket_listener.rows import ListenerFill, iso_utc

Control = AuthResult | SubscribeResult | Pong


@dataclass(frozen=True)
class Source:
    """Which connection a frame came from: a bot's private stream (bot_id set) or the public one."""

    name: str
    bot_id: str | None = None

    @property
    def private(self) -> bool:
        return self.bot_id is not None

    @property
    def conn_name(self) -> str:
        """The connection's name in heartbeat keys: the bot id, or `public`."""
        return self.bot_id or "public"


MARKET_PRICE_TTL_S = 60  # a price nobody refreshes (listener or public stream down) goes away
KLINE_STREAM_MAXLEN = 10_000  # candles kept per stream (approximately): 34 days of 5 m candles
CANDLES_HELD_MAX = 5_000  # closed candles kept in memory while Redis is away (then the oldest go)


def candle_entry(k: Kline) -> tuple[str, dict[str, str]]:
    """The stream entry of a closed candle: its id (the start in ms, so a repeat is refused by Redis and
    the entries stay in time order) and its fields, numbers as decimal strings."""
    start_ms = datetime_to_ms(k.start)
    return f"{start_ms}-0", {"start": str(start_ms), "open": str(k.open), "high": str(k.high), "low": str(k.low),
                             "close": str(k.close), "volume": str(k.volume), "turnover": str(k.turnover),
                             "interval": k.interval, "symbol": k.symbol}


def _is_repeat(result: object) -> bool:
    """XADD refuses an id not above the stream's last one: a candle already there (or older)."""
    return isinstance(result, ResponseError) and "equal or smaller" in str(result)


@dataclass
class WalletThrottle:
    """At most one wallet snapshot per bot per interval; the latest one is never lost, only delayed."""

    every_s: float
    clock: Callable[[], float]
    last_written: dict[str, float] = field(default_factory=dict)
    pending: dict[str, tuple[WalletSnapshot, datetime]] = field(default_factory=dict)

    def offer(self, bot_id: str, wallet: WalletSnapshot, received_at: datetime) -> bool:
        """True when this snapshot should be written now; otherwise it is kept as the pending one."""
        now = self.clock()
        if now - self.last_written.get(bot_id, float("-inf")) >= self.every_s:
            self.last_written[bot_id] = now
            self.pending.pop(bot_id, None)
            return True
        self.pending[bot_id] = (wallet, received_at)
        return False

    def due(self) -> list[tuple[str, WalletSnapshot, datetime]]:
        now = self.clock()
        out = []
        for bot_id, (wallet, received_at) in list(self.pending.items()):
            if now - self.last_written.get(bot_id, float("-inf")) >= self.every_s:
                self.last_written[bot_id] = now
                del self.pending[bot_id]
                out.append((bot_id, wallet, received_at))
        return out


class Dispatcher:
    def __init__(self, ingest: Ingestor, market: Redis, counters: Counters, wallets: WalletThrottle) -> None:
        self._ingest = ingest
        self._market = market
        self.counters = counters
        self._wallets = wallets
        # Per bot, the newest execTime received: with the local receive time it bounds a gap's start even
        # when the venue was seconds behind in sending.
        self.last_exec_time: dict[str, datetime] = {}
        # Closed candles not yet in their stream (Redis away): written before the next ones, in order.
        self._candles: deque[Kline] = deque(maxlen=CANDLES_HELD_MAX)

    async def handle(self, source: Source, raw: str | bytes) -> list[Control]:
        """Classify one frame, route its records; return the control frames for the connection itself."""
        self.counters.frames_received += 1
        parsed = classify_frame(raw)
        if isinstance(parsed, BadFrame):
            await self._ingest.put_dead(source.name, source.bot_id, parsed)
            return []
        controls: list[Control] = []
        market_ops: list[tuple[str, str]] = []
        closed = len(self._candles)
        now = datetime.now(UTC)
        for record in parsed:
            if isinstance(record, (AuthResult, SubscribeResult, Pong)):
                controls.append(record)
            elif isinstance(record, BadFrame):
                await self._ingest.put_dead(source.name, source.bot_id, record)
            elif source.bot_id is not None and isinstance(record, (Execution, OrderUpdate, PositionSnapshot,
                                                                    WalletSnapshot, FastExecution)):
                await self._private(source.bot_id, record, now)
            elif source.bot_id is None and isinstance(record, (Ticker, Kline, PublicTrade)):
                market_ops.extend(_market_ops(record, now))
                if isinstance(record, Kline) and record.confirm:
                    if len(self._candles) == self._candles.maxlen:
                        self.counters.candles_dropped += 1
                    self._candles.append(record)
            else:
                bad = BadFrame(f"{type(record).__name__} not expected on {source.name}", dump_raw(raw))
                await self._ingest.put_dead(source.name, source.bot_id, bad)
        if market_ops or len(self._candles) > closed:
            await self._write_market(market_ops)
        return controls

    async def _private(self, bot_id: str, record: Execution | OrderUpdate | PositionSnapshot | WalletSnapshot
                       | FastExecution, now: datetime) -> None:
        if isinstance(record, Execution):
            if record.exec_time > self.last_exec_time.get(bot_id, record.exec_time - timedelta(seconds=1)):
                self.last_exec_time[bot_id] = record.exec_time
            await self._ingest.put_fill(ListenerFill(bot_id, record, "ws"))
        elif isinstance(record, OrderUpdate):
            await self._ingest.put_order(bot_id, record)
        elif isinstance(record, PositionSnapshot):
            await self._ingest.put_position(bot_id, record)
        elif isinstance(record, WalletSnapshot):
            if self._wallets.offer(bot_id, record, now):
                await self._ingest.put_wallet(bot_id, record, now)
        # FastExecution carries no fee: the full `execution` push of the same fill is what gets stored.

    async def flush_wallets(self) -> None:
        for bot_id, wallet, received_at in self._wallets.due():
            await self._ingest.put_wallet(bot_id, wallet, received_at)

    async def _write_market(self, ops: list[tuple[str, str]]) -> None:
        candles = list(self._candles)
        try:
            async with self._market.pipeline(transaction=False) as pipe:
                for key, value in ops:
                    pipe.set(key, value, ex=MARKET_PRICE_TTL_S if key.endswith(":price") else None)
                for k in candles:
                    entry_id, fields = candle_entry(k)
                    pipe.xadd(kline_stream_key(k.symbol, k.interval), fields,  # type: ignore[arg-type]
                              id=entry_id, maxlen=KLINE_STREAM_MAXLEN, approximate=True)
                results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, asyncio.TimeoutError):
            # Latest prices are superseded within seconds: never hold the public stream for them. Closed
            # candles stay held (up to CANDLES_HELD_MAX) and go first next time.
            return
        for _ in candles:
            self._candles.popleft()
        for result in results[len(ops):]:
            if isinstance(result, BaseException) and not _is_repeat(result):
                self.counters.candles_refused += 1
            elif _is_repeat(result):
                self.counters.candles_repeated += 1
            else:
                self.counters.candles_written += 1
        self.counters.market_updates += len(ops)


def market_price_value(price: object, updated_at: datetime) -> str:
    """The price key's JSON: the price as a decimal string and when the exchange stamped it (ISO UTC)."""
    return json.dumps({"price": str(price), "updated_at": iso_utc(updated_at)}, separators=(",", ":"))


def _market_ops(record: Ticker | Kline | PublicTrade, received_at: datetime) -> list[tuple[str, str]]:
    if isinstance(record, Ticker):
        ops = []
        if record.last_price is not None:
            ops.append((market_price_key(record.symbol), market_price_value(record.last_price,
                                                                            record.ts or received_at)))
        if record.volume_24h is not None:
            ops.append((market_volume_key(record.symbol), str(record.volume_24h)))
        return ops
    if isinstance(record, Kline):
        value = json.dumps({"start": iso_utc(record.start), "open": str(record.open), "high": str(record.high),
                            "low": str(record.low), "close": str(record.close), "volume": str(record.volume),
                            "turnover": str(record.turnover), "confirm": record.confirm}, separators=(",", ":"))
        return [(market_kline_key(record.symbol, record.interval), value)]
    return []
