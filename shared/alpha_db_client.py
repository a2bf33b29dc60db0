"""AlphaDBClient: the thin read-side client every strategy bot uses.

It registers the bot and beats, reads the bot's positions, fills and market prices, reads its
control state, and follows `fills_channel` for its own fills. It has no way to write fills or
position keys: that is the listener's job, under the listener's database role.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from shared.bots import PLATFORM_REDIS_DB, bot_spec
from shared.contracts import (CONTROL_CHANNEL, FILLS_CHANNEL, bot_heartbeat_key, control_key, market_price_key,
                              position_key, position_key_prefix)
from shared.db.pool import open_pool
from shared.redis_client import redis_for
from shared.settings import DatabaseSettings, RedisSettings, build_settings

HEARTBEAT_TTL_S = 120
log = structlog.get_logger()


@dataclass(frozen=True)
class MarketPrice:
    symbol: str
    price: Decimal
    updated_at: datetime  # the exchange's timestamp of the ticker that carried it (UTC)

    @property
    def age_s(self) -> float:
        return (datetime.now(UTC) - self.updated_at).total_seconds()


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


@dataclass(frozen=True)
class PublishedPosition:
    symbol: str
    size: Decimal
    side: str
    avg_price: Decimal | None
    unrealized_pnl: Decimal | None
    mark_price: Decimal | None
    liq_price: Decimal | None
    updated_at: str | None

    @classmethod
    def from_json(cls, symbol: str, raw: str) -> PublishedPosition:
        d = json.loads(raw)
        return cls(symbol=symbol, size=_dec(d.get("size")) or Decimal(0), side=str(d.get("side", "")),
                   avg_price=_dec(d.get("avg_price")), unrealized_pnl=_dec(d.get("unrealized_pnl")),
                   mark_price=_dec(d.get("mark_price")), liq_price=_dec(d.get("liq_price")),
                   updated_at=d.get("updated_at"))


@dataclass(frozen=True)
class StrategyFillRow:
    exec_id: str
    symbol: str
    side: str
    exec_type: str
    exec_price: Decimal
    exec_qty: Decimal
    commission: Decimal
    exec_time: datetime
    client_order_id: str | None
    close_reason: str | None


class AlphaDBClient:
    def __init__(self, bot_id: str, redis_db: int | None = None, *, db: DatabaseSettings | None = None,
                 redis: RedisSettings | None = None, bot_name: str | None = None,
                 heartbeat_interval_s: float = 30.0, pool_max_size: int = 4) -> None:
        spec = bot_spec(bot_id)
        if redis_db is not None and redis_db != spec.redis_db:
            raise ValueError(f"bot {bot_id} uses Redis db {spec.redis_db}, not {redis_db}")
        self.bot_id = bot_id
        self.redis_db = spec.redis_db
        self.bot_name = bot_name or spec.strategy_name
        self.strategy_name = spec.strategy_name
        self.heartbeat_interval_s = heartbeat_interval_s
        self._db_settings = db or build_settings(DatabaseSettings)
        self._redis_settings = redis or build_settings(RedisSettings)
        self._pool_max_size = pool_max_size
        self._pool: AsyncConnectionPool | None = None
        self._redis = redis_for(self._redis_settings, self.redis_db)
        self._platform = redis_for(self._redis_settings, PLATFORM_REDIS_DB)
        self._heartbeat_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlphaDBClient:
        self._pool = await open_pool(self._db_settings, "strategy", max_size=self._pool_max_size)
        await self.register()
        self._heartbeat_task = asyncio.create_task(self._beat_forever(), name=f"beat-{self.bot_id}")
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self._redis.aclose()
        await self._platform.aclose()

    def _db(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("AlphaDBClient is not open: use `async with AlphaDBClient(...)`")
        return self._pool

    @property
    def pool(self) -> AsyncConnectionPool:
        """The open `strategy_user` pool, e.g. for the bot's state (`PgStateStore.for_client`)."""
        return self._db()

    async def _as_bot(self, statement: str, params: tuple[Any, ...]) -> None:
        async with self._db().connection() as conn, conn.transaction():
            await conn.execute("SELECT set_config('trading.bot_id', %s, true)", (self.bot_id,))
            await conn.execute(statement, params)

    async def register(self, metadata: dict[str, Any] | None = None) -> None:
        await self._as_bot(
            """INSERT INTO trading.bots (bot_id, bot_name, strategy_name, redis_db, metadata, last_heartbeat, updated_at)
               VALUES (%s, %s, %s, %s, %s, now(), now())
               ON CONFLICT (bot_id) DO UPDATE SET bot_name = EXCLUDED.bot_name,
                   strategy_name = EXCLUDED.strategy_name, redis_db = EXCLUDED.redis_db,
                   metadata = EXCLUDED.metadata, last_heartbeat = now(), updated_at = now()""",
            (self.bot_id, self.bot_name, self.strategy_name, self.redis_db, json.dumps(metadata or {})))

    async def heartbeat(self) -> None:
        await self._as_bot("UPDATE trading.bots SET last_heartbeat = now() WHERE bot_id = %s", (self.bot_id,))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await self._platform.set(bot_heartbeat_key(self.bot_id), now, ex=HEARTBEAT_TTL_S)

    async def _beat_forever(self) -> None:
        task = asyncio.current_task()
        while True:
            try:
                await self.heartbeat()
            except Exception as exc:  # a restart of PostgreSQL or Redis must not kill the bot
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("heartbeat failed", error=type(exc).__name__)
            if task is not None and task.cancelling():
                # close() cancelled a beat and a library below swallowed it: stop, or close() waits for ever
                raise asyncio.CancelledError
            await asyncio.sleep(self.heartbeat_interval_s)

    async def get_position(self, symbol: str) -> PublishedPosition | None:
        raw = await self._redis.get(position_key(self.bot_id, symbol))
        return PublishedPosition.from_json(symbol, raw) if raw else None

    async def get_positions(self) -> dict[str, PublishedPosition]:
        prefix = position_key_prefix(self.bot_id)
        keys = sorted([k async for k in self._redis.scan_iter(match=f"{prefix}*", count=200)])
        values = await self._redis.mget(keys) if keys else []
        return {k[len(prefix):]: PublishedPosition.from_json(k[len(prefix):], v) for k, v in zip(keys, values) if v}

    async def market_price(self, symbol: str) -> MarketPrice | None:
        """The last traded price the listener saw, with when the exchange stamped it: check `age_s` before
        acting on it. None when there is none (the key expires 60 s after the listener's last write)."""
        raw = await self._platform.get(market_price_key(symbol))
        if not raw:
            return None
        d = json.loads(raw)
        updated_at = datetime.fromisoformat(str(d["updated_at"]).replace("Z", "+00:00"))
        return MarketPrice(symbol, Decimal(str(d["price"])), updated_at)

    async def control_status(self) -> str:
        """'active' or 'paused' (set by the C2 bot); the database row is the fallback."""
        raw = await self._platform.get(control_key(self.bot_id))
        if raw:
            return str(json.loads(raw).get("status", "active"))
        async with self._db().connection() as conn:
            row = await (await conn.execute("SELECT status FROM trading.bots WHERE bot_id = %s",
                                            (self.bot_id,))).fetchone()
        return row[0] if row else "active"

    async def recent_fills(self, limit: int = 50, symbol: str | None = None) -> list[StrategyFillRow]:
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        query = """SELECT exec_id, symbol, side, exec_type, exec_price, exec_qty, commission, exec_time,
                          client_order_id, close_reason
                   FROM trading.fills WHERE bot_id = %s AND (%s::text IS NULL OR symbol = %s)
                   ORDER BY exec_time DESC, exec_id DESC LIMIT %s"""
        async with self._db().connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            rows = await (await cur.execute(query, (self.bot_id, symbol, symbol, limit))).fetchall()
        return [StrategyFillRow(**r) for r in rows]

    async def fills(self) -> AsyncIterator[dict[str, Any]]:
        """This bot's fills as the listener publishes them (after commit). Resubscribes after a
        Redis restart; pub/sub does not replay, so call `recent_fills` after a gap if you need all."""
        async for message in self._follow(FILLS_CHANNEL):
            yield message

    async def controls(self) -> AsyncIterator[dict[str, Any]]:
        """Commands for this bot from the C2 bot (`pause`, `resume`, `flatten`), as they are given.
        The standing state is `control_status()`; read it again after a reconnect."""
        async for message in self._follow(CONTROL_CHANNEL):
            yield message

    async def _follow(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        backoff_s = 0.1
        while True:
            pubsub = self._platform.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                backoff_s = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    try:
                        payload = json.loads(msg["data"])
                    except (TypeError, ValueError):
                        log.warning("unreadable message", channel=channel)
                        continue
                    if isinstance(payload, dict) and payload.get("bot_id") == self.bot_id:
                        yield payload
            except (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError):
                log.warning("subscription lost; resubscribing", channel=channel, retry_in_s=backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisConnectionError, OSError):
                    pass
