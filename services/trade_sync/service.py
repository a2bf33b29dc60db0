"""The container's default command: `sync` on a schedule, a heartbeat for the health check (IO)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.trade_sync.context import SyncContext
from services.trade_sync.flatten_worker import FlattenWorker
from services.trade_sync.errors import TradeSyncError
from services.trade_sync.reconcile import run_sync
from shared.bybit.rest_client import BybitRestClient
from shared.contracts import TRADE_SYNC_HEARTBEAT_KEY
from shared.queries.flatten import Flattener

log = structlog.get_logger()

HEARTBEAT_TTL_S = 120
HEARTBEAT_EVERY_S = 30


def heartbeat_age_s(value: str | None, now: datetime) -> float | None:
    """Seconds since the beat, or None when absent or unreadable (pure)."""
    if not value:
        return None
    try:
        beat = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if beat.tzinfo is None:
        return None
    return (now - beat).total_seconds()


async def beat(redis: Redis) -> None:
    await redis.set(TRADE_SYNC_HEARTBEAT_KEY, datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    ex=HEARTBEAT_TTL_S)


async def _heartbeats(redis: Redis) -> None:
    while True:
        try:
            await beat(redis)
        except RedisError as exc:
            log.warning("heartbeat_failed", error=type(exc).__name__)
        await asyncio.sleep(HEARTBEAT_EVERY_S)


def make_flattener(ctx: SyncContext, bot_ids: list[str]) -> Flattener:
    """One REST client per bot, with the bot's own key, for C2's flatten requests."""
    clients = {}
    for bot_id in bot_ids:
        api_key, secret = ctx.keys.credentials(bot_id)
        clients[bot_id] = BybitRestClient(ctx.venue.rest_url, api_key, secret, ctx.venue.bybit_recv_window_ms)
    return Flattener(clients)


async def serve(ctx: SyncContext, bot_ids: list[str], stop: asyncio.Event) -> None:
    """Run `sync` every interval until `stop`; a failed cycle is logged and the next one runs anyway.
    Beside it, C2's flatten requests are executed as they come (flatten_worker.py)."""
    hb = asyncio.create_task(_heartbeats(ctx.redis), name="heartbeat")
    flattener = make_flattener(ctx, bot_ids)
    worker = FlattenWorker(ctx.redis, ctx.store.pool, flattener, deadline_s=ctx.settings.flatten_deadline_s,
                           max_age_s=ctx.settings.flatten_max_age_s)
    flat = asyncio.create_task(worker.run(stop), name="flatten_requests")
    interval = ctx.settings.interval_s
    log.info("trade_sync_serving", bots=bot_ids, interval_s=interval, hours=ctx.settings.sync_hours)
    try:
        while not stop.is_set():
            try:
                outcomes, skipped = await run_sync(ctx, bot_ids, ctx.settings.sync_hours, trigger="schedule")
                for o in outcomes:
                    log.info("scheduled_sync", bot_id=o.bot_id, status=o.status, missing=o.tally.missing_found,
                             recovered=o.tally.recovered, drift=o.tally.drift_found, error=o.error)
                for b in skipped:
                    log.info("scheduled_sync_skipped", bot_id=b, reason="another run holds the lock")
            except TradeSyncError as exc:
                log.error("scheduled_sync_failed", error=str(exc))
            except (RedisError, OSError, Exception) as exc:  # the service outlives a database or Redis outage
                log.error("scheduled_sync_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
    finally:
        hb.cancel()
        flat.cancel()
        await asyncio.gather(hb, flat, return_exceptions=True)
        await flattener.close()
