"""Routes each classified frame to its destination; bad frames and misplaced records to the dead letters."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bybit.messages import (
    AuthResult, BadFrame, Execution, FastExecution, Kline, OrderUpdate, Pong, PositionSnapshot, PublicTrade,
    SubscribeResult, Ticker, WalletSnapshot, classify_frame, dump_raw,
)
from services.websocket_listener.counters import Counters
from services.websocket_listener.ingest import Ingestor
from services.websocket_listener.rows import Fill, iso_utc

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


def market_price_key(symbol: str) -> str:
    return f"market:{symbol}:price"


def market_volume_key(symbol: str) -> str:
    return f"market:{symbol}:volume"


def market_kline_key(symbol: str, interval: str) -> str:
    return f"market:{symbol}:kline:{interval}"


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

    async def handle(self, source: Source, raw: str | bytes) -> list[Control]:
        """Classify one frame, route its records; return the control frames for the connection itself."""
        self.counters.frames_received += 1
        parsed = classify_frame(raw)
        if isinstance(parsed, BadFrame):
            await self._ingest.put_dead(source.name, source.bot_id, parsed)
            return []
        controls: list[Control] = []
        market_ops: list[tuple[str, str]] = []
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
                market_ops.extend(_market_ops(record))
            else:
                bad = BadFrame(f"{type(record).__name__} not expected on {source.name}", dump_raw(raw))
                await self._ingest.put_dead(source.name, source.bot_id, bad)
        if market_ops:
            await self._write_market(market_ops)
        return controls

    async def _private(self, bot_id: str, record: Execution | OrderUpdate | PositionSnapshot | WalletSnapshot
                       | FastExecution, now: datetime) -> None:
        if isinstance(record, Execution):
            if record.exec_time > self.last_exec_time.get(bot_id, record.exec_time - timedelta(seconds=1)):
                self.last_exec_time[bot_id] = record.exec_time
            await self._ingest.put_fill(Fill(bot_id, record, "ws"))
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
        try:
            async with self._market.pipeline(transaction=False) as pipe:
                for key, value in ops:
                    pipe.set(key, value)
                await pipe.execute()
            self.counters.market_updates += len(ops)
        except (RedisError, OSError, asyncio.TimeoutError):
            # Market data is superseded within seconds; never hold the public stream for it.
            pass


def _market_ops(record: Ticker | Kline | PublicTrade) -> list[tuple[str, str]]:
    if isinstance(record, Ticker):
        ops = []
        if record.last_price is not None:
            ops.append((market_price_key(record.symbol), str(record.last_price)))
        if record.volume_24h is not None:
            ops.append((market_volume_key(record.symbol), str(record.volume_24h)))
        return ops
    if isinstance(record, Kline):
        value = json.dumps({"start": iso_utc(record.start), "open": str(record.open), "high": str(record.high),
                            "low": str(record.low), "close": str(record.close), "volume": str(record.volume),
                            "turnover": str(record.turnover), "confirm": record.confirm}, separators=(",", ":"))
        return [(market_kline_key(record.symbol, record.interval), value)]
    return []
