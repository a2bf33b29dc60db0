"""Wiring for one command: settings -> database pool, Redis, one exchange client per bot (IO)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeVar

from psycopg_pool import PoolTimeout
from pydantic_settings import BaseSettings
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bots import BOTS, PLATFORM_REDIS_DB, bot_spec
from shared.bybit.rest_client import BybitRestClient
from shared.db.pool import open_pool
from shared.redis_client import redis_for
from shared.settings import (BotKeysSettings, ConfigError, DatabaseSettings, RedisSettings, VenueSettings,
                             build_settings)
from services.trade_sync.config import TradeSyncSettings
from services.trade_sync.errors import TradeSyncError, UsageError
from services.trade_sync.exchange import AccountClient
from shared.bybit.ratelimit import SlidingWindowLimiter
from services.trade_sync.store import Store

S = TypeVar("S", bound=BaseSettings)
_SYMBOL = re.compile(r"^[A-Z0-9]{2,24}$")


def settings_or_usage(cls: type[S]) -> S:
    try:
        return build_settings(cls)
    except ConfigError as exc:
        raise UsageError(f"config error: {exc}") from None


def resolve_bots(keys: BotKeysSettings, requested: str | None) -> list[str]:
    """The bots a command works on: the one asked for (it must have keys), else every bot with keys."""
    if requested is not None:
        try:
            bot_spec(requested)
            keys.credentials(requested)
        except (ValueError, ConfigError) as exc:
            raise UsageError(str(exc)) from None
        return [requested]
    for bot_id in BOTS:  # a half-configured pair is a mistake, not an absent bot
        key = getattr(keys, f"{BOTS[bot_id].env_prefix.lower()}_bybit_api_key")
        secret = getattr(keys, f"{BOTS[bot_id].env_prefix.lower()}_bybit_api_secret")
        if bool(key) != bool(secret is not None and secret.get_secret_value()):
            try:
                keys.credentials(bot_id)
            except ConfigError as exc:
                raise UsageError(str(exc)) from None
    bots = keys.configured_bots()
    if not bots:
        raise UsageError("no bot has an API key pair configured (set e.g. SHORTSELLER_BYBIT_API_KEY and "
                         "SHORTSELLER_BYBIT_API_SECRET)")
    return bots


def check_symbol(symbol: str | None) -> str | None:
    if symbol is not None and not _SYMBOL.match(symbol):
        raise UsageError(f"--symbol {symbol!r} is not a symbol such as BTCUSDT")
    return symbol


@dataclass
class SyncContext:
    settings: TradeSyncSettings
    db: DatabaseSettings
    redis_settings: RedisSettings
    venue: VenueSettings
    keys: BotKeysSettings
    store: Store
    redis: Redis
    bot_redis: dict[int, Redis] = field(default_factory=dict)
    ip_limiter: SlidingWindowLimiter | None = None

    def __post_init__(self) -> None:
        if self.ip_limiter is None and self.settings.ip_limit_per_5s > 0:
            self.ip_limiter = SlidingWindowLimiter(self.settings.ip_limit_per_5s, 5000)

    def redis_of_bot(self, bot_id: str) -> Redis:
        db = bot_spec(bot_id).redis_db
        if db == PLATFORM_REDIS_DB:
            return self.redis
        if db not in self.bot_redis:
            self.bot_redis[db] = redis_for(self.redis_settings, db)
        return self.bot_redis[db]

    def account(self, bot_id: str) -> AccountClient:
        api_key, secret = self.keys.credentials(bot_id)
        rest = BybitRestClient(self.venue.rest_url, api_key, secret, recv_window_ms=self.venue.bybit_recv_window_ms)
        return AccountClient(bot_id, bot_spec(bot_id).env_prefix, rest, max_attempts=self.settings.max_attempts,
                             ip_limiter=self.ip_limiter)

    async def close(self) -> None:
        for r in self.bot_redis.values():
            await r.aclose()
        await self.redis.aclose()
        await self.store.pool.close()


def load_all() -> tuple[TradeSyncSettings, DatabaseSettings, RedisSettings, VenueSettings, BotKeysSettings]:
    return (settings_or_usage(TradeSyncSettings), settings_or_usage(DatabaseSettings),
            settings_or_usage(RedisSettings), settings_or_usage(VenueSettings), settings_or_usage(BotKeysSettings))


async def open_context(settings: TradeSyncSettings, db: DatabaseSettings, redis_settings: RedisSettings,
                       venue: VenueSettings, keys: BotKeysSettings, *, max_pool: int = 6) -> SyncContext:
    try:
        db.dsn("reconciler")
    except ConfigError as exc:
        raise UsageError(f"config error: {exc}") from None
    try:
        pool = await open_pool(db, "reconciler", min_size=1, max_size=max_pool, wait_s=10.0)
    except PoolTimeout:
        raise TradeSyncError(f"cannot connect to PostgreSQL through PgBouncer at {db.pgbouncer_host}:"
                             f"{db.pgbouncer_port} as {db.user('reconciler')}") from None
    redis = redis_for(redis_settings, PLATFORM_REDIS_DB, retries=2)
    try:
        await redis.ping()
    except (RedisError, OSError):
        await pool.close()
        await redis.aclose()
        raise TradeSyncError(f"cannot connect to Redis at {redis_settings.redis_host}:{redis_settings.redis_port}") from None
    return SyncContext(settings, db, redis_settings, venue, keys, Store(pool), redis)
